"""The digital twin: an in-memory fleet with the real fleet's shape, driven by the caller's time.

A job runs for its actual runtime (``LaunchSpec.runtime_s``, else its time limit) and then
finishes; a runtime beyond the time limit ends at the limit as a failure, as on a real cluster.
Node failures are injected (:meth:`TwinEngine.fail_node`, or scheduled with
:meth:`TwinEngine.schedule_node_failure`): every job on the node fails and the accelerator-time
it had used is reported as lost (the center's fault, never charged). A failure given a repair
time comes back up that long after it went down; its ``node_down`` event carries the repair
time (``extra["repair_at"]``, seconds) so that the store keeps it and a restarted twin is told again
(:meth:`TwinEngine.schedule_node_repair`) instead of leaving the node down for ever.

Time only moves through the ``now`` arguments: ``poll(now)`` replays, in time order, everything
that happened up to ``now``. The same engine therefore serves the live service (wall or
accelerated clock) and tests (virtual clock). State lives in memory; after a restart the service
rebuilds it from the store with :meth:`TwinEngine.adopt`.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aicc.engines.base import EventKind, JobEvent, LaunchSpec, RunningJob, StartOrder
from aicc.errors import UnknownNode
from aicc.fleet.arrays import NODE_DOWN, NODE_DRAIN, NODE_UP, FleetArrays

# Heap entry kinds, ordered so that at equal times a job ends before a node fails.
_END, _NODE_FAIL, _NODE_REPAIR = 0, 1, 2


@dataclass(slots=True)
class _Run:
    order: StartOrder
    node_idx: tuple[int, ...]
    start: float
    end: float
    outcome: EventKind  # FINISHED, or FAILED when the runtime exceeds the time limit
    seq: int  # identifies this run in the heap (a restarted job id gets a new seq)

    @property
    def accelerators(self) -> int:
        return sum(self.order.per_node)


def _ended(job_id: int, run: _Run) -> JobEvent:
    """The event of a run that ended by itself: finished, or failed at its time limit."""
    return JobEvent(run.outcome, run.end, job_id=job_id,
                    reason="" if run.outcome is EventKind.FINISHED else "time limit reached")


class TwinEngine:
    """Simulated nodes; see the module docstring. Thread-safe (the API may read it)."""

    name = "twin"
    time_resolution_s = 0.0

    def __init__(self, fleet: FleetArrays) -> None:
        # A drain is the control plane's decision (no new starts), not the hardware's: a
        # drained node keeps running its jobs and takes new ones again once undrained, and the
        # twin is never told of either. So its nodes are up or down; were a drained node kept
        # out here, a restart would requeue its running jobs (their work lost) and refuse
        # every start on it after an undrain.
        state = np.where(fleet.state == NODE_DRAIN, NODE_UP, fleet.state).astype(np.int8)
        self._fleet = FleetArrays(
            fleet.catalog, list(fleet.names), fleet.type_idx.copy(), fleet.capacity.copy(),
            fleet.leaf.copy(), fleet.pod.copy(), state, list(fleet.leaf_names),
            list(fleet.pod_names),
        )
        self._index = self._fleet.node_index()
        self._free = self._fleet.capacity.astype(np.int32)
        self._runs: dict[int, _Run] = {}
        self._heap: list[tuple[float, int, int, int]] = []  # (time, kind, seq, job or node)
        self._pending: list[JobEvent] = []  # immediate events (starts, rejections, stops)
        self._fail_repair: dict[int, float] = {}  # scheduled failure's seq -> its repair delay
        self._repair_seq: dict[int, int] = {}  # node -> seq of the repair that brings it back
        self._seq = 0
        self._lock = threading.RLock()

    # --- the Engine protocol ----------------------------------------------------------------

    def fleet(self) -> FleetArrays:
        with self._lock:
            f = self._fleet
            return FleetArrays(f.catalog, list(f.names), f.type_idx, f.capacity, f.leaf, f.pod,
                               f.state.copy(), f.leaf_names, f.pod_names)

    def start(self, orders: Sequence[StartOrder], now: float) -> None:
        """Start each order at ``now``. An order that cannot run (unknown or down node, too few
        free accelerators, malformed) is reported as a ``failed`` event with
        ``extra["phase"] == "launch"``; the other orders still start. Starting a job id that is
        already running is ignored (a retried order is harmless)."""
        with self._lock:
            for order in orders:
                self._start_one(order, now, announce=True)

    def preempt(self, job_ids: Sequence[int], now: float, reason: str = "") -> None:
        self._stop(job_ids, now, EventKind.PREEMPTED, reason or "preempted")

    def cancel(self, job_ids: Sequence[int], now: float) -> None:
        self._stop(job_ids, now, EventKind.CANCELLED, "cancelled")

    def poll(self, now: float) -> list[JobEvent]:
        with self._lock:
            out = self._pending
            self._pending = []
            while self._heap and self._heap[0][0] <= now:
                t, kind, seq, key = heapq.heappop(self._heap)
                if kind == _END:
                    run = self._runs.get(key)
                    if run is None or run.seq != seq:
                        continue  # stopped earlier, or restarted since
                    self._release(key)
                    out.append(_ended(key, run))
                elif kind == _NODE_FAIL:
                    out.extend(self._fail_node_now(key, t, "injected failure",
                                                   self._fail_repair.pop(seq, None)))
                elif self._repair_seq.get(key) == seq:  # else superseded by a later failure
                    out.extend(self._repair_node_now(key, t))
            out.sort(key=lambda e: e.time)
            return out

    def running(self) -> list[RunningJob]:
        with self._lock:
            return [RunningJob(job_id, r.order.nodes, r.start) for job_id, r in self._runs.items()]

    def close(self) -> None:
        with self._lock:
            self._runs.clear()
            self._heap.clear()
            self._pending.clear()
            self._fail_repair.clear()
            self._repair_seq.clear()

    # --- restart and failure injection --------------------------------------------------------

    def adopt(self, order: StartOrder, start_time: float) -> bool:
        """Re-establish a job the store says has been running since ``start_time`` (after a
        restart of the process that held the twin). No ``started`` event is emitted; the job
        ends at ``start_time`` + its runtime, which :meth:`poll` reports even if already past.
        Returns False when the job cannot be placed (its nodes are gone or full)."""
        with self._lock:
            return self._start_one(order, start_time, announce=False)

    def fail_node(self, node: str, now: float, reason: str = "injected failure",
                  repair_after_s: float | None = None) -> None:
        """Take ``node`` down at ``now``: its jobs fail (their time is reported lost). With
        ``repair_after_s`` it comes back up that long after; without, it stays down until
        :meth:`repair_node`."""
        with self._lock:
            self._pending.extend(self._fail_node_now(self._node(node), now, reason,
                                                     repair_after_s))

    def repair_node(self, node: str, now: float) -> None:
        with self._lock:
            i = self._node(node)
            self._repair_seq.pop(i, None)
            self._pending.extend(self._repair_node_now(i, now))

    def schedule_node_failure(self, node: str, at: float, repair_after_s: float | None = None
                              ) -> None:
        """Fail ``node`` at time ``at`` (and repair it ``repair_after_s`` after it went down,
        if given). A node already down at ``at`` keeps its own repair time."""
        with self._lock:
            i = self._node(node)
            seq = self._next_seq()
            if repair_after_s is not None:
                self._fail_repair[seq] = max(0.0, float(repair_after_s))
            heapq.heappush(self._heap, (at, _NODE_FAIL, seq, i))

    def schedule_node_repair(self, node: str, at: float) -> None:
        """Bring ``node``, down for a failure, back up at ``at`` (:meth:`poll` reports it even
        if ``at`` is already past). A restarted service calls this for every node the store
        says is down awaiting a repair: the twin's own schedule did not survive the process."""
        with self._lock:
            self._push_repair(self._node(node), at)

    def free(self) -> np.ndarray:
        """Free accelerators per node (0 on nodes that are down)."""
        with self._lock:
            return np.where(self._fleet.state == NODE_UP, self._free, 0)

    # --- internals ----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _push_repair(self, i: int, at: float) -> None:
        seq = self._next_seq()
        self._repair_seq[i] = seq
        heapq.heappush(self._heap, (at, _NODE_REPAIR, seq, i))

    def _node(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise UnknownNode(f"unknown node {name!r}", field="node") from None

    def _reject(self, order: StartOrder, now: float, reason: str) -> bool:
        self._pending.append(JobEvent(EventKind.FAILED, now, job_id=order.spec.job_id,
                                      reason=f"not started: {reason}",
                                      extra={"phase": "launch"}))
        return False

    def _start_one(self, order: StartOrder, now: float, *, announce: bool) -> bool:
        spec: LaunchSpec = order.spec
        if spec.job_id in self._runs:
            return True
        if not order.nodes or len(order.nodes) != len(order.per_node):
            return self._reject(order, now, "placement lists no nodes, or counts do not match")
        idx: list[int] = []
        for name, count in zip(order.nodes, order.per_node, strict=True):
            i = self._index.get(name)
            if i is None:
                return self._reject(order, now, f"unknown node {name}")
            if self._fleet.state[i] != NODE_UP:
                return self._reject(order, now, f"node {name} is not in service")
            if count <= 0:
                return self._reject(order, now, f"non-positive accelerator count on {name}")
            idx.append(i)
        need = np.zeros(len(self._free), dtype=np.int32)
        np.add.at(need, idx, order.per_node)
        short = np.flatnonzero(need > self._free)
        if short.size:
            name = self._fleet.names[int(short[0])]
            return self._reject(order, now, f"too few free accelerators on {name}")
        cat = self._fleet.catalog
        bad = [self._fleet.names[i] for i in idx
               if cat.types[int(self._fleet.type_idx[i])].name != spec.accelerator_type]
        if bad:
            return self._reject(order, now, f"node {bad[0]} has no {spec.accelerator_type}")
        self._free -= need
        runtime = spec.runtime_s if spec.runtime_s is not None else spec.time_limit_s
        runtime = max(0.0, float(runtime))
        outcome = EventKind.FINISHED
        if runtime > spec.time_limit_s:
            runtime, outcome = spec.time_limit_s, EventKind.FAILED
        seq = self._next_seq()
        run = _Run(order, tuple(idx), now, now + runtime, outcome, seq)
        self._runs[spec.job_id] = run
        heapq.heappush(self._heap, (run.end, _END, seq, spec.job_id))
        if announce:
            self._pending.append(JobEvent(EventKind.STARTED, now, job_id=spec.job_id,
                                          extra={"nodes": ",".join(order.nodes)}))
        return True

    def _release(self, job_id: int) -> _Run:
        run = self._runs.pop(job_id)
        np.add.at(self._free, list(run.node_idx), list(run.order.per_node))
        return run

    def _stop(self, job_ids: Sequence[int], now: float, kind: EventKind, reason: str) -> None:
        with self._lock:
            for job_id in job_ids:
                if job_id not in self._runs:
                    continue  # already ended, or never ours: stopping is idempotent
                run = self._release(job_id)
                if run.end <= now:  # it had ended by then, unpolled: its own end, not a stop
                    self._pending.append(_ended(job_id, run))
                else:
                    self._pending.append(JobEvent(kind, now, job_id=job_id, reason=reason))

    def _fail_node_now(self, i: int, now: float, reason: str,
                       repair_after_s: float | None = None) -> list[JobEvent]:
        if self._fleet.state[i] == NODE_DOWN:
            return []
        self._fleet.state[i] = NODE_DOWN
        name = self._fleet.names[i]
        extra: dict[str, str] = {}
        if repair_after_s is not None:
            repair_at = now + max(0.0, float(repair_after_s))
            self._push_repair(i, repair_at)
            extra["repair_at"] = repr(repair_at)  # exact: float(repr(x)) == x
        out = [JobEvent(EventKind.NODE_DOWN, now, node=name, reason=reason, extra=extra)]
        hit = sorted(j for j, r in self._runs.items() if i in r.node_idx)
        for job_id in hit:
            run = self._release(job_id)
            lost = run.accelerators * max(0.0, now - run.start)
            out.append(JobEvent(EventKind.FAILED, now, job_id=job_id, node=name,
                                reason=f"node {name} failed: {reason}", lost_s=lost,
                                extra={"phase": "node_failure"}))
        return out

    def _repair_node_now(self, i: int, now: float) -> list[JobEvent]:
        self._repair_seq.pop(i, None)
        if self._fleet.state[i] == NODE_UP:
            return []
        self._fleet.state[i] = NODE_UP
        return [JobEvent(EventKind.NODE_UP, now, node=self._fleet.names[i], reason="repaired")]


def from_settings(fleet: FleetArrays, settings: object | None = None) -> TwinEngine:
    """The engine factory entry (see :func:`aicc.engines.make_engine`)."""
    return TwinEngine(fleet)
