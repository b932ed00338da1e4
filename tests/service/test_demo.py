"""The demo center: an idempotent seed and a deterministic, well-sized workload."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from aicc.api.tokens import user_for_token
from aicc.config import Settings
from aicc.fleet import build_fleet
from aicc.service.demo import DEMO_ORGS, DemoWorkload, WorkloadProject, seed_demo
from aicc.store.db import make_engine, session_factory, transaction
from aicc.store.migrate import upgrade
from aicc.store.models import ApiToken, Grant, Job, Organization, Project, Sector, User
from aicc.store.seed import sync_fleet

T0 = datetime(2028, 6, 1, tzinfo=UTC).timestamp()


@pytest.fixture()
def store(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = make_engine(url)
    upgrade(engine)
    yield Settings(database_url=url, demo={"seed": 11}), session_factory(engine)
    engine.dispose()


def _seeded(session, settings: Settings, fleet, **kw) -> DemoWorkload:
    """The demo center seeded a day before T0 on ``fleet``, and its workload."""
    sync_fleet(session, fleet)
    seed_demo(session, settings, fleet, now=T0 - 86400)
    return DemoWorkload.from_store(session, settings, fleet, **kw)


def _counts(session) -> tuple[int, ...]:
    return tuple(session.scalar(select(func.count()).select_from(m))
                 for m in (Organization, Project, User, ApiToken, Grant, Job))


def test_seed_is_idempotent_and_complete(store) -> None:
    settings, factory = store
    fleet = build_fleet("lab")
    with transaction(factory) as s:
        sync_fleet(s, fleet)
        first = seed_demo(s, settings, fleet, now=T0)
    assert first.created
    with transaction(factory) as s:
        after_first = _counts(s)
        again = seed_demo(s, settings, fleet, now=T0 + 3600)
        assert not again.created and again.tokens == {}
        assert _counts(s) == after_first
        # Every sector has several organizations, each with a region and projects.
        by_sector = dict(s.execute(select(Sector.name, func.count(Organization.id))
                                   .join(Organization).group_by(Sector.name)).all())
        assert by_sector == {"industry": 3, "research": 4, "public": 4}
        assert all(o.region for o in s.scalars(select(Organization)))
        assert first.projects == sum(len(o.projects) for o in DEMO_ORGS)
        # Tokens authenticate their users; grants cover every type of the fleet.
        for name, token in list(first.tokens.items())[:3]:
            assert user_for_token(session=s, token=token).name == name
        types = set(s.scalars(select(Grant.accelerator_type).distinct()))
        assert types == {"h100-sxm-80g", "ascend-910b"}


def test_grants_last_months_at_full_load(store) -> None:
    settings, factory = store
    fleet = build_fleet("lab")
    with transaction(factory) as s:
        sync_fleet(s, fleet)
        seed_demo(s, settings, fleet, now=T0)
        granted = s.scalar(select(func.sum(Grant.accelerator_hours)))
    hours_per_day_full = fleet.n_accelerators * 24
    assert granted / hours_per_day_full > 90  # more than three months of the whole fleet


def _projects() -> list[WorkloadProject]:
    return [WorkloadProject(id=i + 1, name=f"p{i}", sector=sec, weight=1.0, submitter_id=i + 1)
            for i, sec in enumerate(["industry", "research", "public"] * 3)]


def test_workload_is_deterministic_for_a_seed() -> None:
    fleet = build_fleet("lab")
    a = DemoWorkload(7, fleet, _projects()).arrivals(T0, T0 + 6 * 3600)
    b = DemoWorkload(7, fleet, _projects()).arrivals(T0, T0 + 6 * 3600)
    c = DemoWorkload(8, fleet, _projects()).arrivals(T0, T0 + 6 * 3600)
    assert a == b and len(a) > 5
    assert a != c
    # The same jobs however the time is cut into calls.
    w = DemoWorkload(7, fleet, _projects())
    pieces = w.arrivals(T0, T0 + 1000) + w.arrivals(T0 + 1000, T0 + 6 * 3600)
    assert pieces == a
    assert len({x.key for x in a}) == len(a)


def test_workload_fills_the_2028_fleet_with_a_realistic_mix() -> None:
    fleet = build_fleet("2028")
    w = DemoWorkload(7, fleet, _projects())
    day = w.arrivals(T0, T0 + 24 * 3600)
    offered = sum(a.accelerators * a.runtime_s for a in day) / (24 * 3600)
    assert 0.8 < offered / fleet.n_accelerators < 1.25
    classes = {a.job_class for a in day}
    assert classes == {"interactive", "batch", "flexible"}
    small = sum(1 for a in day if a.accelerators <= 8)
    gangs = sum(1 for a in day if a.nodes >= 16)
    assert small / len(day) > 0.5 and gangs > 0
    assert all(a.runtime_s < a.time_limit_s for a in day)
    caps = fleet.accelerators_by_type()
    assert {a.accelerator_type for a in day} == set(caps)


def test_each_type_is_offered_its_load_whatever_the_seed() -> None:
    # the rates are the generator's expectation, not a sample's: the same for every seed, and
    # a large sample of jobs of each type holds on average what the rates assume
    fleet = build_fleet("2028")
    w = DemoWorkload(7, fleet, _projects())
    np.testing.assert_array_equal(w.rate_by_type, DemoWorkload(4, fleet, _projects()).rate_by_type)
    sample = w._draw(np.random.default_rng(1), 200_000, "check", 0.0, 0.0)
    caps = fleet.accelerators_by_type()
    for k, t in enumerate(w.types):
        mine = [a.accelerators * a.runtime_s for a in sample if a.accelerator_type == t]
        expected = w.load * caps[t] / w.rate_by_type[k]  # the work per job the rate assumes
        assert float(np.mean(mine)) == pytest.approx(expected, rel=0.05), t


def test_a_long_queue_for_one_type_holds_back_only_its_batch_work(store) -> None:
    settings, factory = store
    fleet = build_fleet("2028")
    with transaction(factory) as s:
        w = _seeded(s, settings, fleet)
        w.queue_hours = 1e9
        w.submit_due(s, T0)  # the warm backlog: every type has a queue (no scheduler runs)
        waiting = dict(s.execute(select(Job.accelerator_type, func.count(Job.id))
                                 .group_by(Job.accelerator_type)).all())
        # hours of its own arrivals each type's queue holds; the bound between the longest
        # and the next: only the longest is over it
        hours = {t: waiting[t] / (r * 3600)
                 for t, r in zip(w.types, w.rate_by_type.tolist(), strict=True)}
        longest, second = sorted(hours.values())[-1], sorted(hours.values())[-2]
        assert longest > second
        top = max(hours, key=hours.__getitem__)
        w.queue_hours = (longest + second) / 2
        later = w.arrivals(T0, T0 + 600)
        n = w.submit_due(s, T0 + 600)
        kept = [a for a in later if a.job_class == "interactive" or a.accelerator_type != top]
        assert n == len(kept) < len(later)
        # the other types' batch work still arrives
        assert any(a.accelerator_type != top and a.job_class != "interactive" for a in kept)


def test_submission_resumes_after_a_restart(store) -> None:
    settings, factory = store
    fleet = build_fleet("lab")
    with transaction(factory) as s:
        w = _seeded(s, settings, fleet, load=3.0)
        w.queue_hours = 1e9  # no scheduler runs here: let the queue grow
        n1 = w.submit_due(s, T0)
        n2 = w.submit_due(s, T0 + 1800)
    assert n1 > 0
    with transaction(factory) as s:
        stored = s.scalar(select(func.count(Job.id)))
        assert stored == n1 + n2
        assert s.scalar(select(func.count(Job.id)).where(Job.runtime_s.is_(None))) == 0
        # A new process over the same store: nothing is submitted twice.
        w2 = DemoWorkload.from_store(s, settings, fleet, load=3.0)
        w2.queue_hours = 1e9
        assert w2.submit_due(s, T0 + 1800) == 0
        n3 = w2.submit_due(s, T0 + 7200)
        assert s.scalar(select(func.count(Job.id))) == stored + n3
        want = DemoWorkload.from_store(s, settings, fleet, load=3.0).arrivals(
            T0 - w.backlog_s, T0 + 7200)
        assert n1 + n2 + n3 == len(want)


def test_a_long_queue_holds_back_batch_work(store) -> None:
    settings, factory = store
    fleet = build_fleet("lab")
    with transaction(factory) as s:
        w = _seeded(s, settings, fleet, load=3.0)
        w.queue_hours = 0.5
        first = w.submit_due(s, T0)  # the queue is empty: the whole backlog arrives
        assert first == len(w.arrivals(T0 - w.backlog_s, T0)) > w.queue_hours * w.rate * 3600
        later = w.arrivals(T0, T0 + 4 * 3600)
        n = w.submit_due(s, T0 + 4 * 3600)
        interactive = [a for a in later if a.job_class == "interactive"]
        assert n == len(interactive) < len(later)


def test_a_warm_start_keeps_its_arrivals_times(store) -> None:
    # the backlog's four hours of arrivals are stored with their own times (to the window),
    # not all at the first instant: the forecast's history replays them as they came
    settings, factory = store
    fleet = build_fleet("lab")
    with transaction(factory) as s:
        w = _seeded(s, settings, fleet, load=3.0)
        w.queue_hours = 1e9
        assert w.submit_due(s, T0) > 10
        want = {a.key: a.time for a in w.arrivals(T0 - w.backlog_s, T0)}
        got = {k: t.timestamp() for k, t in s.execute(select(Job.idempotency_key,
                                                             Job.submitted_at)).all()}
    assert got.keys() == want.keys()
    assert all(-1e-3 <= got[k] - want[k] < w.window_s for k in want)  # (microseconds stored)
    assert max(got.values()) - min(got.values()) > 3.5 * 3600
