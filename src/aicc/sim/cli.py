"""``aicc simulate``: replay a trace or a synthetic sector workload against a fleet and policy.

Registered in ``aicc/cli.py`` with one line; errors map to exit codes here, at the edge.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import sys
import tempfile
import tomllib
from collections.abc import Callable
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, get_args, get_origin

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.models import OptionInfo

from aicc.errors import EXIT_CODE, AiccError, InvalidInput, InvalidTrace, lookup
from aicc.fleet.arrays import FleetArrays
from aicc.scheduler.policy import POLICIES, Policy
from aicc.sim.forecast import (
    ARRIVAL_MODELS,
    DEFAULT_SAMPLES,
    MAX_HORIZON_H,
    MAX_SAMPLES,
    MAX_WINDOW_DAYS,
    MIN_HORIZON_H,
    MIN_WINDOW_DAYS,
)
from aicc.sim.jobs import parse_substitutions
from aicc.sim.loop import ST_FUTURE, SimConfig, SimResult
from aicc.sim.metrics import row_account_lines, summarize
from aicc.sim.report import (
    COMPARISON_HEAD,
    COMPARISON_NOTE,
    _fmt_s,
    comparison_rows,
    write_report,
)
from aicc.sim.scenario import (
    Scenario,
    apply_knobs,
    check_load_factor,
    check_number,
    check_target_load,
    failure_model,
    parse_fleet,
    run_scenario,
    with_policy,
)
from aicc.workload.readers import FORMATS, parse_columns, read_trace, resolve_trace
from aicc.workload.synthetic import generate, sector_mapping
from aicc.workload.tenants import load_mapping_file, map_tenants
from aicc.workload.trace import Workload

# no emoji codes: a run label or a file name such as ``f.toml:a:`` must print as written
out = Console(emoji=False)
err = Console(stderr=True, emoji=False)


def _first_duplicate(names: list[str]) -> str | None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            return n
        seen.add(n)
    return None


def _items(text: str, option: str, what: str) -> list[str]:
    """A comma-separated option value as its items, stripped; an empty item (``lab,``,
    ``fifo,,fairshare``) is refused naming ``option`` rather than skipped. An empty value gives
    no items (each caller says what is missing)."""
    if not text.strip():
        return []
    items = [x.strip() for x in text.split(",")]
    if not all(items):
        raise InvalidInput(f"{option}: empty item in {text!r}; separate the {what} with single "
                           "commas", field=option.lstrip("-"))
    return items


# the presets, and fair share with strict sector queueing (rule 1), to compare with it
SIM_POLICIES: dict[str, str | Policy] = {
    **{p: p for p in POLICIES}, "fairshare-strict": Policy(sector_queueing="strict")}


def _policies(policy: str | None, compare: str | None) -> list[str]:
    if policy is not None and compare is not None:
        raise InvalidInput("give --policy or --compare, not both: --compare runs each policy it "
                           "names (add the --policy one to the list)", field="policy")
    option = "--compare" if compare is not None else "--policy"
    field = option.lstrip("-")
    text = compare if compare is not None else (policy if policy is not None else "fairshare")
    names = _items(text, option, "policies")
    for p in names:
        if p not in SIM_POLICIES:
            raise InvalidInput(f"{option}: unknown policy {p!r}; known: "
                               f"{', '.join(sorted(SIM_POLICIES))}", field=field)
    if not names:
        raise InvalidInput(f"{option}: no policy given", field=field)
    dup = _first_duplicate(names)
    if dup is not None:
        raise InvalidInput(f"{option}: {dup} is named twice; each policy runs once",
                           field=field)
    return names


def _parse_fleet(spec: str) -> FleetArrays:
    """:func:`parse_fleet`, every error naming ``--fleet`` and the spec (the file, for a
    phases TOML): a missing file is "file not found", not an unknown fleet."""
    where = f"--fleet {spec}"
    try:
        return parse_fleet(spec)
    except InvalidInput as exc:
        if exc.message.startswith("--fleet"):
            raise
        message = exc.message.removeprefix(f"{spec}: ")  # the file is named once, here
        raise InvalidInput(f"{where}: {message}", field="fleet") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{where}: not valid TOML: {exc}", field="fleet") from None
    except (AttributeError, TypeError, KeyError):  # e.g. ``phase = 3``: not a table of tables
        raise InvalidInput(f"{where}: not a phases file: expected [phase.NAME] tables",
                           field="fleet") from None


def _fleets(fleet: str) -> list[tuple[str, FleetArrays]]:
    specs = _items(fleet, "--fleet", "fleets")
    if not specs:
        raise InvalidInput("--fleet: no fleet given", field="fleet")
    dup = _first_duplicate(specs)
    if dup is not None:
        raise InvalidInput(f"--fleet: {dup} is named twice; each fleet runs once", field="fleet")
    return [(spec, _parse_fleet(spec)) for spec in specs]


def _substitutions(text: str | None, fleets: list[tuple[str, FleetArrays]]) -> dict[str, str]:
    """``--substitute``, checked against every fleet before any run: a model given twice, an
    unknown type, or a type a fleet lacks, each exits 2 naming ``--substitute``, and so does
    an empty value or item."""
    if text is not None and not text.strip():
        raise InvalidInput("--substitute: empty; give MODEL=TYPE,… or leave the option out",
                           field="substitute")
    keys = [part.partition("=")[0].strip() for part in _items(text or "", "--substitute",
                                                               "MODEL=TYPE pairs")]
    dup = _first_duplicate(keys)
    if dup is not None:
        raise InvalidInput(f"--substitute: {dup} is given twice; give each model once",
                           field="substitute")
    subs = parse_substitutions(text)
    for model, tname in subs.items():
        for spec, fa in fleets:
            cat = fa.catalog
            if tname not in cat:
                raise InvalidInput(f"--substitute {model}={tname}: unknown accelerator type "
                                   f"{tname!r}; known: {', '.join(cat.names)}",
                                   field="substitute")
            if not fa.accelerators_by_type().get(tname):
                raise InvalidInput(f"--substitute {model}={tname}: fleet {spec} has no "
                                   f"{tname}", field="substitute")
    return subs


_REPEAT_HINTS = {"fleet": " (several fleets: one value, comma-separated)",
                 "compare": " (several policies: one value, comma-separated)",
                 "policy": " (several policies: --compare with a comma-separated list)",
                 "substitute": " (several models: one value, comma-separated)"}
_METAVARS = {str: "<str>", int: "<int>", float: "<float>", Path: "<path>"}


def once_each(func: Callable[..., None]) -> Callable[..., None]:
    """Refuse an option given more than once (``--policy fifo --policy fairshare``) instead of
    letting the last one win, for every option of ``func`` that takes a value. Click keeps only
    the last value of such an option and records nothing of the others (its parameter source
    says "command line" either way), so each is declared to Typer as ``list[T]`` (Click's
    ``multiple``, which keeps every occurrence) with its usual metavar, and unwrapped here:
    ``func`` still sees one value, or its default. A repeated option exits 2 with one line
    naming it. Flags (``--json``, ``--failures/--no-failures``) are left as they are."""
    sig = inspect.signature(func, eval_str=True)
    once: dict[str, tuple[str, Any]] = {}  # parameter -> (option as typed, default)
    params = []
    for p in sig.parameters.values():
        info = next((m for m in get_args(p.annotation)[1:] if isinstance(m, OptionInfo)), None)
        if get_origin(p.annotation) is not Annotated or info is None:
            params.append(p)
            continue
        inner = [a for a in get_args(get_args(p.annotation)[0]) if a is not type(None)]
        kind = inner[0] if inner else get_args(p.annotation)[0]
        if kind is bool:
            params.append(p)
            continue
        decl = info.default if info.default is not ... else (info.param_decls or ("",))[0]
        info = copy(info)
        info.metavar = info.metavar or _METAVARS.get(kind)
        once[p.name] = (str(decl), p.default)
        params.append(p.replace(
            annotation=Annotated[list[kind] | None, info],  # type: ignore[valid-type]
            default=None if p.default is None else [p.default]))

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> None:
        for name, (option, default) in once.items():
            values = kwargs.get(name)
            if values is not None and len(values) > 1:
                shown = ", ".join(_safe(str(v), 60) for v in values)
                times = "twice" if len(values) == 2 else f"{len(values)} times"
                _fail(f"{option} is given {times} ({shown}); give it once"
                      + _REPEAT_HINTS.get(name, ""), 2)
            kwargs[name] = values[0] if values else default
        return func(**kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


@once_each
def simulate(
    trace: Annotated[str | None, typer.Option(
        "--trace", help="trace file, or 'philly' / 'alibaba' (found under $AICC_TRACE_DIR, "
        "else shared/traces beside the repository root)")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="auto (the default), philly, alibaba, helios, columns (the --columns "
        "mapping); a trace only")] = None,
    columns: Annotated[str | None, typer.Option(
        "--columns", help="column mapping: submit=…,gpus=…, duration=… or end=… (with "
        "start=…, else submit), and optionally tenant=…,model=…")] = None,
    synthetic_days: Annotated[float | None, typer.Option(
        "--synthetic-days", help="use the synthetic sector workload over this many days")] = None,
    fleet: Annotated[str, typer.Option(
        "--fleet", help="phase (2028, 2030, lab), NxTYPE[@PER_NODE] (64xh100-sxm-80g) or a "
        "phases TOML file (FILE.toml:PHASE when it has several); several, comma-separated, to "
        "compare fleets")
    ] = "2028",
    policy: Annotated[str | None, typer.Option(
        "--policy", help="fifo, multifactor, fairshare (the default), fairshare-strict (strict "
        "sector queueing); not with --compare")
    ] = None,
    compare: Annotated[str | None, typer.Option(
        "--compare", help="comma-separated policies to run side by side")] = None,
    report: Annotated[str | None, typer.Option("--report", metavar="<path>",
                                               help="write the report here")] = None,
    load_factor: Annotated[float | None, typer.Option(
        "--load-factor", help="compress submission times by this factor")] = None,
    target_load: Annotated[float | None, typer.Option(
        "--target-load", help="a trace: compress time so the offered load is this fraction; "
        "--synthetic-days: submit this fraction of the fleet's capacity over the days "
        "(default 0.7)")] = None,
    substitute: Annotated[str | None, typer.Option(
        "--substitute", help="accelerator substitution: MODEL=TYPE,…,*=TYPE")] = None,
    tenant_map: Annotated[str | None, typer.Option(
        "--tenant-map", metavar="<path>",
        help="TOML mapping of trace tenants to sector/organization/project")] = None,
    max_jobs: Annotated[int | None, typer.Option(
        "--max-jobs", help="only the first N valid rows (in submit order), taken before jobs "
        "larger than the fleet are left out")] = None,
    min_cycle: Annotated[float, typer.Option("--min-cycle", help="min seconds between cycles")
                         ] = 60.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    until_days: Annotated[float | None, typer.Option(
        "--until-days", help="stop this many simulated days after the first submission (jobs "
        "still pending or running then are counted as not ended)")] = None,
    site_power_mw: Annotated[float | None, typer.Option(
        "--site-power-mw", help="site power cap in MW: the accelerators may draw it / --pue "
        "(default: no cap)")] = None,
    pue: Annotated[float | None, typer.Option(
        "--pue", help="facility overhead, 1 to 3 (default 1.2; needs --site-power-mw)")] = None,
    failures: Annotated[bool, typer.Option(
        "--failures/--no-failures", help="inject node failures (Llama 3 rate by default)")
    ] = False,
    failure_scale: Annotated[float | None, typer.Option(
        "--failure-scale", help="multiply the default failure rate (default 1; needs --failures)")
    ] = None,
    repair_hours: Annotated[float | None, typer.Option(
        "--repair-hours", help="hours a failed node is down (default 4; needs --failures)")
    ] = None,
    on_failure: Annotated[str | None, typer.Option(
        "--on-failure", help="requeue (default) or fail; needs --failures")] = None,
    checkpoint_min: Annotated[float | None, typer.Option(
        "--checkpoint-min", help="jobs checkpoint every N minutes (default: never; needs "
        "--failures)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="no progress bar (shown on stderr, on a terminal only)")] = False,
) -> None:
    """Simulate the scheduler on a workload; print a summary and optionally write a report.

    Give a workload: --trace (a file, philly or alibaba) or --synthetic-days N."""
    opts = dict(locals())
    del opts["report"], opts["as_json"], opts["quiet"]
    folder = None
    try:
        if report is not None and not report.strip():
            raise InvalidInput("--report: empty; give the folder to write the report in "
                               "(. for this one)", field="report")
        plan = _plan(**opts)  # every input checked, the workload read: nothing simulated yet
        if report is not None:
            folder = Path(report)
            _prepare_report_dir(folder)
        for line in plan.warnings:
            err.print(_safe(line), highlight=False, markup=False, soft_wrap=True)
        results = _execute(plan, quiet=quiet)
    except AiccError as exc:
        _fail(exc.message, lookup(EXIT_CODE, exc))
    except ValueError as exc:
        _fail(str(exc), 2)
    except OSError as exc:  # an input that could not be read, by whichever option it came
        _fail(f"{exc.filename or 'input'}: cannot read ({exc.strerror or exc})", 2)
    try:
        read = plan.workload.account.to_dict()  # reading the file, over every row read
        summaries = (write_report(results, folder, read=read) if folder is not None else
                     {r.label: summarize(r, read) for r in results})
    except OSError as exc:  # the report folder became unwritable during the run
        _fail(f"--report {report}: cannot write the report ({exc.strerror or exc})", 2)
    _warn_never_started(results)
    if as_json:
        sys.stdout.write(json.dumps(summaries, indent=2, default=float) + "\n")
        return
    sizes = sorted({r.fleet.n_accelerators for r in results})
    _print_runs(f"simulation: {results[0].extra.get('workload')} on "
                f"{' and '.join(f'{n:,}' for n in sizes)} accelerators",
                COMPARISON_HEAD, comparison_rows(summaries), caption=COMPARISON_NOTE)
    s0 = next(iter(summaries.values()))
    _print_runs("wait by sector (p50 / p90)", ["run", *s0["sectors"]],
                [[pol, *[f"{_fmt_s(v['wait_s']['p50'])} / {_fmt_s(v['wait_s']['p90'])}"
                         for v in s["sectors"].values()]] for pol, s in summaries.items()])
    for line in _row_account_lines(summaries):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    if folder is not None:
        out.print(f"report: {folder / 'report.html'}", highlight=False, soft_wrap=True)


def _row_account_lines(summaries: dict[str, dict]) -> list[str]:
    """One row account line (with ``--max-jobs``, the counts over every row read, then those
    among the first N, as in the summaries' ``rows`` and ``rows.first_n``), or, when the runs'
    accounts differ (fleets that leave out different jobs), one per group of runs with the
    same account, led by their labels."""
    lines = row_account_lines(summaries)
    if len(lines) == 1:
        return [lines[0][1]]
    return [f"{', '.join(labels)}: {line}" for labels, line in lines]


def _warn_never_started(results: list[SimResult]) -> None:
    """One line on stderr per run that ended with jobs never started (they would otherwise only
    show as a count in the table, and their waits are missing from every percentile)."""
    for r in results:
        # (a job not yet submitted when a run stopped, --until-days, never waited)
        never = int(((np.asarray(r.first_start) < 0) & (np.asarray(r.state) != ST_FUTURE)).sum())
        if never:
            err.print(f"warning: {r.label}: {never:,} of {len(r.jobs):,} jobs never started "
                      "(still waiting when the simulation ended; their waits are left out of "
                      "the figures)", highlight=False, markup=False, soft_wrap=True)


USAGE_EXAMPLES = """give a workload: --trace (a file, philly or alibaba) or --synthetic-days N; e.g.
  aicc simulate --trace philly --max-jobs 2000 --fleet 16xh100-sxm-80g      (seconds)
  aicc simulate --synthetic-days 2 --fleet lab --compare fifo,fairshare     (seconds)
  aicc simulate --trace philly --fleet 2028 --report out/    (the full trace: minutes)"""


def _safe(text: str, limit: int = 400) -> str:
    """One printable line: control characters escaped (a binary file's bytes must not reach
    the terminal), long text cut."""
    one = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text.replace("\n", " "))
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _print_table(t: Table) -> None:
    """As :func:`aicc.cli._print_table` (not imported: ``aicc.cli`` imports this module): on a
    terminal as wide as the terminal; piped or redirected as wide as the content, so a run's
    label and its figures are never cut."""
    if out.is_terminal:
        out.print(t)
    else:
        Console(width=100_000, emoji=False).print(t)


def _column_groups(head: list[str], rows: list[list[str]], width: int) -> list[list[int]]:
    """The columns after the first (the run) in groups whose table fits ``width``: a column
    takes its longest header word or cell, plus padding and a rule."""
    need = [max([len(w) for w in h.split()] + [len(r[i]) for r in rows]) + 3
            for i, h in enumerate(head)]
    groups: list[list[int]] = [[]]
    used = need[0] + 1
    for i in range(1, len(head)):
        if groups[-1] and used + need[i] > width:
            groups.append([])
            used = need[0] + 1
        groups[-1].append(i)
        used += need[i]
    return groups


def _print_runs(title: str, head: list[str], rows: list[list[str]], *,
                caption: str | None = None) -> None:
    """A table of one row per run. Piped or redirected it is as wide as its content (one line
    per run, never cut); on a terminal too narrow for it (80 columns) its columns are split
    into several tables, each led by the run, and a header wraps between its words, so no
    label and no figure is cut."""
    narrow = out.is_terminal
    groups = _column_groups(head, rows, out.width) if narrow else [list(range(1, len(head)))]
    for k, cols in enumerate(groups):
        t = Table(title=title if k == 0 else None,
                  caption=caption if k == len(groups) - 1 else None, caption_justify="left")
        for i in (0, *cols):
            justify = "left" if i == 0 else "right"
            if not narrow:
                t.add_column(head[i], justify=justify)
                continue
            widest = max([len(w) for w in head[i].split()] + [len(r[i]) for r in rows])
            t.add_column(_wrap_words(head[i], widest), justify=justify, width=widest)
        for r in rows:
            t.add_row(*(r[i] for i in (0, *cols)))
        _print_table(t)


def _wrap_words(text: str, width: int) -> str:
    """``text`` on as many lines as it takes to keep each within ``width`` (no word is cut:
    ``width`` is at least its longest word)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def _fail(message: str, code: int) -> NoReturn:
    err.print("[red]error:[/red] ", end="", highlight=False)
    text = message if message == USAGE_EXAMPLES else _safe(message)
    err.print(text, highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _prepare_report_dir(report: Path) -> None:
    """Create the report folder and prove it writable before minutes of simulation (and only
    once every input has been checked, so a refused command leaves no folder behind)."""
    try:
        report.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=report):
            pass
        for name in ("summary.json", "report.html"):  # (a FIFO would block the write)
            there = report / name
            if there.exists() and not there.is_file():
                raise InvalidInput(f"--report {report}: {name} there is not a regular file; "
                                   "remove it or give another folder", field="report")
    except OSError as exc:
        raise InvalidInput(f"--report {report}: cannot create or write this folder "
                           f"({exc.strerror or exc})", field="report") from None


@dataclass
class _Plan:
    """What :func:`_plan` checked and prepared: the workload and one scenario per run."""

    workload: Workload
    runs: list[tuple[str, str, Scenario]]  # (label, fleet, scenario): fleets outer
    max_jobs: int | None
    warnings: list[str]  # printed on stderr before the first run


def _power_cap(site_power_mw: float | None, pue: float | None) -> float:
    """The accelerators' power budget in W, as the live service's ``[energy]`` settings give
    it (``site_power_mw / pue``; rule 9); inf: no cap."""
    if site_power_mw is None:
        if pue is not None:
            raise InvalidInput("--pue applies only with --site-power-mw; add --site-power-mw or "
                               "drop it", field="pue")
        return math.inf
    check_number("--site-power-mw", site_power_mw, low=0.0, high=100_000.0)
    pue = 1.2 if pue is None else pue
    check_number("--pue", pue, low=1.0, low_open=False, high=3.0)
    return site_power_mw * 1e6 / pue


def _plan(*, trace, fmt, columns, synthetic_days, fleet, policy, compare, load_factor,
          target_load, substitute, tenant_map, max_jobs, min_cycle, seed, until_days,
          site_power_mw, pue,
          failures, failure_scale, repair_hours, on_failure, checkpoint_min) -> _Plan:
    """Check every option and read the workload, so that an input error is reported before any
    simulation runs (and before the report folder is made)."""
    fmt_given = fmt is not None
    fmt = "auto" if fmt is None else fmt
    if fmt not in FORMATS:  # checked whatever the workload: a typo is never ignored
        raise InvalidInput(f"--format: unknown trace format {fmt!r}; known: "
                           f"{', '.join(FORMATS)}", field="format")
    names = _policies(policy, compare)
    fleets = _fleets(fleet)
    fa = fleets[0][1]
    check_number("--min-cycle", min_cycle, low=0.0, low_open=False, high=86400.0)
    if load_factor is not None:
        check_load_factor(load_factor)
    if target_load is not None:
        check_target_load(target_load)
    if load_factor is not None and target_load is not None:
        raise InvalidInput("give --load-factor or --target-load, not both", field="load_factor")
    if seed < 0:
        raise InvalidInput(f"--seed must be at least 0, got {seed}", field="seed")
    power_w = _power_cap(site_power_mw, pue)
    if until_days is not None:
        check_number("--until-days", until_days, low=0.0, high=36_600.0)
    if max_jobs is not None and max_jobs < 1:
        raise InvalidInput(f"--max-jobs must be at least 1, got {max_jobs}", field="max_jobs")
    if synthetic_days is not None:
        check_number("--synthetic-days", synthetic_days, low=0.0, high=3660.0)
    if trace is not None and not trace.strip():
        raise InvalidInput("--trace: empty; give a trace file, philly or alibaba", field="trace")
    if synthetic_days is not None and trace is not None:
        raise InvalidInput("give --trace or --synthetic-days, not both", field="trace")
    if synthetic_days is None and trace is None:
        raise InvalidInput(USAGE_EXAMPLES, field="trace")
    if synthetic_days is not None and (columns is not None or fmt_given):
        opt = "--columns" if columns is not None else f"--format {fmt}"
        raise InvalidInput(f"{opt} reads a trace; --synthetic-days generates its workload: "
                           f"drop {opt.split()[0]} or give --trace", field=opt[2:].split()[0])
    given = {"--failure-scale": failure_scale, "--repair-hours": repair_hours,
             "--on-failure": on_failure, "--checkpoint-min": checkpoint_min}
    fm = failure_model(scale=1.0 if failure_scale is None else failure_scale,
                       repair_hours=4.0 if repair_hours is None else repair_hours,
                       on_failure="requeue" if on_failure is None else on_failure,
                       checkpoint_min=checkpoint_min)
    orphans = [k for k, v in given.items() if v is not None]
    if not failures and orphans:
        them = "them" if len(orphans) > 1 else "it"
        raise InvalidInput(f"{' and '.join(orphans)} "
                           f"{'apply' if len(orphans) > 1 else 'applies'} only with --failures; "
                           f"add --failures or drop {them}",
                           field=orphans[0].lstrip("-").replace("-", "_"))
    subs = _substitutions(substitute, fleets)
    notes: list[str] = []  # warnings for stderr
    # the file replaces the synthetic sector mapping too; read and checked before the workload
    mapping = load_mapping_file(tenant_map) if tenant_map is not None else None
    if synthetic_days is not None:
        # one workload for every fleet: sized for the first (so larger fleets see less load);
        # the target is the work submitted over the days (a higher target: the same jobs and
        # more), and no gang is larger than the smallest type's capacity (none is dropped)
        by_type = np.bincount(fa.type_idx, weights=fa.capacity)
        try:
            w = generate(days=synthetic_days, accelerators=fa.n_accelerators,
                         load=target_load or 0.7, seed=seed,
                         max_gpus=int(by_type[by_type > 0].min()), fit_load=True)
        except InvalidInput as exc:
            if exc.field != "synthetic_jobs":
                raise
            raise InvalidInput(f"--synthetic-days {synthetic_days:g} --target-load "
                               f"{target_load or 0.7:g}: "
                               f"{exc.message.removeprefix('synthetic workload: ')}",
                               field="synthetic_days") from None
        if len(w) == 0:
            raise InvalidInput(f"--synthetic-days {synthetic_days:g}: no job was generated at "
                               f"--target-load {target_load or 0.7:g} on {fa.n_accelerators:,} "
                               "accelerators; give more days or a higher target",
                               field="synthetic_days")
        want, got = target_load or 0.7, w.offered_load(fa.n_accelerators)
        if abs(got - want) > 0.1 * want:  # a few large jobs make the load coarse
            notes.append(f"warning: --target-load {want:g}: the synthetic workload offers "
                         f"{got:.3g} on {fa.n_accelerators:,} accelerators (whole jobs; a long "
                         "run or another --seed comes closer)")
        target_load = None
        mapping = mapping or sector_mapping(w)
    else:
        w = _read_trace(trace, fmt, parse_columns(columns) if columns is not None else None)
    config = SimConfig(min_cycle_s=min_cycle, seed=seed, failures=fm if failures else None,
                       power_available_w=power_w,
                       span_s=math.inf if until_days is None else until_days * 86400.0)
    runs: list[tuple[str, str, Scenario]] = []
    for k, (spec, f) in enumerate(fleets):
        sc = Scenario(fleet=f, config=config, load_factor=load_factor, target_load=target_load,
                      substitute=subs, tenant_map=mapping, max_jobs=max_jobs)
        try:  # a --target-load out of reach for any fleet is refused before the first run
            knobbed, _ = apply_knobs(w, sc)
        except InvalidInput as exc:
            if exc.field == "trace" and trace is not None:  # a trace with no valid row
                raise _naming_trace(exc, trace, w.source) from None
            if exc.field == "fleet":  # no job fits it
                raise InvalidInput(f"--fleet {spec}: {exc.message}", field="fleet") from None
            if len(fleets) == 1 or exc.field != "target_load":
                raise
            raise InvalidInput(f"fleet {spec}: {exc.message}", field="target_load") from None
        if k == 0:  # the tenants are the same for every fleet: map them once
            try:
                map_tenants(knobbed.tenants, len(f.catalog), mapping=mapping)
            except AiccError as exc:
                if tenant_map is None:
                    raise
                raise type(exc)(f"--tenant-map {tenant_map}: "
                                f"{exc.message.removeprefix('tenant mapping: ')}",
                                field="tenant_map") from None
        for name in names:
            label = name if len(fleets) == 1 else f"{name}@{spec}"
            runs.append((label, spec, with_policy(sc, SIM_POLICIES[name])))
    return _Plan(workload=w, runs=runs, max_jobs=max_jobs,
                 warnings=notes + _unmatched_substitutions(subs, w))


def _unmatched_substitutions(subs: dict[str, str], w: Workload) -> list[str]:
    """``--substitute`` models that no job of the workload has: refused when it names no model
    at all (no model column, a synthetic workload: only ``*=TYPE`` applies), else one warning
    each, naming the model and the workload's models (a case mismatch, ``v100`` for
    ``V100``, would otherwise substitute nothing, silently)."""
    named = [m for m in subs if m != "*"]
    if named and not w.models:
        what = ("a synthetic workload" if w.source == "" else
                "the trace has no GPU model column, or every cell of it is empty")
        raise InvalidInput(f"--substitute {named[0]}={subs[named[0]]}: the workload names no GPU "
                           f"model ({what}); only *=TYPE applies to it", field="substitute")
    known = {m.lower(): m for m in w.models}
    out = []
    for m in named:
        if m in w.models:
            continue
        near = known.get(m.lower())
        hint = (f"did you mean {near}?" if near else
                f"its models: {', '.join(w.models[:10])}{' …' if len(w.models) > 10 else ''}")
        out.append(f"warning: --substitute {m}={subs[m]}: no job of the workload has model "
                   f"{m!r}, so it substitutes nothing ({hint})")
    return out


def _naming_trace(exc: InvalidInput, trace: str, path: str | Path | None = None
                  ) -> InvalidInput:
    """``exc`` (an error in the trace) with its message naming ``--trace`` and the file: a
    message that starts with the trace as given or with its file gets ``--trace`` before it,
    any other gets ``--trace TRACE:``."""
    message = exc.message
    if not message.startswith("--trace"):
        named = [str(x) for x in (trace, Path(trace), path) if x is not None and str(x)]
        if any(message.startswith((f"{n}:", f"{n},")) for n in named):
            message = f"--trace {message}"
        else:
            message = f"--trace {trace}: {message}"
    return type(exc)(message, field="trace", **exc.details)


def _read_trace(trace: str, fmt: str, columns: dict[str, str] | None) -> Workload:
    """:func:`read_trace`, every error in the trace (the file missing, a folder, unreadable,
    binary or malformed) naming ``--trace`` and the file; ``--format`` and ``--columns``
    errors name their own option."""
    path: Path | None = None
    try:
        path = resolve_trace(trace)
        return read_trace(path, fmt=fmt, columns=columns)
    except InvalidInput as exc:
        if exc.field != "trace":
            raise
        raise _naming_trace(exc, trace, path) from None
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InvalidTrace(f"--trace {path or trace}: cannot read ({detail})",
                           field="trace") from None


def _execute(plan: _Plan, *, quiet: bool) -> list[SimResult]:
    w = plan.workload
    results = []
    for label, spec, scn in plan.runs:
        if quiet or not err.is_terminal:  # (a bar off a terminal leaves blank lines)
            results.append(run_scenario(w, scn))
            results[-1].extra |= {"label": label, "fleet": spec}
            continue
        with Progress(TextColumn(f"[bold]{label}[/bold]"), BarColumn(),
                      TextColumn("{task.completed:,.0f}/{task.total:,.0f} jobs ended"),
                      TextColumn("day {task.fields[day]:.0f}"), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task(label, total=min(len(w), plan.max_jobs or len(w)), day=0)

            def tick(t: float, ended: int, task=task, bar=bar) -> None:
                bar.update(task, completed=ended, day=t / 86400.0)

            results.append(run_scenario(w, scn, progress=tick))
            results[-1].extra |= {"label": label, "fleet": spec}
    return results


# the forecast's query parameters, as jobs forecast's options name them in an error
FORECAST_OPTIONS = {"horizon_hours": "--horizon-hours", "arrivals": "--arrivals",
                    "samples": "--samples", "window_days": "--window-days", "seed": "--seed"}


def jobs_forecast(
    job_id: Annotated[int, typer.Argument(min=1)],
    horizon_hours: Annotated[float, typer.Option(
        "--horizon-hours", help="how far to look ahead (0.01 ≤ h ≤ 8760)")] = 720.0,
    arrivals: Annotated[str, typer.Option(
        "--arrivals", help="future submissions: none (the default) or history (the last "
                           "--window-days of jobs again)")] = "none",
    samples: Annotated[int, typer.Option("--samples", min=1, max=MAX_SAMPLES,
                                         help="arrival samples (history)")] = DEFAULT_SAMPLES,
    window_days: Annotated[float, typer.Option("--window-days",
                                               help="the history's window (1 ≤ d ≤ 90)")] = 7.0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="the samples' generator")] = 0,
    url: Annotated[str, typer.Option("--url", envvar="AICC_URL", help="API base URL")
                   ] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option("--token", envvar="AICC_TOKEN",
                                              help="bearer API token")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")
                       ] = False,
) -> None:
    """Predicted start time of a pending job (a simulation of the live queue), with the range
    over the arrival samples."""
    from aicc.cli import Client, _emit  # the API client of the command line

    try:  # the route's own bounds, checked here so that NaN is named as such
        check_number("--horizon-hours", horizon_hours, low=MIN_HORIZON_H, low_open=False,
                     high=MAX_HORIZON_H)
        check_number("--window-days", window_days, low=MIN_WINDOW_DAYS, low_open=False,
                     high=MAX_WINDOW_DAYS)
        if arrivals not in ARRIVAL_MODELS:
            raise InvalidInput(f"--arrivals: {arrivals!r} is not a model; give "
                               f"{' or '.join(ARRIVAL_MODELS)}", field="arrivals")
    except InvalidInput as exc:
        _fail(exc.message, 2)
    client = Client(url, token)
    data = client.call("GET", f"/v1/jobs/{job_id}/forecast",
                       params={"horizon_hours": horizon_hours, "arrivals": arrivals,
                               "samples": samples, "window_days": window_days, "seed": seed},
                       options=FORECAST_OPTIONS,
                       timeout=300.0)  # history samples of a long wait take a while
    _emit(data if as_json else _readable_forecast(data), as_json, [],
          title=f"forecast for job {job_id}")


def _readable_forecast(data: dict) -> dict:
    """The answer as a person reads it: the wait in s/min/h/d, the horizon in hours, a start
    beyond the horizon said in words, the range as one line; the raw figures stay in --json."""
    out = {k: data[k] for k in ("job_id", "state", "policy", "now") if k in data}
    horizon_h = float(data.get("horizon_s") or 0.0) / 3600.0
    if data.get("basis") == "running":
        out["started"] = data.get("predicted_start")
    elif data.get("predicted_start") is None:
        out["predicted_start"] = f"not within the horizon ({horizon_h:g} h)"
        if data.get("held_message"):
            out["held at the horizon"] = data["held_message"]
    else:
        out["predicted_start"] = data["predicted_start"]
        out["predicted_wait"] = _fmt_s(float(data["predicted_wait_s"]))
    if data.get("arrivals") == "history" and data.get("predicted_start") is not None:
        low, high = data.get("predicted_start_low"), data.get("predicted_start_high")
        out["range (p10–p90)"] = f"{low} – {high or f'beyond {horizon_h:g} h'}"
    for k in ("arrivals", "samples", "future_jobs", "running_jobs", "pending_jobs"):
        if k in data:
            out[k] = data[k]
    if horizon_h:
        out["horizon"] = f"{horizon_h:g} h"
    out["basis"] = data.get("basis")
    return out
