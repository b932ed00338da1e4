"""Decisions must not depend on the machine: numpy picks sort and math kernels by the CPU's vector
instructions at import, and those differ in tie order and in the last bit. The same replays run
here twice, once with numpy's optional instruction sets turned off (``NPY_DISABLE_CPU_FEATURES``),
and must agree to the bit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import hashlib, numpy as np
from aicc.sim.loop import SimConfig
from aicc.sim.scenario import Scenario, custom_fleet, parse_fleet, run_scenario
from aicc.workload.readers import read_trace
from aicc.workload.synthetic import generate, sector_mapping

def digest(r):
    h = hashlib.sha256()
    for a in (r.state, r.first_start, r.end, r.preemptions):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]

w = read_trace({philly!r}).head(1500)
fleet = custom_fleet(24, "h100-sxm-80g")
for pol in ("multifactor", "fairshare"):
    r = run_scenario(w, Scenario(fleet=fleet, config=SimConfig(policy=pol, min_cycle_s=60.0)))
    print("philly", pol, digest(r))
f = parse_fleet("2028")
ws = generate(days=0.5, accelerators=f.n_accelerators, load=2.5, seed=4)
print("synthetic", hashlib.sha256(ws.runtime_s.tobytes()).hexdigest()[:16])
r = run_scenario(ws, Scenario(fleet=f, config=SimConfig(policy="fairshare", min_cycle_s=600.0),
                              tenant_map=sector_mapping(ws)))
print("sectors fairshare", digest(r))
"""


def _optional_features() -> str:
    """numpy's dispatched instruction sets this machine has (names differ between releases)."""
    m = getattr(np, "_core", None) or np.core
    umath = m._multiarray_umath
    return " ".join(f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f))


def _run(disable: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    if disable:
        env["NPY_DISABLE_CPU_FEATURES"] = disable
    script = _SCRIPT.format(philly=str(ROOT / "tests/data/traces/philly-first3000.csv"))
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=600, check=True)
    return out.stdout.splitlines()


def test_replays_are_the_same_with_and_without_the_cpus_vector_instructions():
    full = _run("")
    assert len(full) == 4 and all(len(line.split()[-1]) == 16 for line in full)
    assert _run(_optional_features()) == full
