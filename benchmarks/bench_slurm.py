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
- ``api_submits_per_s`` (serial and 8 parallel clients): ``POST /v1/jobs`` to a real
  ``aicc serve`` whose engine is this Slurm cluster, acknowledged after commit; and
  ``api_submit_to_slurm_running_median_s``: from the API acknowledging a job to Slurm running it,
  through the whole control plane (cycle, decision, held submit, release).

Run: ``.venv/bin/python benchmarks/bench_slurm.py`` (root on Debian; ``make bench`` runs it).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _serve import free_port, stop, wait_healthy  # noqa: E402
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


def bench_api(conf: Path, n: int) -> tuple[float, float, float]:
    """Serial and 8-parallel API submission rates, and the median API-ack → Slurm RUNNING time,
    against ``aicc serve`` on this Slurm (a fresh SQLite store)."""
    import httpx

    token = "bench-admin-" + uuid.uuid4().hex
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="aicc-bench-slurm-"))
    prefix = f"a{os.getpid()}"
    env = {**os.environ, "AICC_DATABASE_URL": f"sqlite:///{tmp / 'aicc.db'}",
           "AICC_ADMIN_TOKEN": token, "AICC_PORT": str(port), "AICC_ENGINE": "slurm",
           "AICC_SLURM_CONF": str(conf), "AICC_SLURM_POLL_INTERVAL_S": "0.2",
           "AICC_CYCLE_INTERVAL_S": "0.2", "AICC_CONFIG": ""}
    env["AICC_SLURM_JOB_PREFIX"] = prefix
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "aicc"), "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    h = {"Authorization": f"Bearer {token}"}
    try:
        wait_healthy(proc, base, limit_s=60)
        with httpx.Client(base_url=base, headers=h, timeout=30) as c:
            sector = c.get("/v1/sectors").json()["items"][0]["id"]
            org = c.post("/v1/organizations", json={"name": f"{prefix}-org",
                                                    "sector_id": sector}).json()["id"]
            project = c.post("/v1/projects", json={"name": f"{prefix}-proj",
                                                   "organization_id": org}).json()["id"]
            r = c.post("/v1/grants", json={
                "project_id": project, "accelerator_type": "h100-sxm-80g",
                "accelerator_hours": 100000, "start": "2020-01-01T00:00:00Z",
                "end": "2099-01-01T00:00:00Z"})
            r.raise_for_status()

        def submit(client: httpx.Client, i: int, runtime: float = 0.5) -> int:
            r = client.post("/v1/jobs", headers={"Idempotency-Key": f"{prefix}-{i}"}, json={
                "project_id": project, "accelerator_type": "h100-sxm-80g",
                "gang": {"nodes": 1, "per_node": 1}, "time_limit_s": 120,
                "runtime_s": runtime, "script": "true"})
            r.raise_for_status()
            return int(r.json()["id"])

        with httpx.Client(base_url=base, headers=h, timeout=30) as c:
            t0 = time.perf_counter()
            for i in range(n):
                submit(c, i)
            serial = n / (time.perf_counter() - t0)
        clients = [httpx.Client(base_url=base, headers=h, timeout=30) for _ in range(8)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: submit(clients[i % 8], n + i), range(2 * n)))
        parallel = 2 * n / (time.perf_counter() - t0)
        for cl in clients:
            cl.close()
        # Let the queue drain, then time single jobs from acknowledgement to RUNNING in Slurm.
        runner = SlurmRunner(conf, timeout_s=30)
        wait_drained(runner, prefix, limit_s=300)
        latencies = []
        with httpx.Client(base_url=base, headers=h, timeout=30) as c:
            for k in range(5):
                t_ack = time.time()
                jid = submit(c, 10 * n + k, runtime=3.0)
                name = f"{prefix}-{jid}"
                while time.time() - t_ack < 60:
                    if any(j["name"] == name and j["job_state"] in ("RUNNING", "COMPLETING")
                           for j in runner.json(["squeue"])["jobs"]):
                        latencies.append(time.time() - t_ack)
                        break
                    time.sleep(0.05)
                wait_drained(runner, prefix, limit_s=60)
        return serial, parallel, (statistics.median(latencies) if latencies else float("nan"))
    finally:
        stop(proc, limit_s=20)


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
        api_serial, api_parallel, api_latency = bench_api(LAB / "etc" / "slurm.conf",
                                                          N_SERIAL)
        print(f"RESULT api_submits_serial_per_s={api_serial:.1f} "
              f"api_submits_parallel8_per_s={api_parallel:.1f} "
              f"api_submit_to_slurm_running_median_s={api_latency:.3f}")
        print(f"RESULT aicc_submits_cycle8_per_s={batch_rate:.1f}")
        print(f"RESULT decision_to_running_median_s={median:.3f}")
        print(f"RESULT aicc_submits_per_s={aicc_rate:.1f} sbatch_serial_per_s={serial:.1f} "
              f"sbatch_parallel8_per_s={parallel:.1f}")
    finally:
        if started_here:
            lab("stop")


if __name__ == "__main__":
    main()
