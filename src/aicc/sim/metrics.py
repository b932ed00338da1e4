"""Metrics of one simulation: per job, per sector, for the fleet, and fairness.

Definitions (also in ``docs/simulation.md``):

* wait = first start − submit (jobs that started); JCT = end − submit (jobs that finished:
  a job that failed or hit its time limit was cut short, and would flatter the figures).
* bounded slowdown = max(1, JCT / max(runtime, τ)) with τ = 10 s (Feitelson's bound, so that
  jobs of a few seconds do not dominate the mean), for jobs that finished.
* delivered share of a sector = its charged accelerator-seconds / all charged
  accelerator-seconds; compared with its entitlement share.
* makespan = last end − first submit; for a run stopped before every job ended (``until_s``,
  ``span_s``: ``--until-days``),
  the stop − first submit. Figures over the samples take those up to that end and the first
  one after it: a job that never starts (and is not stopped) does not stretch the run.
* utilisation (``utilisation_exact``, the summary table's column) = charged + lost (+ the work
  of runs still going at a stop) accelerator-seconds over installed capacity × makespan, from
  the job records;
  ``utilisation_mean`` = busy accelerators / accelerators in service, averaged over the samples
  (it leaves out capacity under repair, and a sample can miss a short job).
* fragmentation = free accelerators on partly used nodes / all free accelerators in service
  (free capacity that a whole-node gang cannot use).
* fair share of a sector at a sample, type by type = the type's capacity in service divided
  among sectors in proportion to their entitlement of that type, each capped by its demand of
  that type then (busy + pending accelerators), what a capped sector leaves going to the others
  (water filling, rule 2 of the scheduler); ``fair_share_delivered`` of a sector and type = Σ
  busy / Σ fair share over the samples. A sector's ``fair_share_delivered`` is the mean of its
  types' values weighted by the fleet's capacity of each type (over the types it wanted).
* Jain's index over sectors of ``fair_share_delivered``, type by type, and its mean weighted
  by capacity (1 = the sectors were served alike, each the same fraction of its fair share of
  a type; it says nothing of how large that fraction was, ``fair_share_delivered`` does; the
  share of all work delivered is no measure of fairness: once every job has run it is the
  demand mix, whatever the policy); and over projects of 1 / mean bounded slowdown. Types are
  never added together: a sector holding another's share of one type while short of its own
  share of another is not fairly served (an NPU is no substitute for an H100 a job asked for).
* lending balance (rule 2, fair share only): accelerator-hours each sector lent to each other
  one, decayed with the fair-share usage half-life, at the end of the run; per sector what it
  lent, what it borrowed and the difference it is owed (negative: it owes).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aicc.scheduler.lending import water_fill
from aicc.scheduler.policy import resolve
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
    done = r.state == ST_DONE
    wait = np.where(started, r.first_start - J.submit, np.nan)
    jct = np.where(done, r.end - J.submit, np.nan)
    bsld = np.where(done, np.maximum(1.0, jct / np.maximum(J.runtime, TAU_S)), np.nan)
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


def fair_share_sums(series: dict[str, np.ndarray], entitlement: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Accelerators held and fair shares, per sector and type, summed over the samples.

    At each sample, each type's capacity in service is divided among the sectors in proportion
    to their entitlement of that type, each capped by its demand of that type then (busy +
    pending accelerators), what a capped sector leaves going to the others (water filling,
    rule 2 of the scheduler). Returns ``(busy, fair)``, both ``[sector, type]``."""
    ent = np.asarray(entitlement, dtype=np.float64)
    n_s, n_t = ent.shape
    busy = np.zeros((n_s, n_t))
    fair = np.zeros((n_s, n_t))
    held = np.asarray(series.get("sector_type_busy", np.zeros(0)), dtype=np.float64)
    if not len(series["time"]) or not len(held):
        return busy, fair
    want = held + np.asarray(series["sector_type_pending"], dtype=np.float64)
    cap = np.asarray(series["type_capacity_up"], dtype=np.float64)
    cols = np.flatnonzero(cap.any(axis=0))  # the fleet's types (the others have no share)
    w = ent[:, cols]
    for i in range(len(cap)):
        fair[:, cols] += water_fill(cap[i, cols], w, want[i][:, cols])
    busy[:, cols] = held[:, :, cols].sum(axis=0)
    return busy, fair


def fair_share_delivered(busy: np.ndarray, fair: np.ndarray, type_weight: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``fair_share_delivered`` from :func:`fair_share_sums`: per sector and type, Σ busy / Σ
    fair share (NaN where the sector never wanted that type), and per sector the mean of its
    types' values weighted by ``type_weight`` (the fleet's capacity of each type) over the
    types it wanted (NaN if none). With one type, the two are the same number."""
    n_s, n_t = busy.shape
    by_type = np.divide(busy, fair, out=np.full((n_s, n_t), np.nan), where=fair > 0)
    ok = np.isfinite(by_type)
    wt = np.where(ok, np.asarray(type_weight, dtype=np.float64)[None, :], 0.0)
    tot = wt.sum(axis=1, keepdims=True)
    # weights normalised first, so that one type's weight is exactly 1 (its value unchanged)
    wn = np.divide(wt, tot, out=np.zeros_like(wt), where=tot > 0)
    agg = np.where(tot[:, 0] > 0, np.where(ok, by_type * wn, 0.0).sum(axis=1), np.nan)
    return agg, by_type


def jain_by_type(by_type: np.ndarray, type_weight: np.ndarray
                 ) -> tuple[float | None, list[float | None]]:
    """Jain's index over sectors of ``fair_share_delivered``, type by type (sectors that never
    wanted a type left out of its index), and their mean weighted by ``type_weight`` (the
    fleet's capacity of each type) over the types where it is defined; None when undefined."""
    per = [jain(by_type[:, t]) for t in range(by_type.shape[1])]
    wt = np.asarray(type_weight, dtype=np.float64)
    den = sum(float(wt[t]) for t, v in enumerate(per) if v is not None and wt[t] > 0)
    if not den > 0:
        return None, per
    # weights normalised first, so that one type's weight is exactly 1 (its index unchanged)
    return sum(float(wt[t]) / den * v for t, v in enumerate(per)
               if v is not None and wt[t] > 0), per


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _pct(x: np.ndarray) -> dict[str, float | None]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {"mean": float(x.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99),
            "max": float(x.max())}


def _window(series: dict[str, np.ndarray], last: float) -> dict[str, np.ndarray]:
    """The samples of the run's window: those taken up to ``last`` and the first one after
    it, which shows the state it ended in (every per-sample array cut alike)."""
    t = np.asarray(series["time"])
    n = int(np.searchsorted(t, last, side="right")) + 1
    if n >= len(t):
        return series
    return {k: (np.asarray(v)[:n] if len(v) == len(t) else v) for k, v in series.items()}


def summarize(r: SimResult, read: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON summary of one run. ``read`` is the row account of reading the trace (the
    workload's, before ``--max-jobs`` and the fleet mapping), so that ``rows`` can keep the
    counts over every row read apart from those among the first N (:func:`split_rows`)."""
    f = job_frame(r)
    J = r.jobs
    ten = r.tenancy
    n_sec = len(ten.sector_names)
    cap_total = int(r.fleet.capacity.sum())
    t0 = float(J.submit.min()) if len(J) else 0.0
    ends = f["end_s"][np.isfinite(f["end_s"])]
    unfinished = bool(len(J)) and not np.isin(r.state, (ST_DONE, ST_FAILED, ST_TIMEOUT)).all()
    # the run's window: to the stop of a run cut short while work was left, else to the last
    # end (a job that could never start, such as one too large for the power cap, leaves the
    # loop sampling an idle fleet until its last event: not part of the run)
    last = r.end_time if r.cut and unfinished else (float(ends.max()) if len(ends) else t0)
    makespan = max(last - t0, 0.0)
    s = _window(r.series, last)
    charged = f["charged_acc_s"]
    lost = f["lost_acc_s"]
    going = float(r.in_progress_s.sum()) if r.in_progress_s is not None else 0.0
    # the fleet's capacity of each type: the weight of a type in every across-types figure
    type_cap = np.bincount(r.fleet.type_idx, weights=r.fleet.capacity,
                           minlength=len(r.fleet.catalog)).astype(np.float64)
    types = np.flatnonzero(type_cap > 0)
    all_names = r.fleet.catalog.names
    type_names = [all_names[t] for t in types]
    ent_mat = np.asarray(ten.entitlement, dtype=np.float64)
    ent = ent_mat[:, types] @ (type_cap[types] / type_cap[types].sum()) if len(types) else (
        ent_mat.mean(axis=1))
    ent_share = ent / ent.sum() if ent.sum() else np.full(n_sec, 1.0 / n_sec)
    delivered = np.bincount(f["sector"], weights=charged, minlength=n_sec)
    tot = delivered.sum()
    share = delivered / tot if tot else np.zeros(n_sec)
    fair, fair_by_type = fair_share_delivered(*fair_share_sums(s, ent_mat), type_cap)
    jain_fair, jain_fair_by_type = jain_by_type(fair_by_type, type_cap)
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
            "fair_share_delivered": _num(fair[k]),
            "fair_share_delivered_by_type": {n: _num(fair_by_type[k, t])
                                             for n, t in zip(type_names, types, strict=True)},
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
    pol = resolve(r.config.policy)
    return {
        "policy": r.policy,
        # rule 1's setting, where it applies (fair share with entitlements)
        "sector_queueing": pol.sector_queueing if pol.lends else None,
        "jobs": len(J),
        "states": states,
        "ended_exactly_once": int(ended.sum()),
        "fleet": {
            "accelerators": cap_total,
            "nodes": int(r.fleet.n_nodes),
            "by_type": r.fleet.accelerators_by_type(),
            "utilisation_mean": float(util.mean()) if len(util) else 0.0,
            "utilisation_exact": float((charged.sum() + lost.sum() + going)
                                       / (cap_total * makespan)) if makespan else 0.0,
            "fragmentation_mean": float(s["fragmentation"].mean()) if len(util) else 0.0,
            "makespan_s": makespan,
            # the accelerators' draw over the samples, and the cap it was held under (null:
            # none; --site-power-mw)
            "power_mean_w": float(s["power_w"].mean()) if len(s.get("power_w", ())) else 0.0,
            "power_max_w": float(s["power_w"].max()) if len(s.get("power_w", ())) else 0.0,
            "power_available_w": (None if math.isinf(r.config.power_available_w)
                                  else r.config.power_available_w),
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
            "jain_sector_fair_share": jain_fair,
            "jain_sector_fair_share_by_type": {n: jain_fair_by_type[t]
                                               for n, t in zip(type_names, types, strict=True)},
            "jain_project_inverse_slowdown": jain(1.0 / mean_bsld[np.isfinite(mean_bsld)]),
        },
        "failures": {
            "node_failures": r.failures,
            "node_failures_by_type": ({} if r.node_failures is None else {
                all_names[t]: int(c) for t, c in enumerate(np.bincount(
                    r.fleet.type_idx, weights=r.node_failures,
                    minlength=len(all_names)).astype(np.int64).tolist()) if c}),
            "lost_acc_h": float(lost.sum() / 3600),
            "charged_acc_h": float(charged.sum() / 3600),
            "in_progress_acc_h": going / 3600,
        },
        "run": {
            "cycles": r.cycles,
            "cycles_skipped": r.cycles_skipped,
            "wall_s": r.wall_s,
            "cycle_wall_s": r.cycle_wall_s,
            "schedule_wall_s": r.schedule_wall_s,
            "end_time_s": r.end_time,
            "min_cycle_s": r.config.min_cycle_s,
            # --until-days: the run stopped this long after its first submission (null: none)
            "span_s": None if math.isinf(r.config.span_s) else r.config.span_s,
            "seed": r.config.seed,
        },
        "rows": split_rows(r.jobs.account.to_dict(), read),
        **({"extra": r.extra} if r.extra else {}),
    }


def series_frame(r: SimResult) -> dict[str, np.ndarray]:
    """Time series columns: fleet totals, then busy and pending accelerators per sector; on a
    fleet of several accelerator types also, per type, the capacity in service
    (``capacity_up_<type>``) and each sector's busy and pending accelerators
    (``busy_<sector>_<type>``, ``pending_acc_<sector>_<type>``)."""
    s = r.series
    out = {k: s[k] for k in ("time", "busy", "capacity_up", "pending", "fragmentation",
                             "power_w") if k in s}
    busy = s["busy"].astype(np.float64)
    for k, name in enumerate(r.tenancy.sector_names):
        sb = s["sector_busy"][:, k] if len(s["sector_busy"]) else np.zeros(0)
        out[f"busy_{name}"] = sb
        out[f"share_{name}"] = np.divide(sb, busy, out=np.zeros_like(busy), where=busy > 0)
        out[f"pending_acc_{name}"] = (s["sector_pending"][:, k] if len(s["sector_pending"])
                                      else np.zeros(0))
    types = np.flatnonzero(np.bincount(r.fleet.type_idx, minlength=len(r.fleet.catalog)))
    if len(types) > 1 and len(s.get("sector_type_busy", ())):
        names = r.fleet.catalog.names
        for t in types:
            out[f"capacity_up_{names[t]}"] = s["type_capacity_up"][:, t]
        for k, name in enumerate(r.tenancy.sector_names):
            for t in types:
                out[f"busy_{name}_{names[t]}"] = s["sector_type_busy"][:, k, t]
                out[f"pending_acc_{name}_{names[t]}"] = s["sector_type_pending"][:, k, t]
    return out


def _reason(key: str) -> str:
    """``larger_than_fleet`` → ``larger than fleet``; ``zero_gpus`` → ``zero GPUs``."""
    words = key.split("_")
    return " ".join("GPUs" if w == "gpus" else "GPU" if w == "gpu" else w for w in words)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{_reason(k)} {v:,}" for k, v in sorted(counts.items()) if v)


def split_rows(rows: dict[str, Any], read: dict[str, Any] | None) -> dict[str, Any]:
    """A run's row account (``rows``) with its two scopes apart.

    The run's account adds what mapping the jobs onto the fleet did (``larger_than_fleet``,
    ``gang_rounded_up_to_node_shape``) to the account of reading the file (``read``). Without a
    ``--max-jobs`` cut both cover every row read, and the account is returned as it is, with
    ``first_n`` None. With a cut the mapping covered only the first N valid rows: the top-level
    counts (``invalid``, ``adjusted``, ``example_lines``) are then those of reading the file,
    over every row read, and ``first_n`` holds the first N's: ``rows`` (N), ``simulated``, and
    ``invalid``, ``invalid_total``, ``adjusted``, ``example_lines`` among them — the two parts
    of the printed row account; ``first_n.adjusted`` counts what reading the file changed in
    those rows too (a runtime raised to 1 s), from ``rows["first_n_adjusted"]``. Without
    ``read`` a cut run's counts cannot be told apart: they are returned as they are, with
    ``first_n`` None."""
    out = dict(rows)
    read_among = out.pop("first_n_adjusted", None) or {}
    out["first_n"] = None
    cut = rows.get("max_jobs")
    if not cut or read is None:
        return out

    def among(key: str) -> dict[str, int]:
        before = read.get(key) or {}
        diff = {k: int(v) - int(before.get(k, 0)) for k, v in (rows.get(key) or {}).items()}
        return {k: v for k, v in sorted(diff.items()) if v}

    invalid, adjusted = among("invalid"), among("adjusted")
    for k, v in read_among.items():  # the adjustments made when reading the first N rows
        adjusted[k] = adjusted.get(k, 0) + int(v)
    adjusted = {k: v for k, v in sorted(adjusted.items()) if v}
    seen = read.get("example_lines") or {}
    examples = {k: [x for x in (rows.get("example_lines") or {}).get(k, [])
                    if x not in seen.get(k, [])] for k in invalid}
    out.update(invalid=dict(read.get("invalid") or {}),
               invalid_total=sum(int(v) for v in (read.get("invalid") or {}).values()),
               adjusted=dict(read.get("adjusted") or {}),
               example_lines=dict(read.get("example_lines") or {}))
    out["first_n"] = {"rows": int(cut), "simulated": rows.get("simulated"),
                      "invalid": invalid, "invalid_total": sum(invalid.values()),
                      "adjusted": adjusted,
                      "example_lines": {k: v for k, v in examples.items() if v}}
    return out


def describe_rows(rows: dict[str, Any]) -> str:
    """The row account as a sentence for people: ``rows read 400; invalid 3: larger than
    fleet 1, zero GPUs 2; adjusted 5: …; simulated 397``; empty parts are left out, and
    ``simulated`` only when it differs from the rows read (``rows read 82,247; simulated 2,000
    (--max-jobs 2,000)``), so the rows read are never taken for the jobs simulated.

    When ``--max-jobs N`` cut the valid rows and mapping those N onto the fleet left some out
    or changed some (``rows["first_n"]``, from :func:`split_rows`), the counts are kept apart
    by what they cover: reading the file (over every row read) first, then the jobs simulated
    and what the mapping did among the first N valid rows::

        rows read 82,247; invalid 3: zero GPUs 3; simulated 8 of the first 10 valid rows
        (--max-jobs 10; among them invalid 2: larger than fleet 2)
    """
    read = int(rows.get("rows_read", 0))
    parts = [f"rows read {read:,}"]
    invalid = {k: int(v) for k, v in (rows.get("invalid") or {}).items() if v}
    if invalid:
        parts.append(f"invalid {sum(invalid.values()):,}: {_counts(invalid)}")
    adjusted = {k: int(v) for k, v in (rows.get("adjusted") or {}).items() if v}
    if adjusted:
        parts.append(f"adjusted {sum(adjusted.values()):,}: {_counts(adjusted)}")
    simulated, cut = rows.get("simulated"), rows.get("max_jobs")
    first = rows.get("first_n") or {}
    dropped = {k: int(v) for k, v in (first.get("invalid") or {}).items() if v}
    changed = {k: int(v) for k, v in (first.get("adjusted") or {}).items() if v}
    if simulated is not None and cut and (dropped or changed):
        notes = [f"--max-jobs {int(cut):,}"]
        if dropped:
            notes.append(f"among them invalid {sum(dropped.values()):,}: {_counts(dropped)}")
        if changed:
            notes.append(f"among them adjusted {sum(changed.values()):,}: {_counts(changed)}")
        parts.append(f"simulated {int(simulated):,} of the first {int(cut):,} valid rows "
                     f"({'; '.join(notes)})")
    elif simulated is not None and (int(simulated) != read or cut):
        parts.append(f"simulated {int(simulated):,}"
                     + (f" (--max-jobs {int(cut):,})" if cut else ""))
    return "; ".join(parts)


def row_account_lines(summaries: dict[str, dict[str, Any]]) -> list[tuple[list[str], str]]:
    """The row account of the runs (:func:`describe_rows` of each summary's ``rows``): one
    line for all when their accounts agree, else one per group of runs with the same account
    (fleets that leave out different jobs); each with the labels of its runs."""
    groups: dict[str, list[str]] = {}
    for label, s in summaries.items():
        groups.setdefault(describe_rows(s["rows"]), []).append(label)
    return [(labels, line) for line, labels in groups.items()]
