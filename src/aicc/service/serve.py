"""``aicc serve``: the control plane and the API in one process.

Start-up, in order: reset the database if asked, migrate it to head, seed the catalog and the
default sectors, write the configured fleet phase into the store, pick the admin token, build
the engine from the stored fleet, pick the clock, seed the demo center when asked, reconcile
running jobs with the engine, then run cycles in a thread while uvicorn serves the API.

Restarting resumes the same center: every step is idempotent, the admin token is reused, and an
accelerated clock resumes from the latest time the store has seen (it never runs backwards).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from aicc.api.tokens import TOKEN_RE
from aicc.catalog import default_catalog
from aicc.clock import AcceleratedClock, Clock, WallClock
from aicc.config import Settings
from aicc.engines import make_engine as make_exec_engine
from aicc.engines.base import Engine as ExecEngine
from aicc.engines.twin import TwinEngine
from aicc.errors import ConfigError
from aicc.fleet import FleetArrays, build_fleet, phase
from aicc.service.loop import ControlPlane, Feeder
from aicc.service.snapshot import ABSENT_REASON, load_fleet, ts
from aicc.store.db import open_database, session_factory, transaction
from aicc.store.migrate import upgrade
from aicc.store.models import Base, Job, JobEventRow, LedgerEntry, Node, NodeState
from aicc.store.seed import seed_default_sectors, sync_fleet

log = logging.getLogger("aicc.service")

ADMIN_TOKEN_FILE = "admin-token"
DEMO_TOKENS_FILE = "demo-tokens.json"


def var_dir(settings: Settings) -> Path:
    """Where the service keeps its files: beside a SQLite database, else ``./var``."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    return Path("var").resolve()


def admin_token(settings: Settings, var: Path) -> tuple[str, str]:
    """The admin token and where it came from: the configuration (``AICC_ADMIN_TOKEN``), else
    a token generated on the first start and kept in ``var/admin-token`` (mode 0600)."""
    if settings.admin_token:
        return settings.admin_token, "configuration"
    path = var / ADMIN_TOKEN_FILE
    if path.exists():
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):  # a folder, unreadable, not text
            token = ""
        if not TOKEN_RE.fullmatch(token):
            raise ConfigError(f"{path} holds no valid token; delete it to generate a new one",
                              field=str(path))
        return token, str(path)
    var.mkdir(parents=True, exist_ok=True)
    token = "aicc_admin_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, str(path)


def reset_database(db: Engine) -> None:
    """Drop every table (ours and Alembic's) so that the next upgrade starts empty."""
    Base.metadata.drop_all(db)
    with db.begin() as conn:
        if inspect(conn).has_table("alembic_version"):
            conn.execute(text("DROP TABLE alembic_version"))


def retire_absent_nodes(session: Session, present: set[str]) -> int:
    """Mark stored nodes the engine does not report as down, so nothing is placed on them
    (a fleet phase changed, or the Slurm cluster lost nodes); returns how many changed."""
    changed = 0
    for node in session.scalars(select(Node)):
        if node.name not in present and (node.state != NodeState.DOWN
                                          or node.repair_at is not None):
            # An absent node is not repaired: it comes back only when the fleet has it again.
            node.state, node.state_reason, node.repair_at = NodeState.DOWN, ABSENT_REASON, None
            changed += 1
        elif (node.name in present and node.state == NodeState.DOWN
              and node.state_reason == ABSENT_REASON):
            node.state, node.state_reason = NodeState.UP, ""  # back in the fleet
    return changed


def pending_repairs(session: Session) -> dict[str, float]:
    """Nodes down for a failure and when each comes back up (``nodes.repair_at``). A node
    down with no repair due (absent from the fleet, failed without a repair time) is not
    listed: it stays out of service until someone brings it back. A drained node that is
    repaired comes back healthy and still drained (``nodes.drained`` is apart from health)."""
    rows = session.execute(select(Node.name, Node.repair_at).where(
        Node.state == NodeState.DOWN, Node.repair_at.is_not(None))).all()
    return {name: ts(at) for name, at in rows}


def resume_time(session: Session) -> float | None:
    """The latest clock time the store has recorded (None for an empty center)."""
    latest = [session.scalar(select(func.max(JobEventRow.time))),
              session.scalar(select(func.max(Job.submitted_at))),
              session.scalar(select(func.max(LedgerEntry.period_end)))]
    times = [ts(t) for t in latest if t is not None]
    return max(times) if times else None


def make_clock(settings: Settings, *, demo: bool, resume_at: float | None) -> Clock:
    """Wall time for a live center; an accelerated clock (``demo.clock_speed``) for the demo,
    or when ``AICC_CLOCK_SPEED`` / ``demo.clock_speed`` is set explicitly (rehearsals, tests).
    An accelerated clock resumes from ``resume_at`` if that lies ahead of the wall."""
    explicit = "clock_speed" in settings.demo.model_fields_set
    if not (demo or explicit):
        return WallClock()
    origin = max(time.time(), resume_at or 0.0)
    return AcceleratedClock(settings.demo.clock_speed, origin=origin)


@dataclass
class Service:
    """Everything ``serve`` builds, so tests and the CLI can drive it without uvicorn."""

    settings: Settings
    db: Engine
    factory: sessionmaker[Session]
    engine: ExecEngine
    clock: Clock
    control_plane: ControlPlane
    admin_token: str
    admin_token_source: str
    demo_tokens_file: Path | None = None

    def close(self) -> None:
        self.control_plane.stop()
        self.engine.close()
        self.db.dispose()


def build_service(settings: Settings, *, demo: bool = False, reset: bool = False,
                  say: Callable[[str], None] = print) -> Service:
    var = var_dir(settings)
    db = open_database(settings.database_url)
    if reset:
        reset_database(db)
        say("aicc: database reset")
    upgrade(db)
    factory = session_factory(db)
    token, source = admin_token(settings, var)
    settings = settings.model_copy(update={"admin_token": token})
    engine: ExecEngine | None = None
    if settings.engine.kind == "twin":
        ph = phase(settings.engine.fleet_phase)
        reported, site = build_fleet(ph), ph.site
    else:
        # A real engine owns its fleet: discover it, and store what it reports.
        engine = make_exec_engine(settings.engine.kind,
                                  FleetArrays.from_nodes(default_catalog(), []), settings)
        reported, site = engine.fleet(), None
    with transaction(factory) as session:
        seed_default_sectors(session)
        sync_fleet(session, reported, site=site)
        retired = retire_absent_nodes(session, set(reported.names))
        resume_at = resume_time(session)
    if retired:
        say(f"aicc: {retired} stored nodes are not in the engine's fleet; marked down")
    with factory() as session:
        fleet, _ = load_fleet(session)
        repairs = pending_repairs(session)
    if engine is None:
        # The twin's repair schedule lived in the previous process: give it back, so a node
        # down for a failure returns when its repair is due (at once if that has passed).
        twin = engine = TwinEngine(fleet)
        known = set(fleet.names)
        for name, at in sorted(repairs.items()):
            if name in known:
                twin.schedule_node_repair(name, at)
    clock = make_clock(settings, demo=demo, resume_at=resume_at)
    feeders: list[Feeder] = []
    demo_file: Path | None = None
    if demo:
        feeders, demo_file = _demo(settings, factory, fleet, clock, var, say)
    cp = ControlPlane(settings, factory, engine, clock, settings.scheduler.policy,
                      feeders=feeders)
    done = cp.reconcile(clock.now())
    if any(done.values()):
        words = {"adopted": "running jobs adopted", "requeued": "running jobs requeued",
                 "cancelled": "engine jobs the store did not run cancelled",
                 "charged": "jobs cancelled while running charged"}
        say("aicc: resumed the center: " + ", ".join(
            f"{n:,} {words.get(what, what)}" for what, n in done.items() if n))
    return Service(settings, db, factory, engine, clock, cp, token, source, demo_file)


def _demo(settings: Settings, factory: sessionmaker[Session], fleet, clock: Clock, var: Path,
          say: Callable[[str], None]) -> tuple[list[Feeder], Path | None]:
    from aicc.service.demo import DemoWorkload, reissue_tokens, seed_demo

    path = var / DEMO_TOKENS_FILE
    staged = path.with_name(path.name + ".new")
    if path.exists() and not path.is_file():  # (before anything is stored)
        raise ConfigError(f"demo tokens: {path} is not a regular file; remove it, and the demo "
                          "members' tokens are written there", field="demo_tokens_file")
    lost = False
    # The members' tokens are written beside the file before their hashes are committed, and
    # put in its place after: a file that cannot be written stores no center (or no new
    # tokens), and a commit that fails leaves the file as it was.
    try:
        with transaction(factory) as session:
            center = seed_demo(session, settings, fleet, now=clock.now())
            if center.created and center.tokens:
                _write_tokens(staged, center.tokens, "the demo center was not stored")
            elif not center.created and not path.is_file():
                lost = True
                _write_tokens(staged, reissue_tokens(session), "no new tokens were stored")
        if staged.exists():
            try:
                os.replace(staged, path)
            except OSError as exc:
                raise ConfigError(f"demo tokens: cannot write {path} ({exc.strerror or exc})",
                                  field="demo_tokens_file") from None
    finally:
        if staged.is_file():  # (a commit that failed: the file stays as it was)
            staged.unlink()
    if center.created:
        say(f"aicc: demo center created: {center.organizations} organizations, "
            f"{center.projects} projects, {center.grants} grants; member tokens in {path}")
    else:
        say(f"aicc: demo center resumed: {center.projects} projects, {center.grants} grants"
            + (f"; its member tokens were not in {path}: new ones written there" if lost
               else ""))
    with factory() as session:
        workload = DemoWorkload.from_store(session, settings, fleet)
    return [workload.submit_due], (path if path.exists() else None)


def _write_tokens(path: Path, tokens: dict[str, str], outcome: str) -> None:
    """The demo members' tokens, readable by this user only; ConfigError naming the file and
    ``outcome`` when it cannot be written (a folder there, no permission)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(tokens, f, indent=1, sort_keys=True)
    except OSError as exc:
        raise ConfigError(f"demo tokens: cannot write {path} ({exc.strerror or exc}); "
                          f"{outcome}", field="demo_tokens_file") from None


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, or :class:`ConfigError` naming
    ``server.host`` or ``server.port`` (an address that does not resolve or is not this
    machine's; a port in use or not allowed)."""
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"server.host: cannot listen on {where}: {host!r} is not an address "
                          f"of this machine ({exc})", field="server.host") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        field = ("server.host" if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
                 else "server.port")
        raise ConfigError(f"{field}: cannot listen on {where}: {exc.strerror or exc}",
                          field=field) from None
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, *, demo: bool = False, reset: bool = False) -> None:
    """Run the center until interrupted (SIGINT/SIGTERM stop it cleanly; SIGKILL is safe).

    The address is bound before anything else, and the URL and admin token are printed only
    once it is held: a port in use or a bad host is one line naming the key (ConfigError)."""
    import uvicorn

    from aicc.api.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sock = listen(settings.server.host, settings.server.port)
    try:
        svc = build_service(settings, demo=demo, reset=reset)
    except BaseException:
        sock.close()
        raise
    s = svc.settings
    try:
        app = create_app(s, session_factory=svc.factory, control_plane=svc.control_plane)
        speed = getattr(svc.clock, "speed", 1.0)
        host = f"[{s.server.host}]" if ":" in s.server.host else s.server.host
        url = f"http://{host}:{s.server.port}"
        # A real engine's fleet is its own (discovered), not a phase of the twin's.
        fleet = (f"fleet {s.engine.fleet_phase}" if s.engine.kind == "twin"
                 else f"fleet from {svc.engine.name}")
        print(f"aicc: serving {url}  (engine {svc.engine.name}, {fleet}, "
              f"{svc.engine.fleet().n_accelerators:,} accelerators, clock x{speed:g})")
        print(f"aicc: admin token {svc.admin_token}  (from {svc.admin_token_source})")
        sys.stdout.flush()
        svc.control_plane.start()
        config = uvicorn.Config(app, host=s.server.host, port=s.server.port,
                                log_level="warning")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        svc.close()
        sock.close()
