"""Metrics of one simulation: per job, per sector, for the fleet, and fairness.

Definitions (also in ``docs/simulation.md``):

* wait = first start − submit; JCT = end − submit (jobs that ended).
* bounded slowdown = max(1, JCT / max(runtime, τ)) with τ = 10 s (Feitelson's bound, so that
  jobs of a few seconds do not dominate the mean).
* delivered share of a sector = its charged accelerator-seconds / all charged
  accelerator-seconds; compared with its entitlement share.
* utilisation = busy accelerators / accelerators in service, averaged over samples; the exact
  figure from job records (charged + lost accelerator-seconds over capacity × makespan) is given
  beside it.
* fragmentation = free accelerators on partly used nodes / all free accelerators in service
  (free capacity that a whole-node gang cannot use).
* fair share of a sector at a sample = the capacity in service divided among sectors in
  proportion to their entitlement, each capped by its demand then (busy + pending accelerators),
  what a capped sector leaves going to the others (water filling, rule 2 of the scheduler);
  ``fair_share_delivered`` = Σ busy / Σ fair share over the samples.
* Jain's index over sectors of ``fair_share_delivered`` (1 = every sector got its fair share of
  the time it wanted capacity; the share of all work delivered is no measure of fairness: once
  every job has run it is the demand mix, whatever the policy); and over projects of 1 / mean
  bounded slowdown. Accelerators of all types are counted together.
* lending balance (rule 2, fair share only): accelerator-hours each sector lent to each other
  one, decayed with the fair-share usage half-life, at the end of the run; per sector what it
  lent, what it borrowed and the difference it is owed (negative: it owes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aicc.scheduler.lending import water_fill
from aicc.sim.loop import ST_DONE, ST_FAILED, ST_TIMEOUT, STATE_NAMES, SimResult

TAU_S = 10.0


def jain(x: np.ndarray) -> float | None:
    """Jain's fairness index (Σx)² / (n Σx²): 1 when all equal, 1/n when one takes all; None
    when it is undefined (no finite value, or nothing delivered to anyone)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0 or not (x**2).sum():
        return None
    return float(x.sum() ** 2 / (len(x) * (x**2).sum()))


def job_frame(r: SimResult) -> dict[str, np.ndarray]:
    """Per-job columns (NaN for what did not happen)."""
    J = r.jobs
    started = r.first_start >= 0
    ended = r.end >= 0
    wait = np.where(started, r.first_start - J.submit, np.nan)
    jct = np.where(ended, r.end - J.submit, np.nan)
    bsld = np.where(ended, np.maximum(1.0, jct / np.maximum(J.runtime, TAU_S)), np.nan)
    sector = r.tenancy.project_sector[J.project]
    return {
        "job": np.arange(len(J), dtype=np.int64),
        "submit_s": J.submit,
        "start_s": np.where(started, r.first_start, np.nan),
        "end_s": np.where(ended, r.end, np.nan),
        "runtime_s": J.runtime,
        "wait_s": wait,
        "jct_s": jct,
        "bounded_slowdown": bsld,
        "accelerators": J.accelerators,
        "gpus_requested": J.gpus_requested,
        "type": J.type_idx.astype(np.int16),
        "project": J.project,
        "sector": sector.astype(np.int16),
        "state": r.state.astype(np.int8),
        "preemptions": r.preemptions,
        "interruptions": r.interruptions,
        "lost_acc_s": r.lost_s,
        "charged_acc_s": r.charged_s,
    }


def fair_share_delivered(r: SimResult, ent_share: np.ndarray) -> np.ndarray:
    """Per sector: accelerators it held over those its demand-capped fair share gave it, summed
    over the samples (NaN for a sector that never wanted capacity)."""
    s = r.series
    n_sec = len(ent_share)
    if not len(s["time"]) or not len(s["sector_busy"]):
        return np.full(n_sec, np.nan)
    busy = np.asarray(s["sector_busy"], dtype=np.float64)
    want = busy + np.asarray(s["sector_pending"], dtype=np.float64)
    cap = np.asarray(s["capacity_up"], dtype=np.float64)
    weight = ent_share.reshape(n_sec, 1)
    fair = np.array([water_fill(cap[i:i + 1], weight, want[i].reshape(n_sec, 1))[:, 0]
                     for i in range(len(cap))])
    tot_fair = fair.sum(axis=0)
    return np.divide(busy.sum(axis=0), tot_fair, out=np.full(n_sec, np.nan),
                     where=tot_fair > 0)


def _pct(x: np.ndarray) -> dict[str, float | None]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {"mean": float(x.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "max": float(x.max())}


def summarize(r: SimResult) -> dict[str, Any]:
    """The JSON summary of one run."""
    f = job_frame(r)
    J = r.jobs
    ten = r.tenancy
    n_sec = len(ten.sector_names)
    s = r.series
    cap_total = int(r.fleet.capacity.sum())
    t0 = float(J.submit[0]) if len(J) else 0.0
    ends = f["end_s"][np.isfinite(f["end_s"])]
    makespan = float(ends.max() - t0) if len(ends) else 0.0
    charged = f["charged_acc_s"]
    lost = f["lost_acc_s"]
    ent = ten.entitlement.mean(axis=1)
    ent_share = ent / ent.sum() if ent.sum() else np.full(n_sec, 1.0 / n_sec)
    delivered = np.bincount(f["sector"], weights=charged, minlength=n_sec)
    tot = delivered.sum()
    share = delivered / tot if tot else np.zeros(n_sec)
    fair = fair_share_delivered(r, ent_share)
    bal = r.lending_balance_s
    lent = bal.sum(axis=1) / 3600 if bal is not None else None
    borrowed = bal.sum(axis=0) / 3600 if bal is not None else None
    sectors: dict[str, Any] = {}
    for k, name in enumerate(ten.sector_names):
        m = f["sector"] == k
        sectors[name] = {
            "jobs": int(m.sum()),
            "wait_s": _pct(f["wait_s"][m]),
            "bounded_slowdown": _pct(f["bounded_slowdown"][m]),
            "delivered_acc_h": float(delivered[k] / 3600),
            "delivered_share": float(share[k]),
            "entitlement_share": float(ent_share[k]),
            "fair_share_delivered": None if np.isnan(fair[k]) else float(fair[k]),
            "demand_acc_h": float((J.runtime[m] * J.accelerators[m]).sum() / 3600),
        }
        if lent is not None and borrowed is not None:
            sectors[name] |= {"lent_acc_h": float(lent[k]), "borrowed_acc_h": float(borrowed[k]),
                              "owed_acc_h": float(lent[k] - borrowed[k])}
    # per-project mean slowdown for the project-level fairness index
    proj = f["project"]
    ok = np.isfinite(f["bounded_slowdown"])
    cnt = np.bincount(proj[ok], minlength=len(ten.project_names))
    sums = np.bincount(proj[ok], weights=f["bounded_slowdown"][ok], minlength=len(cnt))
    mean_bsld = np.divide(sums, cnt, out=np.full(len(cnt), np.nan), where=cnt > 0)
    busy = s["busy"].astype(np.float64)
    capu = s["capacity_up"].astype(np.float64)
    util = np.divide(busy, capu, out=np.zeros_like(busy), where=capu > 0)
    states = {STATE_NAMES[i]: int(c) for i, c in enumerate(np.bincount(r.state, minlength=6)) if c}
    ended = np.isin(r.state, (ST_DONE, ST_FAILED, ST_TIMEOUT))
    return {
        "policy": r.policy,
        "jobs": len(J),
        "states": states,
        "ended_exactly_once": int(ended.sum()),
        "fleet": {
            "accelerators": cap_total,
            "nodes": int(r.fleet.n_nodes),
            "by_type": r.fleet.accelerators_by_type(),
            "utilisation_mean": float(util.mean()) if len(util) else 0.0,
            "utilisation_exact": float((charged.sum() + lost.sum())
                                       / (cap_total * makespan)) if makespan else 0.0,
            "fragmentation_mean": float(s["fragmentation"].mean()) if len(util) else 0.0,
            "makespan_s": makespan,
        },
        "jobs_metrics": {
            "wait_s": _pct(f["wait_s"]),
            "jct_s": _pct(f["jct_s"]),
            "bounded_slowdown": _pct(f["bounded_slowdown"]),
            "preemptions": int(r.preemptions.sum()),
            "interruptions": int(r.interruptions.sum()),
        },
        "sectors": sectors,
        "lending": None if bal is None else [
            {"lender": ten.sector_names[i], "borrower": ten.sector_names[j],
             "acc_h": float(bal[i, j] / 3600)}
            for i, j in zip(*np.nonzero(bal), strict=True)],
        "fairness": {
            "jain_sector_fair_share": jain(fair),
            "jain_project_inverse_slowdown": jain(1.0 / mean_bsld[np.isfinite(mean_bsld)]),
        },
        "failures": {
            "node_failures": r.failures,
            "lost_acc_h": float(lost.sum() / 3600),
            "charged_acc_h": float(charged.sum() / 3600),
        },
        "run": {
            "cycles": r.cycles,
            "cycles_skipped": r.cycles_skipped,
            "wall_s": r.wall_s,
            "cycle_wall_s": r.cycle_wall_s,
            "schedule_wall_s": r.schedule_wall_s,
            "end_time_s": r.end_time,
            "min_cycle_s": r.config.min_cycle_s,
            "seed": r.config.seed,
        },
        "rows": r.jobs.account.to_dict(),
        **({"extra": r.extra} if r.extra else {}),
    }


def series_frame(r: SimResult) -> dict[str, np.ndarray]:
    """Time series columns: fleet totals, then busy and pending accelerators per sector."""
    s = r.series
    out = {k: s[k] for k in ("time", "busy", "capacity_up", "pending", "fragmentation")}
    busy = s["busy"].astype(np.float64)
    for k, name in enumerate(r.tenancy.sector_names):
        sb = s["sector_busy"][:, k] if len(s["sector_busy"]) else np.zeros(0)
        out[f"busy_{name}"] = sb
        out[f"share_{name}"] = np.divide(sb, busy, out=np.zeros_like(busy), where=busy > 0)
        out[f"pending_acc_{name}"] = (s["sector_pending"][:, k] if len(s["sector_pending"])
                                      else np.zeros(0))
    return out


def _reason(key: str) -> str:
    """``larger_than_fleet`` → ``larger than fleet``; ``zero_gpus`` → ``zero GPUs``."""
    words = key.split("_")
    return " ".join("GPUs" if w == "gpus" else "GPU" if w == "gpu" else w for w in words)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{_reason(k)} {v:,}" for k, v in sorted(counts.items()) if v)


def describe_rows(rows: dict[str, Any]) -> str:
    """The row account as a sentence for people: ``rows read 400; invalid 3: larger than
    fleet 1, zero GPUs 2; adjusted 5: …; simulated 397``; empty parts are left out, and
    ``simulated`` only when it differs from the rows read (``rows read 82,247; simulated 2,000
    (--max-jobs 2,000)``), so the rows read are never taken for the jobs simulated."""
    read = int(rows.get("rows_read", 0))
    parts = [f"rows read {read:,}"]
    invalid = {k: int(v) for k, v in (rows.get("invalid") or {}).items() if v}
    if invalid:
        parts.append(f"invalid {sum(invalid.values()):,}: {_counts(invalid)}")
    adjusted = {k: int(v) for k, v in (rows.get("adjusted") or {}).items() if v}
    if adjusted:
        parts.append(f"adjusted {sum(adjusted.values()):,}: {_counts(adjusted)}")
    simulated, cut = rows.get("simulated"), rows.get("max_jobs")
    if simulated is not None and (int(simulated) != read or cut):
        parts.append(f"simulated {int(simulated):,}"
                     + (f" (--max-jobs {int(cut):,})" if cut else ""))
    return "; ".join(parts)
