"""Submissions into a real localhost Slurm 22.05: aicc's path against bare ``sbatch``.

Measured in one run, on the same cluster (``scripts/slurm-lab.sh``, started here if needed):

- ``aicc_submits_per_s``: jobs per second through the Slurm engine's submit path — per job one
  :meth:`SlurmEngine.start` call, i.e. ``sbatch --hold`` + ``scontrol update NodeList=…`` +
  ``scontrol release``: everything aicc does between a scheduler decision and Slurm owning the
  job. (Not through the HTTP API: an API submission only stores the job; Slurm hears of it when
  the scheduler decides, which this path measures.)
- ``aicc_submits_cycle8_per_s``: the same when a scheduler cycle starts 8 jobs at once (8
  ``sbatch --hold --nodelist``, one ``scontrol release``).
- ``sbatch_serial_per_s`` / ``sbatch_parallel8_per_s``: plain ``sbatch --wrap true``, one at a
  time and from 8 parallel submitters.
- ``decision_to_running_median_s``: from an aicc decision (the call to ``start``) to Slurm
  reporting the job RUNNING, on an idle cluster, one job at a time.

Run: ``.venv/bin/python benchmarks/bench_slurm.py`` (root on Debian; ``make bench`` runs it).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aicc.engines.base import LaunchSpec, StartOrder  # noqa: E402
from aicc.engines.slurm import SlurmEngine, SlurmRunner  # noqa: E402

LAB = Path(os.environ.get("AICC_SLURM_LAB")
           or Path(os.environ.get("TMPDIR", "/tmp")) / "aicc-slurm-lab")
N_SERIAL = int(os.environ.get("BENCH_SLURM_N", "150"))
N_LATENCY = int(os.environ.get("BENCH_SLURM_LATENCY_N", "15"))


def lab(cmd: str) -> int:
    return subprocess.run(["bash", str(ROOT / "scripts" / "slurm-lab.sh"), cmd],
                          capture_output=cmd != "start", check=False).returncode


def wait_drained(runner: SlurmRunner, prefix: str | None = None, limit_s: float = 120) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        active = [j for j in runner.json(["squeue"])["jobs"]
                  if j["job_state"] in {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING"}
                  and (prefix is None or str(j["name"]).startswith(prefix))]
        if not active:
            return
        time.sleep(0.5)


def bench_sbatch(runner: SlurmRunner, account: str, n: int, parallel: int) -> float:
    argv = ["sbatch", "--parsable", f"--account={account}", "--job-name=bench-sbatch",
            "--output=/dev/null", "--time=1", "--wrap=true"]

    def one(_: int) -> None:
        runner.run(argv)

    t0 = time.perf_counter()
    if parallel == 1:
        for i in range(n):
            one(i)
    else:
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(one, range(n)))
    return n / (time.perf_counter() - t0)


def spec(job_id: int, runtime: float) -> LaunchSpec:
    return LaunchSpec(job_id=job_id, project="bench", accelerator_type="h100-sxm-80g", nodes=1,
                      per_node=1, time_limit_s=60, runtime_s=runtime)


def main() -> None:
    started_here = False
    if lab("status") != 0:
        print("bench_slurm: starting the localhost Slurm lab", flush=True)
        if lab("start") != 0:
            print("bench_slurm: cannot start Slurm here (needs root on Debian); skipped")
            return
        started_here = True
    try:
        runner = SlurmRunner(LAB / "etc" / "slurm.conf", timeout_s=30)
        prefix = f"b{os.getpid()}"
        engine = SlurmEngine(runner, prefix=prefix, poll_interval_s=0.02)
        nodes = engine.fleet().names
        engine.accounts.ensure_project_account("bench")
        wait_drained(runner)

        # aicc: decision -> Slurm owns the job, one job per start() call.
        t0 = time.perf_counter()
        for i in range(N_SERIAL):
            s = spec(i + 1, 0.0)
            engine.start([StartOrder(s, (nodes[i % len(nodes)],), (1,))], time.time())
        aicc_rate = N_SERIAL / (time.perf_counter() - t0)
        wait_drained(runner)
        # aicc: a cycle that decided 8 starts: 8 sbatch --hold, one scontrol release.
        t0 = time.perf_counter()
        for b in range(N_SERIAL // 8):
            engine.start([StartOrder(spec(10_000 + 8 * b + k, 0.0), (nodes[k % len(nodes)],),
                                     (1,)) for k in range(8)], time.time())
        batch_rate = 8 * (N_SERIAL // 8) / (time.perf_counter() - t0)
        wait_drained(runner)

        serial = bench_sbatch(runner, "bench", N_SERIAL, 1)
        wait_drained(runner)
        parallel = bench_sbatch(runner, "bench", 2 * N_SERIAL, 8)
        wait_drained(runner)

        # Decision -> RUNNING in Slurm, one job at a time on an idle cluster.
        latencies = []
        engine.poll(time.time())
        for k in range(N_LATENCY):
            jid = 100_000 + k
            t_decide = time.time()
            engine.start([StartOrder(spec(jid, 0.5), (nodes[k % len(nodes)],), (1,))], t_decide)
            seen = None
            while seen is None and time.time() - t_decide < 30:
                for ev in engine.poll(time.time()):
                    if ev.job_id == jid and ev.kind == "started":
                        seen = time.time()
                time.sleep(0.01)
            if seen is not None:
                latencies.append(seen - t_decide)
        engine.cancel_all()
        median = statistics.median(latencies) if latencies else float("nan")
        print(f"bench_slurm: {N_SERIAL} aicc starts, {N_SERIAL} serial and {2 * N_SERIAL} "
              f"parallel sbatch; {len(latencies)} latency samples (min "
              f"{min(latencies, default=float('nan')):.3f}s, max "
              f"{max(latencies, default=float('nan')):.3f}s); Slurm client calls in this run "
              f"(all parts): {runner.stats.by_command}")
        print(f"RESULT aicc_submits_cycle8_per_s={batch_rate:.1f}")
        print(f"RESULT decision_to_running_median_s={median:.3f}")
        print(f"RESULT aicc_submits_per_s={aicc_rate:.1f} sbatch_serial_per_s={serial:.1f} "
              f"sbatch_parallel8_per_s={parallel:.1f}")
    finally:
        if started_here:
            lab("stop")


if __name__ == "__main__":
    main()
