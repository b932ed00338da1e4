"""/metrics: the named series, with values read from the store."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from aicc.store.models import Job, JobState, Node, Organization, Project, Sector
from aicc.web.metrics import record_cycle


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_expose_the_named_series(center) -> None:
    before = _samples(center.call("GET", "/metrics").text)
    record_cycle(0.042, started=3, preempted=1)
    r = center.call("GET", "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    got = _samples(r.text)
    with center.factory() as s:
        rows = s.execute(
            select(Job.accelerator_type, Sector.name, Job.state,
                   func.sum(Job.nodes * Job.per_node), func.count(Job.id))
            .join(Project, Job.project_id == Project.id)
            .join(Organization, Project.organization_id == Organization.id)
            .join(Sector, Organization.sector_id == Sector.id)
            .group_by(Job.accelerator_type, Sector.name, Job.state)).all()
        capacity = s.scalar(select(func.sum(Node.accelerators)))
        submitted = s.scalar(select(func.count(Job.id)))
    busy = [(t, sec, acc) for t, sec, st, acc, _ in rows if st == JobState.RUNNING]
    pending = [(t, sec, n) for t, sec, st, _, n in rows if st == JobState.PENDING]
    assert busy and pending
    for t, sec, acc in busy:
        key = ("aicc_accelerators_busy", (("accelerator_type", t), ("sector", sec)))
        assert got[key] == acc
    for t, sec, n in pending:
        assert got[("aicc_jobs_pending", (("accelerator_type", t), ("sector", sec)))] == n
    assert sum(v for (name, _), v in got.items() if name == "aicc_accelerators") == capacity
    assert sum(v for (name, _), v in got.items()
               if name == "aicc_jobs_submitted_total") == submitted
    count = ("aicc_cycle_duration_seconds_count", ())
    assert got[count] == before.get(count, 0) + 1
    assert got[("aicc_cycle_duration_seconds_sum", ())] >= 0.042
    started = ("aicc_cycle_jobs_started_total", ())
    assert got[started] == before.get(started, 0) + 3
