"""Starting and stopping a real aicc server process for the benchmarks that drive one."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(proc: subprocess.Popen[bytes], base_url: str, limit_s: float = 30.0) -> None:
    """Return once ``/healthz`` answers 200; kill the process and raise if it never does."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("server exited during start")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not answer /healthz within {limit_s:.0f} s")


def stop(proc: subprocess.Popen[bytes], limit_s: float = 15.0) -> None:
    proc.terminate()
    try:
        proc.wait(limit_s)
    except subprocess.TimeoutExpired:
        proc.kill()
