"""Write a run's results: Parquet tables, a JSON summary and a self-contained HTML report.

The HTML has inline SVG plots drawn here (no JavaScript, no CDN), so the file opens anywhere,
offline, and can be archived with the run.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aicc.errors import InvalidInput
from aicc.inputfiles import read_input_file
from aicc.sim.loop import STATE_NAMES, SimResult
from aicc.sim.metrics import _reason, job_frame, row_account_lines, series_frame, summarize

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


def _fmt_s(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    if x < 120:
        return f"{x:.0f} s"
    if x < 7200:
        return f"{x / 60:.1f} min"
    if x < 172800:
        return f"{x / 3600:.1f} h"
    return f"{x / 86400:.1f} d"


def _tick(v: float) -> str:
    """An axis label: whole numbers with thousands separators from 1,000 on (no 1.32e+03)."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def svg_lines(x: np.ndarray, series: dict[str, np.ndarray], *, title: str, ylabel: str,
              width: int = 760, height: int = 260, ymax: float | None = None,
              dashed: dict[str, float] | None = None) -> str:
    """A line chart as an SVG string; x in seconds (shown in days), at most 800 points/line."""
    left, right, top, bottom = 56, 150, 26, 34
    pw, ph = width - left - right, height - top - bottom
    x = np.asarray(x, dtype=np.float64)
    if len(x) > 800:
        step = int(np.ceil(len(x) / 800))
        idx = np.arange(0, len(x), step)
    else:
        idx = np.arange(len(x))
    xs = x[idx] / 86400.0 if len(x) else np.zeros(0)
    x0, x1 = (float(xs.min()), float(xs.max())) if len(xs) else (0.0, 1.0)
    if x1 <= x0:
        x1 = x0 + 1.0
    vals = [np.asarray(v, dtype=np.float64)[idx] for v in series.values()]
    top_val = max([float(np.nanmax(v)) for v in vals if len(v)] + [1e-9]
                  + list((dashed or {}).values()))
    y1 = ymax if ymax is not None else top_val * 1.05

    def px(v: np.ndarray) -> np.ndarray:
        return left + (v - x0) / (x1 - x0) * pw

    def py(v: np.ndarray | float) -> np.ndarray | float:
        return top + ph - np.asarray(v) / y1 * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for k in range(5):
        yv = y1 * k / 4
        yy = py(yv)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{yy + 4:.1f}" text-anchor="end">{_tick(yv)}</text>')
        xv = x0 + (x1 - x0) * k / 4
        out.append(f'<text x="{px(np.array(xv)):.1f}" y="{top + ph + 14}" '
                   f'text-anchor="middle">{xv:.1f}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">days</text>')
    out.append(f'<text x="12" y="{top + ph / 2}" transform="rotate(-90 12 {top + ph / 2})" '
               f'text-anchor="middle">{html.escape(ylabel)}</text>')
    for i, (name, v) in enumerate(zip(series, vals, strict=True)):
        color = PALETTE[i % len(PALETTE)]
        if len(v):
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px(xs), py(np.nan_to_num(v)),
                                                              strict=True))
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.4" '
                       f'points="{pts}"/>')
        ly = top + 12 + 16 * i
        out.append(f'<line x1="{left + pw + 10}" x2="{left + pw + 28}" y1="{ly - 4}" '
                   f'y2="{ly - 4}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{left + pw + 32}" y="{ly}">{html.escape(name)}</text>')
        if dashed and name in dashed:
            yy = py(dashed[name])
            out.append(f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                       f'stroke="{color}" stroke-dasharray="5,4"/>')
    out.append("</svg>")
    return "".join(out)


def svg_bars(groups: list[str], series: dict[str, list[float | None]], *, title: str,
             ylabel: str,
             width: int = 760, height: int = 260,
             fmt: Callable[[float], str] = _tick) -> str:
    """Grouped bars (one group per label in ``groups``, one bar per key of ``series``), on a
    scale labelled with ``fmt``; a missing value (None, NaN) is drawn as a dash."""
    left, right, top, bottom = 56, 150, 26, 34
    pw, ph = width - left - right, height - top - bottom
    allv = [v for vs in series.values() for v in vs if v is not None and np.isfinite(v)]
    y1 = max([*allv, 1e-9]) * 1.1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
           f'<text x="12" y="{top + ph / 2}" transform="rotate(-90 12 {top + ph / 2})" '
           f'text-anchor="middle">{html.escape(ylabel)}</text>',
           f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#999"/>']
    for k in range(1, 5):
        yv = y1 * k / 4
        yy = top + ph - ph * k / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{yy + 4:.1f}" text-anchor="end">'
                   f'{html.escape(fmt(yv))}</text>')
    gw = pw / max(len(groups), 1)
    bw = gw * 0.8 / max(len(series), 1)
    for g, label in enumerate(groups):
        out.append(f'<text x="{left + gw * (g + 0.5):.1f}" y="{top + ph + 14}" '
                   f'text-anchor="middle">{html.escape(label)}</text>')
        for i, vs in enumerate(series.values()):
            xx = left + gw * g + gw * 0.1 + bw * i
            if vs[g] is None or not np.isfinite(vs[g]):  # no value (e.g. a sector with no
                # job): a dash, not a bar of 0 that reads as "no wait"
                out.append(f'<text x="{xx + bw / 2:.1f}" y="{top + ph - 3}" '
                           'text-anchor="middle">–<title>no value</title></text>')
                continue
            v = float(vs[g])
            h = v / y1 * ph
            out.append(f'<rect x="{xx:.1f}" y="{top + ph - h:.1f}" width="{bw:.1f}" '
                       f'height="{h:.1f}" fill="{PALETTE[i % len(PALETTE)]}">'
                       f'<title>{html.escape(fmt(v))}</title></rect>')
    for i, name in enumerate(series):
        ly = top + 12 + 16 * i
        out.append(f'<rect x="{left + pw + 10}" y="{ly - 9}" width="12" height="10" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{left + pw + 28}" y="{ly}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _fmt_index(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _fmt_share(x: float | None) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.1%}"


def comparison_rows(summaries: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per run under :data:`COMPARISON_HEAD`. The utilisation is the exact figure
    (accelerator-time used over installed accelerators × makespan), not the mean of the
    samples over capacity in service (``fleet.utilisation_mean`` in the summary)."""
    rows = []
    for pol, s in summaries.items():
        jm = s["jobs_metrics"]
        rows.append([
            pol, f"{s['jobs']:,}", _fmt_share((s.get("extra") or {}).get("offered_load")),
            _fmt_share(s["fleet"]["utilisation_exact"]),
            _fmt_s(jm["wait_s"]["mean"]), _fmt_s(jm["wait_s"]["p90"]),
            f"{jm['bounded_slowdown']['mean']:.2f}" if jm["bounded_slowdown"]["mean"] else "–",
            _fmt_index(s["fairness"]["jain_sector_fair_share"]),
            _fmt_s(s["fleet"]["makespan_s"]),
            f"{s['jobs'] - s['ended_exactly_once']:,}",
            f"{s['states'].get('failed', 0) + s['states'].get('timeout', 0):,}",
            f"{s['failures']['node_failures']:,}",
            f"{s['run']['wall_s']:.2f} s",
        ])
    return rows


# "offered load": the workload's work over the fleet (a trace: over its window; a synthetic
# workload: over its days); "utilisation": accelerator-time used (charged + lost) over installed
# accelerators × makespan; "not ended": jobs still pending or running (or not yet submitted)
# when the run stopped; "failed jobs": ended failed or at their time limit; "node failures":
# injected (--failures)
COMPARISON_HEAD = ["run", "jobs", "offered load", "utilisation", "mean wait", "p90 wait",
                   "mean bsld", "Jain (sectors)", "makespan", "not ended", "failed jobs",
                   "node failures", "wall"]
# What the two load columns are, under the table (the command's and the report's)
COMPARISON_NOTE = ("offered load: the workload's accelerator-time over the fleet's (a trace: "
                   "over its window; a synthetic workload: over its days). utilisation: "
                   "accelerator-time used (charged + lost) / (installed accelerators × "
                   "makespan). mean bsld: bounded slowdown of the jobs that finished (a "
                   "failed or timed-out job was cut short).")

# The files a report writes per run (``<name>`` from the run's label); those an earlier report
# in the folder wrote (its summary.json names them) under other labels are removed, so that the
# folder only holds this run's results beside its summary.json.
RUN_FILES = ("jobs-{}.parquet", "series-{}.parquet")

CSS = ("body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
       "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
       "text-align:right}th{background:#f3f3f3}h2{border-bottom:1px solid #ddd}")


def _policy_section(r: SimResult, s: dict[str, Any]) -> str:
    ser = series_frame(r)
    t = ser["time"]
    cap = np.maximum(ser["capacity_up"].astype(np.float64), 1.0)
    parts = [f"<h2>Run {html.escape(r.label)}</h2>"]
    parts.append(svg_lines(t, {"utilisation": ser["busy"] / cap,
                               "fragmentation": ser["fragmentation"]},
                           title="Fleet utilisation and fragmentation", ylabel="fraction",
                           ymax=1.0))
    sectors = r.tenancy.sector_names
    ent = {n: s["sectors"][n]["entitlement_share"] for n in sectors}
    parts.append(svg_lines(t, {n: ser[f"share_{n}"] for n in sectors},
                           title="Share of busy accelerators by sector (dashed: entitlement)",
                           ylabel="share", ymax=1.0, dashed=ent))
    parts.append(svg_lines(t, {n: ser[f"pending_acc_{n}"] for n in sectors},
                           title="Accelerators waiting in the queue by sector",
                           ylabel="accelerators"))
    if "power_w" in ser:
        cap_w = s["fleet"].get("power_available_w")
        parts.append(svg_lines(
            t, {"draw": ser["power_w"] / 1000.0},
            title="Accelerator power draw" + (" (dashed: the site's cap, --site-power-mw / "
                                              "--pue)" if cap_w is not None else ""),
            ylabel="kW", dashed={"draw": cap_w / 1000.0} if cap_w is not None else None))
    rows = []
    for n in sectors:
        sec = s["sectors"][n]
        w = sec["wait_s"]
        rows.append([n, str(sec["jobs"]), _fmt_s(w["mean"]), _fmt_s(w["p50"]), _fmt_s(w["p90"]),
                     _fmt_s(w["p99"]), f"{sec['delivered_share']:.1%}",
                     f"{sec['entitlement_share']:.1%}",
                     _fmt_index(sec["fair_share_delivered"])])
    parts.append(_table(["sector", "jobs", "mean wait", "p50", "p90", "p99", "delivered share",
                         "entitlement", "fair share delivered"], rows))
    parts.append(_fairness_by_type(s))
    f = s["failures"]
    parts.append(f"<p>Node failures: {f['node_failures']}; lost work "
                 f"{f['lost_acc_h']:.1f} accelerator-hours (not charged); charged "
                 f"{f['charged_acc_h']:.1f} accelerator-hours. Preemptions: "
                 f"{s['jobs_metrics']['preemptions']}.</p>")
    return "".join(parts)


def _fairness_by_type(s: dict[str, Any]) -> str:
    """On a fleet of several accelerator types: ``fair_share_delivered`` per sector and type,
    and Jain's index of each type, beside the capacity-weighted figures (empty on one type,
    where they are the same numbers)."""
    jt = s["fairness"]["jain_sector_fair_share_by_type"]
    if len(jt) < 2:
        return ""
    by_type = s["fleet"]["by_type"]
    head = ["sector", *(f"{t} ({by_type.get(t, 0):,})" for t in jt), "weighted by capacity"]
    rows = [[n, *(_fmt_index(sec["fair_share_delivered_by_type"][t]) for t in jt),
             _fmt_index(sec["fair_share_delivered"])] for n, sec in s["sectors"].items()]
    rows.append(["Jain (sectors)", *(_fmt_index(jt[t]) for t in jt),
                 _fmt_index(s["fairness"]["jain_sector_fair_share"])])
    return ("<p>Fair share delivered by accelerator type (held / demand-capped fair share of "
            "that type; – where the sector never wanted the type). A sector's figure across "
            "types is a capacity-weighted mean, in which more than its share of one type can "
            "hide less than its share of another: read it by type.</p>" + _table(head, rows))


def _rows_section(summaries: dict[str, dict[str, Any]]) -> str:
    """The row account as in the command's output, one sentence per group of runs with the
    same account; with ``--max-jobs``, also a table of its two scopes: every row read, and
    the first N valid rows."""
    out = []
    lines = row_account_lines(summaries)
    for labels, line in lines:
        text = f"{', '.join(labels)}: {line}" if len(lines) > 1 else line[:1].upper() + line[1:]
        out.append(f"<p>{html.escape(text)}.</p>")
        rows = summaries[labels[0]]["rows"]
        first = rows.get("first_n")
        if not first:
            continue
        n = f"first {first['rows']:,} valid rows (--max-jobs)"
        table = [["rows", f"{rows['rows_read']:,}", f"{first['rows']:,}"]]
        for key, word in (("invalid", "invalid"), ("adjusted", "adjusted")):
            for k in sorted(set(rows.get(key) or {}) | set(first.get(key) or {})):
                a, b = (rows.get(key) or {}).get(k, 0), (first.get(key) or {}).get(k, 0)
                table.append([f"{word}: {_reason(k)}", f"{a:,}" if a else "–",
                              f"{b:,}" if b else "–"])
        table.append(["simulated", "–", f"{first['simulated']:,}"])
        out.append(_table(["", "every row read (file)", n], table))
    return "".join(out)


def _runs_header(results: list[SimResult]) -> str:
    """The report's opening lines: jobs, load factor and offered load of the run, or, for
    several runs (fleets differ in both), a table of them, one row per run; then the settings
    every run shares."""
    first = results[0]
    shared = (f"minimum cycle interval {first.config.min_cycle_s:g} s; seed "
              f"{first.config.seed}.")

    def load(r: SimResult) -> tuple[str, str]:
        return (f"{r.extra.get('load_factor', 1.0):.3g}",
                _fmt_share(r.extra.get("offered_load")))

    if len(results) == 1:
        factor, offered = load(first)
        return (f"<p>{len(first.jobs):,} jobs; load factor {factor} (offered load {offered}); "
                f"{shared}</p>")
    rows = [[r.label, f"{r.fleet.n_accelerators:,}", f"{len(r.jobs):,}", *load(r)]
            for r in results]
    return (_table(["run", "accelerators", "jobs", "load factor", "offered load"], rows)
            + f"<p>Every run: {shared}</p>")


def file_names(labels: list[str]) -> list[str]:
    """The ``<name>`` of each run's files: its label with characters other than letters,
    digits and ``@._-`` replaced by ``_``, and ``-2``, ``-3``… added where two labels would
    otherwise give the same name (one run's files must never overwrite another's)."""
    names: list[str] = []
    for label in labels:
        base = name = re.sub(r"[^A-Za-z0-9@._-]", "_", label)
        k = 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def jobs_table(r: SimResult) -> pa.Table:
    """The per-job columns as a table whose coded columns (type, project, sector, state) are
    dictionary-encoded with their names, so the file reads without this run's catalog."""
    cols: dict[str, Any] = dict(job_frame(r))
    names = {"type": list(r.fleet.catalog.names), "project": list(r.tenancy.project_names),
             "sector": list(r.tenancy.sector_names), "state": list(STATE_NAMES)}
    for col, labels in names.items():
        cols[col] = pa.DictionaryArray.from_arrays(
            pa.array(np.asarray(cols[col], dtype=np.int32)), pa.array(labels, pa.string()))
    return pa.table(cols)


def _earlier_run_files(out: Path) -> set[str]:
    """The run files an earlier report in ``out`` wrote, as its summary.json names them (none
    without a readable one: a file of the same pattern that no report wrote is the user's)."""
    try:  # (checked first: a FIFO or a device named summary.json would block or never end)
        data = json.loads(read_input_file(out / "summary.json", "summary.json", "report"))
    except (InvalidInput, ValueError):
        return set()
    if not isinstance(data, dict):
        return set()
    runs = [data] if "files" in data else list(data.values())
    pattern = re.compile(r"(jobs|series)-[^/\\]+\.parquet")
    return {name for run in runs if isinstance(run, dict) and isinstance(run.get("files"), dict)
            for name in run["files"].values()
            if isinstance(name, str) and pattern.fullmatch(name)}


def remove_stale_run_files(out: Path, keep: set[str]) -> list[Path]:
    """Remove the run files of an earlier report in ``out`` (under other policy or fleet
    labels) not named in ``keep``; nothing else is touched."""
    removed = []
    for name in sorted(_earlier_run_files(out) - keep):
        f = out / name
        if f.is_file() and not f.is_symlink():
            f.unlink()
            removed.append(f)
    return removed


def write_report(results: list[SimResult], out_dir: str | Path, *,
                 read: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Write ``jobs-<run>.parquet``, ``series-<run>.parquet``, ``summary.json`` and
    ``report.html`` under ``out_dir`` (``<run>`` from :func:`file_names`); returns the
    summaries by run label. ``read`` is the row account of reading the trace (see
    :func:`~aicc.sim.metrics.summarize`). Run files of an earlier report in the same folder
    that this one does not overwrite are removed (:func:`remove_stale_run_files`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, dict[str, Any]] = {}
    names = file_names([r.label for r in results])
    remove_stale_run_files(out, {p.format(n) for n in names for p in RUN_FILES})
    for r, name in zip(results, names, strict=True):
        s = summarize(r, read)
        s["files"] = {"jobs": RUN_FILES[0].format(name), "series": RUN_FILES[1].format(name)}
        summaries[r.label] = s
        pq.write_table(jobs_table(r), out / RUN_FILES[0].format(name))
        pq.write_table(pa.table(series_frame(r)), out / RUN_FILES[1].format(name))
    (out / "summary.json").write_text(json.dumps(
        summaries if len(summaries) > 1 else next(iter(summaries.values())), indent=2,
        default=float))
    first = results[0]
    extra = first.extra
    sizes = sorted({r.fleet.n_accelerators for r in results})
    title = f"aicc simulation: {extra.get('workload', 'workload')} on " \
            f"{' and '.join(f'{n:,}' for n in sizes)} accelerators"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append(_runs_header(results))
    parts.append(_rows_section(summaries))
    parts.append("<h2>Comparison</h2>")
    parts.append(_table(COMPARISON_HEAD, comparison_rows(summaries)))
    parts.append(f"<p>{html.escape(COMPARISON_NOTE)}</p>")
    sectors = first.tenancy.sector_names
    parts.append(svg_bars(sectors, {p: [s["sectors"][n]["wait_s"]["p90"] for n in sectors]
                                    for p, s in summaries.items()},
                          title="p90 wait by sector and policy", ylabel="wait", fmt=_fmt_s))
    for r in results:
        parts.append(_policy_section(r, summaries[r.label]))
    parts.append("</body></html>")
    (out / "report.html").write_text("".join(parts))
    return summaries
