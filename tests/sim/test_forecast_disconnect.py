"""A forecast whose client hangs up stops: a real server (uvicorn on a free port), a real
socket closed mid-request, the real simulator asked to stop at its next cycle."""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import aicc.api.routes.forecast as route
from aicc.fleet import build_fleet
from aicc.sim.loop import Cancelled
from aicc.store.db import session_factory, transaction
from aicc.workload.jobs import transition
from api.conftest import World
from live_server import serving_world


@pytest.fixture
def served(tmp_path: Path, _sqlite_template: Path) -> Iterator[tuple[int, World]]:
    with serving_world(tmp_path, _sqlite_template) as (port, world):
        yield port, world


def _queued_job(world: World) -> int:
    """A job waiting behind one that holds every H100 node."""
    fleet = build_fleet("lab")
    t = fleet.catalog.index("h100-sxm-80g")
    h100 = [n for n, ti in zip(fleet.names, fleet.type_idx.tolist(), strict=True) if ti == t]
    ids = []
    for _ in range(2):
        r = world.client.post("/v1/jobs", headers=world.h("member_a1"), json={
            "project_id": world.ids["p_a1"], "accelerator_type": "h100-sxm-80g",
            "gang": {"nodes": len(h100), "per_node": 8}, "time_limit_s": 3600})
        assert r.status_code == 201, r.text
        ids.append(int(r.json()["id"]))
    with transaction(session_factory(world.engine)) as s:
        transition(session=s, job=ids[0], to="running",
                   at=datetime.now(UTC) - timedelta(minutes=5), placement=h100)
    return ids[1]


def test_a_forecast_stops_when_its_client_hangs_up(served: tuple[int, World],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    port, world = served
    job = _queued_job(world)
    outcome: queue.Queue[str] = queue.Queue()
    real = route.forecast_start

    def long_forecast(*args: Any, cancelled: Any, **kw: Any) -> Any:
        # the real forecast, after a wait that stands for a long simulation: it ends early
        # only if the route tells it that the client is gone
        deadline = time.monotonic() + 15
        while not cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            f = real(*args, cancelled=cancelled, **kw)
        except Cancelled:
            outcome.put("cancelled")
            raise
        outcome.put("answered")
        return f

    monkeypatch.setattr(route, "forecast_start", long_forecast)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET /v1/jobs/{job}/forecast HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Authorization: Bearer {world.tokens['member_a1']}\r\n\r\n".encode())
        time.sleep(0.5)  # the forecast is under way
        assert outcome.empty()
    t0 = time.monotonic()
    assert outcome.get(timeout=10) == "cancelled"
    assert time.monotonic() - t0 < 5  # within a few polls, not at the wait's end


def test_forecasts_beyond_the_workers_wait_and_beyond_that_are_refused(
        served: tuple[int, World], monkeypatch: pytest.MonkeyPatch) -> None:
    # server.forecast_workers = 2 (the default): two forecasts simulate at once, two more
    # wait for a slot, a fifth and a sixth are refused at once (503 busy, Retry-After); the
    # waiting ones run when a slot frees up, never more than two at a time
    port, world = served
    job = _queued_job(world)
    real = route.forecast_start
    lock = threading.Lock()
    inside, most, release = [0], [0], threading.Event()

    def slow_forecast(*args: Any, **kw: Any) -> Any:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            release.wait(20)
            return real(*args, **kw)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(route, "forecast_start", slow_forecast)
    url = f"http://127.0.0.1:{port}/v1/jobs/{job}/forecast"
    headers = world.h("member_a1")
    answers: queue.Queue[httpx.Response] = queue.Queue()

    def ask() -> None:
        answers.put(httpx.get(url, headers=headers, timeout=30))

    first = [threading.Thread(target=ask) for _ in range(4)]
    for t in first:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while inside[0] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # the other two are admitted and wait for a slot
        assert inside[0] == 2
        for _ in range(2):
            r = httpx.get(url, headers=headers, timeout=30)
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "busy" and r.headers["Retry-After"] == "5"
            assert "server.forecast_workers" in r.json()["error"]["message"]
    finally:
        release.set()
        for t in first:
            t.join(30)
    codes = sorted(answers.get_nowait().status_code for _ in range(4))
    assert codes == [200] * 4 and most[0] == 2
