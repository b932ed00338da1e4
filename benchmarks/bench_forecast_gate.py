"""Job submissions while many start-time forecasts are asked at once, with and without the gate.

A demo center (``aicc serve --demo``: SQLite, the 2028 twin fleet, its clock 60 times the wall)
runs for ``--warm-s`` seconds so that its queue fills; then ``--forecasts`` forecasts of pending
jobs are asked at once while one client submits jobs for ``--submit-s`` seconds. Run twice on
fresh servers: with the default gate (``server.forecast_workers`` = 2: two simulate, two wait,
the rest answer 503 busy) and, as the baseline in the same process, with the gate wide open
(64 workers: every forecast simulates at once).

Prints ``RESULT forecast_gate=on|off forecasts=N answered=N busy=N forecast_max_s=…
submissions=N submit_p50_ms=… submit_p95_ms=… submit_max_ms=…`` and the ratio of the submission
p95 and max, gate on over gate off.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from _serve import free_port, stop, wait_healthy

AICC = str(Path(sys.executable).with_name("aicc"))


def _busiest_member(base: str, folder: Path) -> tuple[dict[str, str], list[dict]]:
    """The demo member who sees most pending jobs, with those jobs."""
    tokens = json.loads((folder / "demo-tokens.json").read_text())
    best: tuple[dict[str, str], list[dict]] = ({}, [])
    for tok in tokens.values():
        h = {"Authorization": f"Bearer {tok}"}
        jobs = httpx.get(f"{base}/v1/jobs?state=pending&limit=100", headers=h,
                         timeout=30).json()["items"]
        if len(jobs) > len(best[1]):
            best = (h, jobs)
    return best


def run(workers: int, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AICC_")}
        env |= {"AICC_DATABASE_URL": f"sqlite:///{folder / 'aicc.db'}", "AICC_PORT": str(port),
                "AICC_FORECAST_WORKERS": str(workers), "AICC_CONFIG": ""}
        proc = subprocess.Popen([AICC, "serve", "--demo"], cwd=folder, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(proc, base, limit_s=120)
            time.sleep(args.warm_s)
            h, jobs = _busiest_member(base, folder)
            if not jobs:
                raise RuntimeError("no pending job to forecast: raise --warm-s")
            codes: list[int] = []
            took: list[float] = []

            def forecast(k: int) -> None:
                t = time.perf_counter()
                r = httpx.get(f"{base}/v1/jobs/{jobs[k % len(jobs)]['id']}/forecast"
                              f"?horizon_hours={args.horizon_hours}", headers=h, timeout=600)
                codes.append(r.status_code)
                took.append(time.perf_counter() - t)

            threads = [threading.Thread(target=forecast, args=(k,))
                       for k in range(args.forecasts)]
            for t in threads:
                t.start()
            body = {"project_id": jobs[0]["project_id"],
                    "accelerator_type": jobs[0]["accelerator_type"],
                    "gang": {"nodes": 1, "per_node": 1}, "time_limit_s": 600}
            lat: list[float] = []
            end = time.monotonic() + args.submit_s
            while time.monotonic() < end:
                t = time.perf_counter()
                r = httpx.post(f"{base}/v1/jobs", headers=h, json=body, timeout=120)
                lat.append(time.perf_counter() - t)
                if r.status_code != 201:
                    raise RuntimeError(f"submission answered {r.status_code}: {r.text}")
            for t in threads:
                t.join()
        finally:
            stop(proc)
    q = statistics.quantiles(lat, n=20)
    return {"forecasts": len(codes), "answered": codes.count(200), "busy": codes.count(503),
            "forecast_max_s": max(took), "submissions": len(lat),
            "submit_p50_ms": statistics.median(lat) * 1000, "submit_p95_ms": q[18] * 1000,
            "submit_max_ms": max(lat) * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--forecasts", type=int, default=40)
    ap.add_argument("--horizon-hours", type=float, default=10.0)
    ap.add_argument("--warm-s", type=float, default=20.0)
    ap.add_argument("--submit-s", type=float, default=20.0)
    args = ap.parse_args()
    out = {}
    for name, workers in (("on", 2), ("off", 64)):
        r = out[name] = run(workers, args)
        print(f"RESULT forecast_gate={name} forecasts={r['forecasts']} answered={r['answered']} "
              f"busy={r['busy']} forecast_max_s={r['forecast_max_s']:.2f} "
              f"submissions={r['submissions']} submit_p50_ms={r['submit_p50_ms']:.0f} "
              f"submit_p95_ms={r['submit_p95_ms']:.0f} submit_max_ms={r['submit_max_ms']:.0f}",
              flush=True)
    on, off = out["on"], out["off"]
    print(f"RESULT forecast_gate_ratio submit_p95_on_over_off="
          f"{on['submit_p95_ms'] / off['submit_p95_ms']:.2f} submit_max_on_over_off="
          f"{on['submit_max_ms'] / off['submit_max_ms']:.2f}")


if __name__ == "__main__":
    main()
