"""One control-plane cycle at phase 2028 scale (15,000 accelerators, 1,875 nodes) on SQLite.

A fresh store holds the 2028 fleet, twelve projects with grants and ``--jobs`` pending jobs; the
loop runs with the twin engine on a virtual clock advancing ``--step`` seconds per cycle, so jobs
start, finish and are charged as in the live service. Each cycle's wall time is split into the
scheduler call (the pure core, the baseline measured in the same process) and everything around
it (engine poll, events and ledger in one transaction, snapshot from the store, durable starts).

Prints ``RESULT cycle_ms_p50=… cycle_ms_p95=… schedule_ms_p50=… overhead_ratio=…`` (cycle time
over scheduler time) plus the jobs started and finished over the run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from aicc.allocation.grants import create_grant
from aicc.clock import VirtualClock
from aicc.config import Settings
from aicc.engines.twin import TwinEngine
from aicc.fleet import build_fleet
from aicc.service.loop import ControlPlane
from aicc.service.snapshot import dt, load_fleet
from aicc.store.db import make_engine, session_factory, transaction
from aicc.store.migrate import upgrade
from aicc.store.models import Job, JobState, LedgerEntry, Role, User
from aicc.store.seed import seed_default_sectors, sync_fleet
from aicc.tenancy import service as tenancy
from aicc.tenancy.access import load_principal
from aicc.workload.jobs import JobSubmission, NodeShapes, SubmitRequest, submit_jobs

T0 = 1_900_000_000.0


def prepare(url: str, n_jobs: int, seed: int) -> None:
    db = make_engine(url)
    upgrade(db)
    rng = np.random.default_rng(seed)
    factory = session_factory(db)
    with transaction(factory) as s:
        sectors = seed_default_sectors(s)
        sync_fleet(s, build_fleet("2028"))
        members = []
        for k in range(12):
            org = tenancy.create_organization(session=s, name=f"org-{k}",
                                              sector_id=sectors[k % 3].id)
            p = tenancy.create_project(session=s, name=f"proj-{k}", organization_id=org.id)
            u = tenancy.create_user(session=s, name=f"user-{k}")
            tenancy.create_membership(session=s, user_id=u.id, role=Role.MEMBER,
                                      project_id=p.id)
            for t in ("h100-sxm-80g", "h200-141g", "ascend-910b", "mlu370-x8"):
                create_grant(session=s, project_id=p.id, accelerator_type=t,
                             accelerator_hours=1e7, start=dt(T0) - timedelta(days=1),
                             end=dt(T0) + timedelta(days=365))
            members.append((p.id, u.id))
    types = ["h100-sxm-80g", "h200-141g", "ascend-910b", "mlu370-x8"]
    shapes = NodeShapes(ttl_s=1e9)
    batch = 2000
    for start in range(0, n_jobs, batch):
        with transaction(factory) as s:
            principals = {uid: load_principal(session=s, user=s.get(User, uid))
                          for _, uid in members}
            reqs = []
            for _ in range(min(batch, n_jobs - start)):
                pid, uid = members[int(rng.integers(len(members)))]
                big = rng.random() < 0.2
                gang = ({"nodes": int(rng.choice([2, 4, 8, 16])), "per_node": 8} if big
                        else {"nodes": 1, "per_node": int(rng.choice([1, 2, 4, 8]))})
                reqs.append(SubmitRequest(principals[uid], JobSubmission(
                    project_id=pid, accelerator_type=types[int(rng.integers(4))], gang=gang,
                    time_limit_s=4 * 3600.0,
                    runtime_s=float(rng.uniform(600, 3 * 3600)))))
            submit_jobs(session=s, requests=reqs, now=dt(T0), shapes=shapes)
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--step", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'aicc.db'}"
        prepare(url, args.jobs, args.seed)
        db = make_engine(url)
        factory = session_factory(db)
        with factory() as s:
            fleet, _ = load_fleet(s)
        clock = VirtualClock(T0)
        cp = ControlPlane(Settings(database_url=url), factory, TwinEngine(fleet), clock,
                          "fairshare")
        cycle_ms, sched_ms = [], []
        for _ in range(args.cycles):
            clock.advance_to(clock.now() + args.step)
            t0 = time.perf_counter()
            st = cp.run_cycle()
            cycle_ms.append((time.perf_counter() - t0) * 1e3)
            sched_ms.append(st.schedule_s * 1e3)
        with factory() as s:
            finished = s.scalar(select(func.count(Job.id))
                                .where(Job.state == JobState.FINISHED))
            entries = s.scalar(select(func.count(LedgerEntry.id)))
        busy = sum(st.busy_by_type.values())
        c50, c95 = np.percentile(cycle_ms, [50, 95])
        s50 = float(np.percentile(sched_ms, 50))
        print(f"RESULT store=sqlite fleet=2028 pending_start={args.jobs} cycles={args.cycles} "
              f"cycle_ms_p50={c50:.1f} cycle_ms_p95={c95:.1f} schedule_ms_p50={s50:.1f} "
              f"overhead_ratio={c50 / max(s50, 1e-9):.2f}")
        print(f"RESULT finished={finished} ledger_entries={entries} busy_accelerators={busy} "
              f"pending_end={st.pending} first_cycle_ms={cycle_ms[0]:.1f}")
        db.dispose()


if __name__ == "__main__":
    main()
