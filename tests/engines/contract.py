"""The engine contract: one suite every engine must pass (the twin here, Slurm in
``test_slurm.py``). Use it by subclassing :class:`EngineContract` and providing the
``make_harness`` fixture: a callable that takes a :class:`FleetRequest` and returns an
:class:`EngineHarness` around a fresh engine.

Time is the engine's own: the twin's moves when the harness ``advance``s a virtual clock, a real
engine's moves by waiting. Runtimes are a few seconds, and every expectation polls until the
events arrive or ``max_wait_s`` of engine time has passed, so the same tests run on both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from aicc.engines.base import Engine, EventKind, JobEvent, LaunchSpec, StartOrder
from aicc.fleet.arrays import NODE_DOWN, NODE_STATE_NAMES

RUN_S = 3.0  # the runtime of a short contract job, seconds
LONG_S = 600.0  # a job that outlives every test (it is stopped explicitly)


@dataclass(frozen=True)
class FleetRequest:
    """The smallest fleet a test needs: at least ``nodes`` nodes of one accelerator type with
    at least ``per_node`` accelerators each. A real engine may offer more than asked."""

    nodes: int = 2
    per_node: int = 2
    accelerator_type: str = "h100-sxm-80g"


@dataclass
class EngineHarness:
    engine: Engine
    now: Callable[[], float]  # the engine's current time (what to pass as ``now``)
    advance: Callable[[float], None]  # let that much engine time pass (virtual step or sleep)
    # Take a node down (name, now), where the engine can; None skips the failure tests.
    fail_node: Callable[[str, float], None] | None = None
    max_wait_s: float = 60.0  # engine time to wait for an expected event
    tick_s: float = 0.5  # engine time between polls
    time_tolerance_s: float = 0.0  # how far reported times may be from the ideal ones
    # Free-form: what the engine's scheduler may take to notice an order (Slurm: a few s).
    extra: dict[str, float] | None = None


MakeHarness = Callable[[FleetRequest], EngineHarness]


def spec(job_id: int, type_name: str, *, runtime: float | None = RUN_S, limit: float = 60.0,
         nodes: int = 1, per_node: int = 1, preemptible: bool = False) -> LaunchSpec:
    return LaunchSpec(job_id=job_id, project="contract", accelerator_type=type_name,
                      nodes=nodes, per_node=per_node, time_limit_s=limit,
                      preemptible=preemptible, runtime_s=runtime)


def order(s: LaunchSpec, nodes: list[str]) -> StartOrder:
    return StartOrder(spec=s, nodes=tuple(nodes), per_node=tuple([s.per_node] * len(nodes)))


def usable_nodes(h: EngineHarness, req: FleetRequest) -> tuple[str, list[str]]:
    """The requested type and the names of nodes of that type with enough accelerators."""
    fleet = h.engine.fleet()
    names = [fleet.names[i] for i in range(fleet.n_nodes)
             if fleet.catalog.types[int(fleet.type_idx[i])].name == req.accelerator_type
             and int(fleet.capacity[i]) >= req.per_node
             and NODE_STATE_NAMES[fleet.state[i]] == "up"]
    assert len(names) >= req.nodes, f"engine offers {len(names)} usable nodes, need {req.nodes}"
    return req.accelerator_type, names


def collect(h: EngineHarness, until: Callable[[list[JobEvent]], bool],
            seen: list[JobEvent] | None = None, *, what: str = "events") -> list[JobEvent]:
    """Poll until ``until(all events so far)`` holds; fail after ``max_wait_s`` of engine time."""
    events = seen if seen is not None else []
    t0 = h.now()
    while True:
        batch = h.engine.poll(h.now())
        times = [e.time for e in batch]
        assert times == sorted(times), "a poll must return its events in time order"
        events.extend(batch)
        if until(events):
            return events
        if h.now() - t0 > h.max_wait_s:
            pytest.fail(f"no {what} within {h.max_wait_s}s; got {events}")
        h.advance(h.tick_s)


def of(events: list[JobEvent], job_id: int, kind: EventKind | None = None) -> list[JobEvent]:
    return [e for e in events if e.job_id == job_id and (kind is None or e.kind == kind)]


def ended(events: list[JobEvent], job_id: int) -> bool:
    return any(e.job_id == job_id and e.kind in TERMINAL for e in events)


TERMINAL = {EventKind.FINISHED, EventKind.FAILED, EventKind.PREEMPTED, EventKind.CANCELLED}


class EngineContract:
    """Subclass and provide the ``make_harness`` fixture (see the module docstring)."""

    @pytest.fixture
    def harness(self, make_harness: MakeHarness) -> EngineHarness:
        h = make_harness(FleetRequest())
        yield h
        h.engine.close()

    def test_fleet_describes_real_nodes(self, harness: EngineHarness) -> None:
        fleet = harness.engine.fleet()
        assert fleet.n_nodes >= 1
        assert len(set(fleet.names)) == fleet.n_nodes, "node names must be unique"
        assert (fleet.capacity > 0).all()
        assert {int(t) for t in fleet.type_idx} <= set(range(len(fleet.catalog)))
        assert len(fleet.state) == fleet.n_nodes

    def test_job_runs_for_its_runtime_then_finishes(self, harness: EngineHarness) -> None:
        type_name, nodes = usable_nodes(harness, FleetRequest())
        t0 = harness.now()
        harness.engine.start([order(spec(1, type_name), nodes[:1])], t0)
        events = collect(harness, lambda ev: bool(of(ev, 1, EventKind.STARTED)), what="start")
        running = {r.job_id: r for r in harness.engine.running()}
        if not ended(events, 1):
            assert 1 in running and running[1].nodes == (nodes[0],)
        events = collect(harness, lambda ev: ended(ev, 1), events, what="finish")
        [started] = of(events, 1, EventKind.STARTED)
        [finished] = of(events, 1, EventKind.FINISHED)
        tol = harness.time_tolerance_s
        assert started.time >= t0 - tol
        assert finished.time - started.time == pytest.approx(RUN_S, abs=tol + 1e-6)
        assert finished.time <= harness.now() + tol
        assert 1 not in {r.job_id for r in harness.engine.running()}

    def test_every_event_is_reported_once(self, harness: EngineHarness) -> None:
        type_name, nodes = usable_nodes(harness, FleetRequest())
        harness.engine.start([order(spec(2, type_name, runtime=1.0), nodes[:1])], harness.now())
        events = collect(harness, lambda ev: ended(ev, 2), what="finish")
        harness.advance(harness.tick_s * 4)
        events += harness.engine.poll(harness.now())
        assert [e.kind for e in of(events, 2)] == [EventKind.STARTED, EventKind.FINISHED]

    def test_runtime_defaults_to_the_time_limit(self, harness: EngineHarness) -> None:
        type_name, nodes = usable_nodes(harness, FleetRequest())
        harness.engine.start([order(spec(3, type_name, runtime=None, limit=RUN_S), nodes[:1])],
                             harness.now())
        events = collect(harness, lambda ev: ended(ev, 3), what="end at the limit")
        [started] = of(events, 3, EventKind.STARTED)
        [end] = [e for e in of(events, 3) if e.kind in TERMINAL]
        assert end.kind in (EventKind.FINISHED, EventKind.FAILED)
        assert end.time - started.time == pytest.approx(RUN_S, abs=harness.time_tolerance_s + 1e-6)

    def test_runtime_beyond_the_limit_fails_at_the_limit(self, harness: EngineHarness) -> None:
        type_name, nodes = usable_nodes(harness, FleetRequest())
        harness.engine.start([order(spec(4, type_name, runtime=LONG_S, limit=RUN_S), nodes[:1])],
                             harness.now())
        events = collect(harness, lambda ev: ended(ev, 4), what="time-limit failure")
        [started] = of(events, 4, EventKind.STARTED)
        [end] = [e for e in of(events, 4) if e.kind in TERMINAL]
        assert end.kind == EventKind.FAILED
        assert end.time - started.time == pytest.approx(RUN_S, abs=harness.time_tolerance_s + 1e-6)

    @pytest.mark.parametrize("stop", ["preempt", "cancel"])
    def test_a_running_job_can_be_stopped(self, harness: EngineHarness, stop: str) -> None:
        type_name, nodes = usable_nodes(harness, FleetRequest())
        harness.engine.start([order(spec(5, type_name, runtime=LONG_S, limit=2 * LONG_S,
                                        preemptible=True), nodes[:1])], harness.now())
        events = collect(harness, lambda ev: bool(of(ev, 5, EventKind.STARTED)), what="start")
        if stop == "preempt":
            harness.engine.preempt([5], harness.now(), reason="contract")
            want = EventKind.PREEMPTED
        else:
            harness.engine.cancel([5], harness.now())
            want = EventKind.CANCELLED
        events = collect(harness, lambda ev: ended(ev, 5), events, what=want.value)
        assert [e.kind for e in of(events, 5) if e.kind in TERMINAL] == [want]
        assert 5 not in {r.job_id for r in harness.engine.running()}
        # The stopped job frees its node: another job can run there.
        harness.engine.start([order(spec(6, type_name, runtime=1.0), nodes[:1])], harness.now())
        events = collect(harness, lambda ev: ended(ev, 6), events, what="reuse of freed node")
        assert of(events, 6, EventKind.FINISHED)

    def test_stopping_an_unknown_job_is_harmless(self, harness: EngineHarness) -> None:
        harness.engine.preempt([987654], harness.now())
        harness.engine.cancel([987655], harness.now())
        harness.advance(harness.tick_s)
        assert not [e for e in harness.engine.poll(harness.now())
                    if e.job_id in (987654, 987655)]

    def test_gang_and_parallel_jobs_each_report_once(self, harness: EngineHarness) -> None:
        type_name, nodes = usable_nodes(harness, FleetRequest(nodes=2, per_node=2))
        gang = spec(7, type_name, nodes=2, per_node=1)
        solo = spec(8, type_name, runtime=RUN_S / 2)
        harness.engine.start([order(gang, nodes[:2]), order(solo, nodes[:1])], harness.now())
        events = collect(harness, lambda ev: ended(ev, 7) and ended(ev, 8), what="both ends")
        for job_id in (7, 8):
            assert [e.kind for e in of(events, job_id)] == [EventKind.STARTED,
                                                             EventKind.FINISHED]
        end_solo = of(events, 8, EventKind.FINISHED)[0].time
        assert end_solo <= of(events, 7, EventKind.FINISHED)[0].time

    def test_an_order_that_cannot_run_is_reported_failed(self, harness: EngineHarness) -> None:
        type_name, nodes = usable_nodes(harness, FleetRequest())
        harness.engine.start([order(spec(9, type_name), ["no-such-node-x9"]),
                              order(spec(10, type_name, runtime=1.0), nodes[:1])],
                             harness.now())
        events = collect(harness, lambda ev: ended(ev, 9) and ended(ev, 10), what="outcomes")
        assert [e.kind for e in of(events, 9) if e.kind in TERMINAL] == [EventKind.FAILED]
        assert not of(events, 9, EventKind.STARTED)
        assert of(events, 10, EventKind.FINISHED)

    def test_a_node_failure_fails_its_jobs_and_reports_lost_time(
        self, harness: EngineHarness
    ) -> None:
        if harness.fail_node is None:
            pytest.skip("this engine cannot inject node failures")
        type_name, nodes = usable_nodes(harness, FleetRequest())
        harness.engine.start([order(spec(11, type_name, runtime=LONG_S, limit=2 * LONG_S,
                                         per_node=2), nodes[:1]),
                              order(spec(12, type_name, runtime=LONG_S, limit=2 * LONG_S),
                                    nodes[1:2])], harness.now())
        events = collect(harness, lambda ev: bool(of(ev, 11, EventKind.STARTED)), what="start")
        harness.advance(RUN_S)
        harness.fail_node(nodes[0], harness.now())
        events = collect(harness, lambda ev: ended(ev, 11), events, what="failure")
        [failed] = [e for e in of(events, 11) if e.kind in TERMINAL]
        assert failed.kind == EventKind.FAILED
        assert failed.lost_s > 0
        downs = [e for e in events if e.kind == EventKind.NODE_DOWN]
        assert [e.node for e in downs] == [nodes[0]]
        fleet = harness.engine.fleet()
        assert int(fleet.state[fleet.names.index(nodes[0])]) == NODE_DOWN
        assert not ended(events, 12), "a job on another node is not affected"
        assert 12 in {r.job_id for r in harness.engine.running()}
        harness.engine.cancel([12], harness.now())
