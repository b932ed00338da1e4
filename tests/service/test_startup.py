"""Start-up failures are one line naming the key, exit 2, and nothing is announced before the
address is held: a port in use, a host that is not this machine's, an unusable database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from aicc.cli import app
from aicc.errors import ConfigError
from aicc.service.serve import listen
from aicc.store.db import make_engine, open_database

runner = CliRunner()


def _busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


def test_listen_names_the_port_in_use_and_the_bad_host() -> None:
    held, port = _busy_port()
    try:
        with pytest.raises(ConfigError) as info:
            listen("127.0.0.1", port)
        assert info.value.field == "server.port" and "in use" in info.value.message
    finally:
        held.close()
    with pytest.raises(ConfigError) as info:
        listen("999.1.1.1", 8000)
    assert info.value.field == "server.host" and "999.1.1.1" in info.value.message
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.getsockname()[1] > 0
    finally:
        sock.close()


def _free_port() -> int:
    s, port = _busy_port()
    s.close()
    return port


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"AICC_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'aicc.db'}",
            "AICC_FLEET_PHASE": "lab", "AICC_CONFIG": "", **extra}


def test_serve_on_a_port_in_use_exits_2_before_announcing(tmp_path: Path) -> None:
    held, port = _busy_port()
    try:
        result = runner.invoke(app, ["serve", "--port", str(port)], env=_env(tmp_path))
    finally:
        held.close()
    assert result.exit_code == 2, result.output
    assert "server.port" in result.output and "serving" not in result.output
    assert "admin token" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("env", "key"), [
    ({"AICC_HOST": "999.1.1.1"}, "server.host"),
    ({"AICC_DATABASE_URL": "sqlite:////proc/nope/x.db"}, "database_url"),
    ({"AICC_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/x"}, "database_url"),
    ({"AICC_FLEET_PHASE": "zz"}, "engine.fleet_phase"),
    ({"AICC_ADMIN_TOKEN": "has spaces in it but long enough"}, "admin_token"),
])
def test_serve_start_up_errors_name_the_key(tmp_path: Path, env: dict[str, str],
                                            key: str) -> None:
    result = runner.invoke(app, ["serve", "--port", str(_free_port())],
                           env=_env(tmp_path, **env))
    assert result.exit_code == 2, result.output
    assert key in result.output and "Traceback" not in result.output
    assert "serving" not in result.output


@pytest.mark.parametrize("url", ["sqlite:////proc/nope/x.db",
                                 "postgresql+psycopg://u:secret@127.0.0.1:1/x"])
def test_db_upgrade_on_an_unusable_database_exits_2(tmp_path: Path, url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env=_env(tmp_path, AICC_DATABASE_URL=url))
    assert result.exit_code == 2, result.output
    assert "database_url" in result.output and "Traceback" not in result.output
    assert "secret" not in result.output


def test_open_database_checks_the_connection(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_engine("sqlite:////proc/nope/x.db")
    assert info.value.field == "database_url"
    with pytest.raises(ConfigError):
        open_database("sqlite:////proc/x.db")  # the directory exists, the file cannot
    open_database(f"sqlite:///{tmp_path / 'ok.db'}").dispose()


def test_serve_announces_only_once_it_listens(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, **_env(tmp_path, AICC_PORT=str(port), AICC_CYCLE_INTERVAL_S="1")}
    cmd = [sys.executable, "-c", "from aicc.cli import main; main()", "serve"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"aicc: serving http://127.0.0.1:{port}"), line
        # The socket is bound and listening when the URL is printed: a connection is accepted
        # at once (answered as soon as uvicorn's loop runs).
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
