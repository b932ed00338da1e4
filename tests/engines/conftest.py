"""Fixtures for the Slurm engine tests: a real localhost Slurm 22.05 (``scripts/slurm-lab.sh``).

``slurm_conf`` (session) gives the ``slurm.conf`` of a running cluster:
- ``AICC_TEST_SLURM_CONF`` names an existing one (nothing is started or stopped), else
- the lab is started here (installing Debian packages the first time) and stopped at the end
  of the session — only when this session started it.
Where the machine cannot run Slurm (not root, no apt/dpkg), the tests skip saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB_SCRIPT = ROOT / "scripts" / "slurm-lab.sh"
CONF_ENV = "AICC_TEST_SLURM_CONF"


def _lab_dir() -> Path:
    return Path(os.environ.get("AICC_SLURM_LAB")
                or Path(os.environ.get("TMPDIR", "/tmp")) / "aicc-slurm-lab")


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "not root: the localhost Slurm needs root (mknod, SlurmUser=root)"
    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        return "not a Debian machine: no dpkg/apt-get to install Slurm 22.05"
    return None


@pytest.fixture(scope="session")
def slurm_lab() -> Iterator[tuple[str, bool]]:
    """``(slurm.conf path, whether this session owns the lab)``."""
    given = os.environ.get(CONF_ENV)
    if given:
        if not Path(given).exists():
            pytest.fail(f"{CONF_ENV}={given} does not exist")
        yield given, False
        return
    reason = _why_not()
    if reason:
        print(f"\nSlurm tests skipped: {reason}")
        pytest.skip(reason)
    env = {**os.environ, "AICC_SLURM_LAB": str(_lab_dir())}
    was_up = subprocess.run(["bash", str(LAB_SCRIPT), "status"], env=env,
                            capture_output=True, text=True, check=False).returncode == 0
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(LAB_SCRIPT), "start"], env=env, capture_output=True,
                          text=True, check=False, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"slurm-lab.sh start failed:\n{proc.stdout}\n{proc.stderr}")
    print(f"\nlocalhost Slurm ready in {time.monotonic() - t0:.1f}s")
    try:
        yield str(_lab_dir() / "etc" / "slurm.conf"), True
    finally:
        if not was_up:
            subprocess.run(["bash", str(LAB_SCRIPT), "stop"], env=env, capture_output=True,
                           check=False, timeout=120)


@pytest.fixture(scope="session")
def slurm_conf(slurm_lab: tuple[str, bool]) -> str:
    return slurm_lab[0]


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def slurm_prefix() -> str:
    """A job-name prefix of its own per test: jobs of earlier tests never look like ours."""
    return f"t{os.getpid()}x{next(_counter)}"
