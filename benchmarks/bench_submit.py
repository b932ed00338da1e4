"""Job submissions per second through the real service, on SQLite and on PostgreSQL.

For each store: a fresh database (migrated, seeded with the 2028 fleet and one tenant) and a
real ``uvicorn`` subprocess serving ``aicc.api.app:app_from_env`` (httptools, uvloop, no access
log). The load comes from ``wrk``, a C load generator, so that the client takes little of the
machine's CPU from the server: ``--concurrency`` keep-alive connections, each POSTing a valid
job with a unique ``Idempotency-Key``. A Lua script counts the ``201`` answers, keeps the job id
of each, and wrk's own histogram gives the latency percentiles. A submission counts when its
``201`` arrives; the service answers only after the transaction holding the job has committed,
and after each run every acknowledged id is looked up in the database (a missing one fails the
run), and the number of jobs stored during the run must equal the acknowledgements plus at most
one request per connection left in flight when wrk stopped.

The concurrent measurement runs ``--runs`` times (3 by default) on the same server; the median
run by rate is reported. Without ``wrk`` (``scripts/bench.sh`` installs it), or with
``--client python``, an asyncio client on raw sockets drives the load instead; ``--client both``
reports it too. The baseline, measured the same way in the same run, is one client submitting
serially (what a user's script looping over ``sbatch`` does).

Prints, per store: ``RESULT store=<store> mode=serial ...``, one line per run and, last,
``RESULT store=<store> submits_per_s=N p50_ms=N p99_ms=N``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from _serve import free_port, stop, wait_healthy
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

# POST /v1/jobs with a unique Idempotency-Key per request; the job id of every 201 is kept and
# written, one a line, to $AICC_WRK_OUT by done(), which also prints one WRK line.
WRK_LUA = r"""
-- POST /v1/jobs with a unique Idempotency-Key per request; records acknowledged job ids.
local threads = {}
local counter = 0
acked = {}
nacked = 0
bad = 0
first_bad = ""

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  prefix = os.getenv("AICC_WRK_TAG") .. "-" .. tid .. "-"
  body = os.getenv("AICC_WRK_BODY")
  headers = {["Authorization"] = "Bearer " .. os.getenv("AICC_WRK_TOKEN"),
             ["Content-Type"] = "application/json"}
end

function request()
  counter = counter + 1
  headers["Idempotency-Key"] = prefix .. counter
  return wrk.format("POST", "/v1/jobs", headers, body)
end

function response(status, hdrs, resp)
  if status == 201 then
    nacked = nacked + 1
    acked[nacked] = tonumber(string.match(resp, '"id":%s*(%d+)'))
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(resp, 1, 200) end
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("AICC_WRK_OUT"), "w"))
  local n, nbad, fb = 0, 0, ""
  for _, t in ipairs(threads) do
    local ids = t:get("acked")
    for i = 1, t:get("nacked") do out:write(ids[i], "\n") end
    n = n + t:get("nacked")
    nbad = nbad + t:get("bad")
    if fb == "" then fb = t:get("first_bad") end
  end
  out:close()
  local e = summary.errors
  io.write(string.format(
    "WRK acked=%d bad=%d requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
    "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d status_errors=%d first_bad=%q\n",
    n, nbad, summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status, fb))
end
"""
WRK_RE = re.compile(r"^WRK (.*)$", re.M)


def _body(project_id: int) -> bytes:
    return json.dumps({"project_id": project_id, "accelerator_type": "h100-sxm-80g",
                       "gang": {"nodes": 1, "per_node": 8}, "time_limit_s": 3600,
                       "name": "bench"}).encode()


def _stored_jobs(db_url: str) -> int:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(Job)).scalar_one())
    engine.dispose()
    return n


def run_wrk(port: int, token: str, project_id: int, connections: int, threads: int,
            seconds: float, tmp: Path) -> tuple[dict[str, str], list[int]]:
    """One wrk run; its summary fields and the acknowledged job ids."""
    script = tmp / "submit.lua"
    script.write_text(WRK_LUA)
    out = tmp / f"acked-{uuid.uuid4().hex}.txt"
    env = dict(os.environ, AICC_WRK_TAG=uuid.uuid4().hex, AICC_WRK_TOKEN=token,
               AICC_WRK_BODY=_body(project_id).decode(), AICC_WRK_OUT=str(out))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    m = WRK_RE.search(done.stdout)
    if done.returncode != 0 or m is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout[-500:]} "
                         f"{done.stderr[-500:]}")
    fields = dict(kv.split("=", 1) for kv in m.group(1).split(" first_bad=")[0].split())
    fields["first_bad"] = m.group(1).split(" first_bad=", 1)[1]
    ids = [int(x) for x in out.read_text().split()]
    out.unlink()
    return fields, ids


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


def start_server(db_url: str, port: int, workers: int, tmp: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, AICC_DATABASE_URL=db_url, AICC_CONFIG=str(tmp / "none.toml"))
    (tmp / "none.toml").write_text("")
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "aicc.api.app:app_from_env",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--no-access-log", "--workers", str(workers), "--http", "httptools",
           "--loop", "uvloop", "--backlog", "4096"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp)
    wait_healthy(proc, f"http://127.0.0.1:{port}")
    return proc


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
    body = _body(project_id)
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


def _python_run(store: str, label: str, port: int, token: str, pid: int, conc: int,
                args: argparse.Namespace, dur: float, db_url: str,
                proc: subprocess.Popen[bytes]) -> tuple[float, float, float]:
    """One run of the asyncio client; prints its line and returns (rate, p50, p99)."""
    cpu0, own0 = _cpu_seconds(proc.pid), time.process_time()
    lat, ids, errors, seconds = asyncio.run(drive(port, token, pid, conc, args.warmup, dur))
    n_all = max(1, len(lat))
    server_ms = (_cpu_seconds(proc.pid) - cpu0) * 1000 / n_all
    client_ms = (time.process_time() - own0) * 1000 / n_all
    if errors:
        raise SystemExit(f"{len(errors)} submissions failed, e.g. {errors[0]}")
    verify(db_url, ids)
    ms = np.array(lat) * 1000.0
    rate = len(lat) / seconds
    p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
    print(f"RESULT store={store} mode={label} client=python clients={conc} "
          f"workers={args.workers} submits_per_s={rate:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f} "
          f"verified={len(ids)} server_cpu_ms_per_submit={server_ms:.3f} "
          f"client_cpu_ms_per_submit={client_ms:.3f} load_avg_1m={os.getloadavg()[0]:.1f}",
          flush=True)
    return rate, p50, p99


def _wrk_run(store: str, run: int, port: int, token: str, pid: int,
             args: argparse.Namespace, db_url: str, proc: subprocess.Popen[bytes],
             tmp: Path) -> tuple[float, float, float]:
    """One wrk run, checked against the database; prints its line, returns (rate, p50, p99)."""
    before = _stored_jobs(db_url)
    cpu0 = _cpu_seconds(proc.pid)
    w, ids = run_wrk(port, token, pid, args.concurrency, args.wrk_threads, args.duration, tmp)
    server_cpu = _cpu_seconds(proc.pid) - cpu0
    stored = _stored_jobs(db_url) - before
    acked = int(w["acked"])
    if int(w["bad"]) or int(w["status_errors"]):
        raise SystemExit(f"{w['bad']} submissions were not acknowledged, e.g. {w['first_bad']}")
    if len(ids) != acked or len(set(ids)) != acked:
        raise SystemExit(f"wrk counted {acked} acknowledgements but kept {len(set(ids))} ids")
    verify(db_url, ids)  # every acknowledged job is committed
    # Jobs stored but not acknowledged: requests in flight when wrk stopped, at most one per
    # connection (plus one per connection wrk had to reopen).
    unacked = stored - acked
    reopened = int(w["read_errors"]) + int(w["write_errors"]) + int(w["timeouts"])
    if unacked < 0 or unacked > args.concurrency + reopened:
        raise SystemExit(f"{stored} jobs stored for {acked} acknowledgements")
    seconds = int(w["duration_us"]) / 1e6
    rate = acked / seconds
    p50, p99 = int(w["p50_us"]) / 1000, int(w["p99_us"]) / 1000
    print(f"RESULT store={store} mode=concurrent client=wrk run={run} "
          f"connections={args.concurrency} workers={args.workers} submits_per_s={rate:.0f} "
          f"p50_ms={p50:.2f} p99_ms={p99:.2f} max_ms={int(w['max_us']) / 1000:.1f} "
          f"acked={acked} stored={stored} in_flight_at_stop={unacked} "
          f"socket_errors={reopened + int(w['connect_errors'])} "
          f"server_cpu_ms_per_submit={server_cpu * 1000 / max(1, stored):.3f} "
          f"load_avg_1m={os.getloadavg()[0]:.1f}", flush=True)
    return rate, p50, p99


def run_store(store: str, db_url: str, args: argparse.Namespace, tmp: Path) -> None:
    token, pid = prepare(db_url)
    port = free_port()
    proc = start_server(db_url, port, args.workers, tmp)
    use_wrk = args.client in ("wrk", "both") and shutil.which("wrk") is not None
    if args.client in ("wrk", "both") and not use_wrk:
        print("bench_submit: wrk not found (scripts/bench.sh installs it); the asyncio client "
              "drives the load", flush=True)
    try:
        serial, s50, s99 = _python_run(store, "serial", port, token, pid, 1, args,
                                       args.duration / 2, db_url, proc)
        runs: list[tuple[float, float, float]] = []
        if use_wrk:
            run_wrk(port, token, pid, args.concurrency, args.wrk_threads, args.warmup + 1, tmp)
            runs = [_wrk_run(store, k + 1, port, token, pid, args, db_url, proc, tmp)
                    for k in range(args.runs)]
        py_runs = ([_python_run(store, "concurrent", port, token, pid, args.concurrency, args,
                                args.duration, db_url, proc)
                    for _ in range(1 if use_wrk else args.runs)]
                   if args.client in ("python", "both") or not use_wrk else [])
        runs = runs or py_runs
        rate, p50, p99 = sorted(runs)[len(runs) // 2]
        print(f"RESULT store={store} summary client={'wrk' if use_wrk else 'python'} "
              f"runs={len(runs)} rates={','.join(f'{r:.0f}' for r, _, _ in runs)} "
              f"median={statistics.median(r for r, _, _ in runs):.0f} "
              f"vs_serial={rate / serial:.1f}x serial_p50_ms={s50:.2f} serial_p99_ms={s99:.2f}",
              flush=True)
        print(f"RESULT store={store} submits_per_s={rate:.0f} p50_ms={p50:.2f} "
              f"p99_ms={p99:.2f}", flush=True)
    finally:
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrency", type=int, default=16,
                    help="keep-alive connections, each with one request in flight")
    ap.add_argument("--duration", type=float, default=6.0, help="measured seconds per run")
    ap.add_argument("--runs", type=int, default=3, help="concurrent runs; the median is reported")
    ap.add_argument("--client", choices=("wrk", "python", "both"), default="both",
                    help="load generator of the reported runs (both: wrk, plus one python run)")
    ap.add_argument("--wrk-threads", type=int, default=1)
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
