"""Prometheus metrics at ``/metrics``.

Gauges of the center's state (accelerators busy by type and sector, pending and running jobs,
jobs submitted) are read from the store at scrape time, so every replica reports the truth of
the database and nothing drifts. Timings only the running process knows (the scheduling cycle)
are recorded by the control plane through :func:`record_cycle`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from aicc.store.db import transaction
from aicc.store.models import (
    Job,
    JobState,
    Node,
    Organization,
    Project,
    Sector,
    node_view,
)

log = logging.getLogger("aicc.web")

# Process-wide: the control plane records into these; every app registry exposes them.
CYCLE_SECONDS = Histogram(
    "aicc_cycle_duration_seconds", "Wall time of one control-plane cycle",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=None)
CYCLE_STARTED = Counter("aicc_cycle_jobs_started", "Jobs started by the scheduler",
                        registry=None)
CYCLE_PREEMPTED = Counter("aicc_cycle_jobs_preempted", "Jobs preempted by the scheduler",
                          registry=None)


def record_cycle(duration_s: float, *, started: int = 0, preempted: int = 0) -> None:
    """Called by the control plane after each cycle."""
    CYCLE_SECONDS.observe(max(0.0, duration_s))
    if started:
        CYCLE_STARTED.inc(started)
    if preempted:
        CYCLE_PREEMPTED.inc(preempted)


def _by_sector(q):  # type: ignore[no-untyped-def]
    return (q.join(Project, Job.project_id == Project.id)
            .join(Organization, Project.organization_id == Organization.id)
            .join(Sector, Organization.sector_id == Sector.id))


class StoreCollector(Collector):
    """Reads the center's state from the store on each scrape (a handful of GROUP BYs)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def collect(self) -> Iterator[Metric]:
        busy = GaugeMetricFamily("aicc_accelerators_busy",
                                 "Accelerators held by running jobs",
                                 labels=["accelerator_type", "sector"])
        total = GaugeMetricFamily("aicc_accelerators", "Accelerators in the fleet by node state",
                                  labels=["accelerator_type", "state"])
        pending = GaugeMetricFamily("aicc_jobs_pending", "Jobs waiting to start",
                                    labels=["accelerator_type", "sector"])
        running = GaugeMetricFamily("aicc_jobs_running", "Jobs running",
                                    labels=["accelerator_type", "sector"])
        submitted = CounterMetricFamily("aicc_jobs_submitted", "Jobs ever submitted",
                                        labels=["sector"])
        try:
            with transaction(self.factory) as s:
                by_state: dict[tuple[str, str], float] = {}
                for t, state, drained, n in s.execute(
                        select(Node.accelerator_type, Node.state, Node.drained,
                               func.sum(Node.accelerators))
                        .group_by(Node.accelerator_type, Node.state, Node.drained)).all():
                    key = (t, node_view(state, drained).value)
                    by_state[key] = by_state.get(key, 0.0) + float(n)
                for labels, n in sorted(by_state.items()):
                    total.add_metric(list(labels), n)
                rows = s.execute(_by_sector(
                    select(Job.accelerator_type, Sector.name, Job.state, func.count(Job.id),
                           func.sum(Job.nodes * Job.per_node))
                    .where(Job.state.in_([JobState.PENDING, JobState.RUNNING])))
                    .group_by(Job.accelerator_type, Sector.name, Job.state)).all()
                for t, sector, state, count, acc in rows:
                    if state == JobState.RUNNING:
                        busy.add_metric([t, sector], float(acc or 0))
                        running.add_metric([t, sector], float(count))
                    else:
                        pending.add_metric([t, sector], float(count))
                for sector, count in s.execute(_by_sector(
                        select(Sector.name, func.count(Job.id))).group_by(Sector.name)).all():
                    submitted.add_metric([sector], float(count))
        except Exception:  # a scrape must answer even while the store is unavailable
            log.exception("reading metrics from the store failed")
            return
        yield from (busy, total, pending, running, submitted)


class ControlPlaneCollector(Collector):
    """What the control plane's last cycle saw (``ControlPlane.stats()``): hold reasons,
    fleet power, nodes out of service, cycles run."""

    def __init__(self, control_plane: Any) -> None:
        self.control_plane = control_plane

    def collect(self) -> Iterator[Metric]:
        st = self.control_plane.stats()
        if not st.cycles:
            return
        cycles = CounterMetricFamily("aicc_cycles", "Control-plane cycles run since start")
        cycles.add_metric([], float(st.cycles))
        last = GaugeMetricFamily("aicc_cycle_last_duration_seconds",
                                 "Wall time of the last cycle, and of its scheduler call",
                                 labels=["part"])
        last.add_metric(["total"], float(st.duration_s))
        last.add_metric(["schedule"], float(st.schedule_s))
        held = GaugeMetricFamily("aicc_jobs_held", "Pending jobs by the reason they wait",
                                 labels=["reason"])
        for reason, n in sorted(st.hold_reasons.items()):
            held.add_metric([reason], float(n))
        power = GaugeMetricFamily("aicc_fleet_power_watts", "Estimated accelerator power draw")
        power.add_metric([], float(st.power_w))
        down = GaugeMetricFamily("aicc_nodes_out_of_service", "Nodes drained or down")
        down.add_metric([], float(st.nodes_down))
        yield from (cycles, last, held, power, down)


def make_registry(factory: sessionmaker[Session], control_plane: Any = None
                  ) -> CollectorRegistry:
    """A registry for one app: the store's gauges, the process's cycle metrics and, when the
    app runs beside a control plane, what its last cycle saw."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(factory))
    if control_plane is not None and callable(getattr(control_plane, "stats", None)):
        registry.register(ControlPlaneCollector(control_plane))
    for c in (CYCLE_SECONDS, CYCLE_STARTED, CYCLE_PREEMPTED):
        registry.register(c)
    return registry
