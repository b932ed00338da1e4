"""The lending balance in the live service (rule 2, docs/design/0001-scheduling.md): the loans
after each cycle's starts are stored with those starts, the balance grows while they run,
survives a restart of the control plane, and is served read-only by ``GET /v1/lending``."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from aicc.api.app import create_app
from aicc.engines.twin import TwinEngine
from aicc.scheduler.lending import accumulate_lending
from aicc.service.snapshot import load_fleet, read_lending
from aicc.store.models import Job, JobState, LendingBalance, Sector
from service.conftest import T0, Center

TOKEN = "admin-token-for-lending-tests-0123"
HALF = 7 * 86400.0
# the default shares give research 20 % of the lab fleet's 128 H100: 25.6; six 8-accelerator
# jobs of research use 48, so 22.4 are borrowed (from public, which has the most idle)
BORROWED = 48 - 25.6


def _sectors(center: Center) -> tuple[np.ndarray, list[str]]:
    with center.factory() as s:
        rows = s.execute(select(Sector.id, Sector.name).order_by(Sector.id)).all()
    return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]


def _balance(center: Center, at: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    ids, names = _sectors(center)
    with center.factory() as s:
        got = read_lending(s, ids, at, HALF)
    return got.balance_s, got.loans, names


def _stored_at(center: Center) -> set[float]:
    with center.factory() as s:
        return {r.at.timestamp() for r in s.scalars(select(LendingBalance))}


def _restarted(center: Center):
    with center.factory() as session:
        fleet, _ = load_fleet(session)
    engine = TwinEngine(fleet)
    cp = center.control_plane(engine, policy="fairshare")
    assert cp.reconcile(center.clock.now())["requeued"] == 0
    return cp


def test_the_balance_grows_across_cycles_survives_a_restart_and_is_served(center: Center
                                                                           ) -> None:
    jobs = [center.submit(runtime=3600.0, limit=7200.0) for _ in range(6)]
    cp = center.control_plane(policy="fairshare")
    cp.run_cycle()
    with center.factory() as s:
        assert {s.get(Job, j).state for j in jobs} == {JobState.RUNNING}
    bal, loans, names = _balance(center, T0)
    res = names.index("research")
    assert loans[:, res].sum() == pytest.approx(BORROWED)  # written with the starts
    assert loans.sum() == pytest.approx(BORROWED) and not bal.any()
    assert _stored_at(center) == {T0}

    center.run(cp, T0 + 600)
    bal, _, _ = _balance(center, T0 + 600)
    assert bal[:, res].sum() == pytest.approx(BORROWED * 600, rel=1e-3)
    assert _stored_at(center) == {T0}  # the loans did not change: nothing rewritten
    snap = cp.builder.build(center.factory(), T0 + 600).snapshot
    assert snap.lending_balance_s == pytest.approx(bal)  # what the scheduler is given

    cp = _restarted(center)  # a new process, the same store
    center.run(cp, T0 + 1200)
    bal, _, _ = _balance(center, T0 + 1200)
    assert bal[:, res].sum() == pytest.approx(BORROWED * 1200, rel=1e-3)
    owed = bal.sum(axis=1) - bal.sum(axis=0)  # public, with most idle, lent it all
    assert owed[names.index("public")] == -owed[res] > 0 and owed[names.index("industry")] == 0

    center.run(cp, T0 + 4200)  # the jobs end at T0 + 3600: the loans end with them
    with center.factory() as s:
        assert {s.get(Job, j).state for j in jobs} == {JobState.FINISHED}
    bal, loans, _ = _balance(center, T0 + 4200)
    assert not loans.any() and _stored_at(center) == {T0 + 3600}
    want = accumulate_lending(None, np.array(BORROWED), 3600.0, HALF)  # lent for an hour,
    want = accumulate_lending(want, None, 600.0, HALF)  # then decayed for ten minutes
    assert bal[:, res].sum() == pytest.approx(float(want), rel=1e-9)

    settings = center.settings.model_copy(update={"admin_token": TOKEN})
    app = create_app(settings, session_factory=center.factory, control_plane=cp)
    with TestClient(app) as client:
        h = {"Authorization": f"Bearer {TOKEN}"}
        r = client.get("/v1/lending", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["at"].startswith("2030-03-17T") and body["half_life_s"] == HALF
        by_sector = {x["sector"]: x for x in body["sectors"]}
        assert by_sector["research"]["borrowed_accelerator_hours"] == pytest.approx(
            bal[:, res].sum() / 3600)
        assert by_sector["research"]["owed_accelerator_hours"] == pytest.approx(
            -bal[:, res].sum() / 3600)
        assert sum(x["owed_accelerator_hours"] for x in body["sectors"]) == pytest.approx(0.0)
        assert {p["borrower"] for p in body["pairs"]} == {"research"}
        assert sum(p["accelerator_hours"] for p in body["pairs"]) == pytest.approx(
            float(want) / 3600, rel=1e-6)
        assert all(p["accelerators_now"] == 0.0 for p in body["pairs"])
        bad = client.get("/v1/lending?sector=research", headers=h)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "sector"
        assert client.get("/v1/lending").status_code == 401


def test_baseline_policies_store_no_balance(center: Center) -> None:
    for _ in range(6):
        center.submit(runtime=3600.0, limit=7200.0)
    cp = center.control_plane(policy="multifactor")
    center.run(cp, T0 + 600)
    with center.factory() as s:
        assert s.scalars(select(LendingBalance)).all() == []
