"""A real HTTP server for the tests that need one: uvicorn on a free port, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from api.conftest import World


@contextmanager
def serving(app: Any) -> Iterator[int]:
    """Serve ``app`` on 127.0.0.1 until the block ends; yields the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serving_world(tmp_path: Path, template: Path) -> Iterator[tuple[int, World]]:
    """The API tests' small center (:func:`api.conftest.build_world`) on a copy of the migrated
    SQLite template, served; yields the port and the world."""
    from aicc.api.app import create_app
    from aicc.config import Settings
    from aicc.store.db import make_engine, session_factory
    from api.conftest import ADMIN_TOKEN, build_world

    path = tmp_path / "aicc.db"
    path.write_bytes(template.read_bytes())
    engine = make_engine(f"sqlite:///{path}")
    try:
        world = build_world(engine)
        settings = Settings(database_url=str(engine.url), admin_token=ADMIN_TOKEN)
        with serving(create_app(settings, session_factory=session_factory(engine))) as port:
            yield port, world
    finally:
        engine.dispose()
