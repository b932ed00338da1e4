"""Job submissions per second through the real service, on SQLite and on PostgreSQL.

For each store: a fresh database (migrated, seeded with the 2028 fleet and one tenant), a real
``uvicorn`` subprocess serving ``aicc.api.app:app_from_env``, and a small asyncio load generator
holding ``--concurrency`` keep-alive HTTP/1.1 connections, each submitting jobs back to back with
a unique ``Idempotency-Key``. A submission counts when its ``201`` arrives; the service answers
only after the transaction holding the job has committed, and at the end every acknowledged job
id is looked up in the database (a missing one fails the run).

The baseline, measured the same way in the same run, is one client submitting serially (what a
user's script looping over ``sbatch`` does).

Prints, per store: ``RESULT store=<store> mode=serial ...`` and, last,
``RESULT store=<store> submits_per_s=N p50_ms=N p99_ms=N``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from aicc.allocation.grants import create_grant
from aicc.api.tokens import create_token
from aicc.fleet import build_fleet
from aicc.store.db import make_engine, session_factory, transaction
from aicc.store.migrate import upgrade
from aicc.store.models import Job
from aicc.store.seed import seed_default_sectors, sync_fleet
from aicc.tenancy import service

ROOT = Path(__file__).resolve().parent.parent
ID_RE = re.compile(rb'"id":\s*(\d+)')


def prepare(db_url: str) -> tuple[str, int]:
    """Migrate and seed; returns a member's token and its project id."""
    engine = make_engine(db_url)
    upgrade(engine)
    with transaction(session_factory(engine)) as s:
        sectors = {x.name: x.id for x in seed_default_sectors(s)}
        sync_fleet(s, build_fleet("2028"))
        org = service.create_organization(session=s, name="bench-org",
                                          sector_id=sectors["research"])
        project = service.create_project(session=s, name="bench", organization_id=org.id)
        user = service.create_user(session=s, name="bench-user")
        service.create_membership(session=s, user_id=user.id, role="member",
                                  project_id=project.id)
        create_grant(session=s, project_id=project.id, accelerator_type="h100-sxm-80g",
                     accelerator_hours=1e9, start=datetime(2020, 1, 1, tzinfo=UTC),
                     end=datetime(2100, 1, 1, tzinfo=UTC))
        token = create_token(session=s, user_id=user.id, name="bench")
        pid = project.id
    engine.dispose()
    return token, pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db_url: str, port: int, workers: int, tmp: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, AICC_DATABASE_URL=db_url, AICC_CONFIG=str(tmp / "none.toml"))
    (tmp / "none.toml").write_text("")
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "aicc.api.app:app_from_env",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--no-access-log", "--workers", str(workers), "--http", "httptools",
           "--loop", "uvloop", "--backlog", "4096"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("server exited during start")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not answer /healthz within 30 s")


async def _worker(port: int, token: str, body: bytes, wid: int, t_start: float, t_end: float,
                  lat: list[float], ids: list[int], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    tag = f"{t_start:.6f}"
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n").encode()
    n = 0
    try:
        while True:
            now = time.perf_counter()
            if now >= t_end:
                break
            n += 1
            req = head + f"Idempotency-Key: {tag}-{wid}-{n}\r\n\r\n".encode() + body
            t0 = time.perf_counter()
            writer.write(req)
            status_line_and_headers = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"content-length:\s*(\d+)", status_line_and_headers, re.I)
            payload = await reader.readexactly(int(m.group(1)) if m else 0)
            t1 = time.perf_counter()
            status = int(status_line_and_headers[9:12])
            if status != 201:
                errors.append(f"{status} {payload[:200]!r}")
                continue
            if t0 >= t_start:
                lat.append(t1 - t0)
                ids.append(int(ID_RE.search(payload).group(1)))  # type: ignore[union-attr]
    finally:
        writer.close()


async def drive(port: int, token: str, project_id: int, concurrency: int, warmup: float,
                duration: float) -> tuple[list[float], list[int], list[str], float]:
    body = json.dumps({"project_id": project_id, "accelerator_type": "h100-sxm-80g",
                       "gang": {"nodes": 1, "per_node": 8}, "time_limit_s": 3600,
                       "name": "bench"}).encode()
    lat: list[float] = []
    ids: list[int] = []
    errors: list[str] = []
    t_start = time.perf_counter() + warmup
    t_end = t_start + duration
    await asyncio.gather(*[_worker(port, token, body, w, t_start, t_end, lat, ids, errors)
                           for w in range(concurrency)])
    return lat, ids, errors, duration


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children that are alive, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.append(int(entry))
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def verify(db_url: str, ids: list[int]) -> None:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        found = 0
        for k in range(0, len(ids), 5000):
            chunk = ids[k:k + 5000]
            found += conn.execute(select(func.count()).select_from(Job)
                                  .where(Job.id.in_(chunk))).scalar_one()
    engine.dispose()
    if found != len(ids):
        raise SystemExit(f"{len(ids) - found} acknowledged submissions are not in the store")


def run_store(store: str, db_url: str, args: argparse.Namespace, tmp: Path) -> None:
    token, pid = prepare(db_url)
    port = free_port()
    proc = start_server(db_url, port, args.workers, tmp)
    try:
        for mode, conc, dur in (("serial", 1, args.duration / 2),
                                ("concurrent", args.concurrency, args.duration)):
            cpu0, own0 = _cpu_seconds(proc.pid), time.process_time()
            lat, ids, errors, seconds = asyncio.run(drive(port, token, pid, conc, args.warmup,
                                                          dur))
            n_all = max(1, len(lat))
            server_ms = (_cpu_seconds(proc.pid) - cpu0) * 1000 / n_all
            client_ms = (time.process_time() - own0) * 1000 / n_all
            if errors:
                raise SystemExit(f"{len(errors)} submissions failed, e.g. {errors[0]}")
            verify(db_url, ids)
            ms = np.array(lat) * 1000.0
            rate = len(lat) / seconds
            p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
            if mode == "serial":
                serial = rate
                print(f"RESULT store={store} mode=serial clients=1 submits_per_s={rate:.0f} "
                      f"p50_ms={p50:.2f} p99_ms={p99:.2f}", flush=True)
            else:
                print(f"RESULT store={store} mode=concurrent clients={conc} "
                      f"workers={args.workers} submits_per_s={rate:.0f} "
                      f"vs_serial={rate / serial:.1f}x verified={len(ids)} "
                      f"server_cpu_ms_per_submit={server_ms:.3f} "
                      f"client_cpu_ms_per_submit={client_ms:.3f} "
                      f"load_avg_1m={os.getloadavg()[0]:.1f}", flush=True)
                print(f"RESULT store={store} submits_per_s={rate:.0f} p50_ms={p50:.2f} "
                      f"p99_ms={p99:.2f}", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrency", type=int, default=16,
                    help="keep-alive connections, each with one request in flight")
    ap.add_argument("--duration", type=float, default=8.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--stores", default="sqlite,postgresql")
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    stores = args.stores.split(",")
    with tempfile.TemporaryDirectory(prefix="aicc-bench-") as d:
        tmp = Path(d)
        if "sqlite" in stores:
            run_store("sqlite", f"sqlite:///{tmp / 'bench.db'}", args, tmp)
        pg = os.environ.get("AICC_TEST_POSTGRES_URL")
        if "postgresql" in stores:
            if not pg:
                print("bench_submit: AICC_TEST_POSTGRES_URL unset, PostgreSQL skipped")
                return
            name = f"aicc_bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(pg, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                run_store("postgresql", make_url(pg).set(database=name)
                          .render_as_string(hide_password=False), args, tmp)
            finally:
                with admin.connect() as c:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
