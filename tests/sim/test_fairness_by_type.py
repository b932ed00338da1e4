"""Sector fairness type by type: a sector's fair share is water-filled within each accelerator
type, never over all types added together (an NPU does not serve a job that asked for an
H100), and the across-types figures are weighted by the fleet's capacity of each type."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from aicc.fleet.phases import build_fleet
from aicc.scheduler.lending import water_fill
from aicc.sim.jobs import prepare
from aicc.sim.loop import SimConfig, simulate
from aicc.sim.metrics import fair_share_delivered, fair_share_sums, jain, jain_by_type, summarize
from aicc.sim.report import write_report
from aicc.sim.scenario import custom_fleet
from aicc.workload.readers import read_trace
from aicc.workload.tenants import map_tenants
from aicc.workload.trace import RowAccount, build

from .cli_helpers import philly_slice, sim
from .helpers import workload


def pooled_reference(series, ent_share: np.ndarray) -> np.ndarray:
    """The previous definition, accelerators of all types added together: the whole capacity
    in service water-filled among sectors by their mean entitlement share, against the
    sectors' busy and pending accelerators of every type."""
    n_sec = len(ent_share)
    busy = np.asarray(series["sector_busy"], dtype=np.float64)
    want = busy + np.asarray(series["sector_pending"], dtype=np.float64)
    cap = np.asarray(series["capacity_up"], dtype=np.float64)
    fair = np.array([water_fill(cap[i:i + 1], ent_share.reshape(n_sec, 1),
                                want[i].reshape(n_sec, 1))[:, 0] for i in range(len(cap))])
    tot = fair.sum(axis=0)
    return np.divide(busy.sum(axis=0), tot, out=np.full(n_sec, np.nan), where=tot > 0)


def _mean_share(tenancy) -> np.ndarray:
    ent = tenancy.entitlement.mean(axis=1)
    return ent / ent.sum()


def _same(a, b) -> None:
    """Equal up to rounding (the entitlement enters as a share of the mean, or of one type),
    None where the other is NaN."""
    for x, y in zip(a, b, strict=True):
        if y is None or (isinstance(y, float) and np.isnan(y)):
            assert x is None or np.isnan(x)
        else:
            assert x == pytest.approx(y, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("policy", ["fifo", "fairshare"])
def test_one_type_value_equals_the_previous_definition(tmp_path, policy):
    # 400 Philly jobs on 4 nodes of one type: queues, borrowing, every sector (dealt by tenant)
    w = read_trace(philly_slice(tmp_path, rows=400))
    fleet = custom_fleet(4, "h100-sxm-80g")
    tm = map_tenants(w.tenants, len(fleet.catalog))
    r = simulate(prepare(w, fleet, tm.tenant_project), fleet, tm.tenancy,
                 SimConfig(policy=policy))
    s = summarize(r)
    old = pooled_reference(r.series, _mean_share(tm.tenancy))
    assert np.isfinite(old).sum() == 3 and not np.allclose(old, 1.0)  # a case with content
    new = [s["sectors"][n]["fair_share_delivered"] for n in tm.tenancy.sector_names]
    _same(new, old)
    by_type = [s["sectors"][n]["fair_share_delivered_by_type"] for n in tm.tenancy.sector_names]
    assert [list(d) for d in by_type] == [["h100-sxm-80g"]] * 3
    assert [d["h100-sxm-80g"] for d in by_type] == new  # one type: the same figure
    assert s["fairness"]["jain_sector_fair_share"] == pytest.approx(jain(old), rel=1e-12)
    assert s["fairness"]["jain_sector_fair_share_by_type"] == {
        "h100-sxm-80g": s["fairness"]["jain_sector_fair_share"]}


def test_a_swap_of_types_added_together_looks_fair_and_by_type_does_not():
    # Two types of 16 accelerators each, two sectors entitled to half of each, both wanting
    # everything. Industry holds all 16 NPUs and none of its 8 H100s; public the other way.
    # Added together each holds 16 of 32 accelerators against a fair share of 16: "fair".
    series = {"time": np.array([0.0]), "capacity_up": np.array([32]),
              "sector_busy": np.array([[16.0, 16.0]]),
              "sector_pending": np.array([[16.0, 16.0]]),
              "type_capacity_up": np.array([[16, 16]]),  # [h100, npu]
              "sector_type_busy": np.array([[[0.0, 16.0], [16.0, 0.0]]]),
              "sector_type_pending": np.array([[[16.0, 0.0], [0.0, 16.0]]])}
    ent = np.array([[0.5, 0.5], [0.5, 0.5]])
    pooled = pooled_reference(series, np.array([0.5, 0.5]))
    np.testing.assert_allclose(pooled, [1.0, 1.0])
    assert jain(pooled) == pytest.approx(1.0)  # the old metric calls it perfectly fair
    busy, fair = fair_share_sums(series, ent)
    np.testing.assert_allclose(fair, [[8.0, 8.0], [8.0, 8.0]])
    agg, by_type = fair_share_delivered(busy, fair, np.array([16.0, 16.0]))
    np.testing.assert_allclose(by_type, [[0.0, 2.0], [2.0, 0.0]])
    index, per_type = jain_by_type(by_type, np.array([16.0, 16.0]))
    assert per_type == [pytest.approx(0.5), pytest.approx(0.5)]
    assert index == pytest.approx(0.5)  # the new one does not
    # a sector's figure across types is the capacity-weighted mean of its types' figures
    np.testing.assert_allclose(agg, [1.0, 1.0])
    agg, _ = fair_share_delivered(busy, fair, np.array([48.0, 16.0]))
    np.testing.assert_allclose(agg, [0.5, 1.5])
    index, _ = jain_by_type(np.array([[1.0, 2.0], [1.0, 0.0]]), np.array([48.0, 16.0]))
    assert index == pytest.approx(0.75 * 1.0 + 0.25 * 0.5)


def _two_type_swap():
    """On the lab fleet (128 H100 and 128 Ascend 910B), FIFO: at 0 industry fills every NPU
    and public every H100 for 10 h; a minute later each asks for the other type for 1 h."""
    fleet = build_fleet("lab")
    n, long_s, short_s = 16, 36000.0, 3600.0
    submit = [0.0] * (2 * n) + [60.0] * (2 * n)
    runtime = [long_s] * (2 * n) + [short_s] * (2 * n)
    tenants = ["ind"] * n + ["pub"] * n + ["ind"] * n + ["pub"] * n
    model = (["ascend-910b"] * n + ["h100-sxm-80g"] * n + ["h100-sxm-80g"] * n
             + ["ascend-910b"] * n)
    m = len(submit)
    w = build("swap", submit=np.asarray(submit), runtime=np.asarray(runtime),
              gpus=np.full(m, 8.0), tenant_labels=np.asarray(tenants, dtype=object),
              lines=np.arange(m) + 2, account=RowAccount(),
              model_labels=np.asarray(model, dtype=object))
    tm = map_tenants(w.tenants, len(fleet.catalog),
                     mapping={"tenant": {"ind": {"sector": "industry"},
                                         "pub": {"sector": "public"}}},
                     shares={"industry": 0.5, "public": 0.5})
    jobs = prepare(w, fleet, tm.tenant_project)
    return simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo")), tm


def test_a_simulated_swap_of_types_is_not_called_fair():
    r, tm = _two_type_swap()
    s = summarize(r)
    assert s["states"] == {"finished": 64}
    pooled = pooled_reference(r.series, _mean_share(tm.tenancy))
    assert jain(pooled) > 0.99  # added together: every sector held half the fleet
    fs = {n: s["sectors"][n]["fair_share_delivered_by_type"] for n in ("industry", "public")}
    # industry held every NPU (twice its share) and waited 10 h for its H100s, and back
    assert fs["industry"]["ascend-910b"] > 1.9 and fs["industry"]["h100-sxm-80g"] < 0.25
    assert fs["public"]["h100-sxm-80g"] > 1.9 and fs["public"]["ascend-910b"] < 0.25
    per_type = s["fairness"]["jain_sector_fair_share_by_type"]
    assert set(per_type) == {"h100-sxm-80g", "ascend-910b"}
    assert all(v < 0.65 for v in per_type.values())
    assert s["fairness"]["jain_sector_fair_share"] < 0.65


def test_reports_of_a_two_type_fleet_render(tmp_path):
    r, _ = _two_type_swap()
    s = write_report([r], tmp_path)["fifo"]
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["fairness"] == s["fairness"]
    assert on_disk["sectors"]["industry"]["fair_share_delivered_by_type"] == (
        s["sectors"]["industry"]["fair_share_delivered_by_type"])
    series = pq.read_table(tmp_path / "series-fifo.parquet")
    cols = set(series.column_names)
    assert {"busy_industry", "capacity_up_h100-sxm-80g", "capacity_up_ascend-910b",
            "busy_industry_ascend-910b", "pending_acc_public_ascend-910b"} <= cols
    assert series.column("busy_industry_ascend-910b").to_pylist()[1] == 128
    assert pq.read_table(tmp_path / "jobs-fifo.parquet").num_rows == 64
    html = (tmp_path / "report.html").read_text()
    assert "Fair share delivered by accelerator type" in html
    assert "h100-sxm-80g (128)" in html and "ascend-910b (128)" in html
    assert "<td>Jain (sectors)</td>" in html


def test_one_type_reports_have_no_per_type_table_or_columns(tmp_path):
    w = workload([0.0, 0.0], [600.0, 600.0], [8, 8], ["a", "b"])
    fleet = custom_fleet(1, "h100-sxm-80g")
    tm = map_tenants(w.tenants, len(fleet.catalog))
    r = simulate(prepare(w, fleet, tm.tenant_project), fleet, tm.tenancy)
    write_report([r], tmp_path)
    assert "Fair share delivered by accelerator type" not in (tmp_path / "report.html"
                                                             ).read_text()
    cols = pq.read_table(tmp_path / "series-fairshare.parquet").column_names
    assert not any(c.endswith("h100-sxm-80g") for c in cols)


def test_the_cli_reports_fairness_by_type_on_the_lab_fleet():
    r = sim("--synthetic-days", "1", "--fleet", "lab", "--quiet", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["fairshare"]  # (a warning of the load offered goes to stderr)
    assert set(s["fairness"]["jain_sector_fair_share_by_type"]) == {"h100-sxm-80g",
                                                                   "ascend-910b"}
    for sec in s["sectors"].values():
        assert set(sec["fair_share_delivered_by_type"]) == {"h100-sxm-80g", "ascend-910b"}
