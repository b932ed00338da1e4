"""A workload as arrays, one row per job, whatever trace or generator it came from.

Readers never drop a row silently: every row that cannot become a job is counted under a reason
(``invalid``) with the first few line numbers, and every row that was kept but changed (a
sub-second runtime raised to one second, a fractional GPU share rounded up) is counted under
``adjusted``. Both appear in the simulator's summary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from aicc.errors import InvalidTrace

# The shortest runtime a job is given: a scheduler needs a non-zero interval between a start
# and a finish, and real launchers take about a second to start a process anyway.
MIN_RUNTIME_S = 1.0
# The longest runtime a job may have: ten years (3,653 days). A longer one is a unit mistake or
# a corrupt value (``1e300``), not a job; it is counted as ``runtime_over_10_years``.
MAX_RUNTIME_S = 3653 * 86400.0
# Submission times (epoch seconds, or seconds from any origin) must lie within the years 1 to
# 9999 of the calendar (what a timestamp can say), else ``submit_out_of_range``.
MAX_ABS_SUBMIT_S = 253402300799.0  # 9999-12-31T23:59:59Z
# A job's GPU count must fit the simulator's 32-bit counts, else ``too_many_gpus`` (no fleet
# comes near: the largest custom fleet holds 100,000 × 1,024).
MAX_GPUS = float(2**31 - 1)
EXAMPLE_LINES = 5
# The most distinct GPU models a workload may name: a job's model is an int16 index. More is
# no model column (a job or host id given as ``model=``), refused rather than wrapped.
MAX_MODELS = 2**15 - 1
# The changes reading a file makes to a row it keeps, each a bit of ``Workload.adjust_bits``, so
# that those among the first N rows (``--max-jobs``) can be counted too.
READ_ADJUSTMENTS = ("missing_tenant_as_default", "subsecond_runtime_raised_to_1s",
                    "gpu_share_rounded_up_to_1")


@dataclass
class RowAccount:
    """Counts of invalid and adjusted rows by reason, with example line numbers."""

    rows_read: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    adjusted: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    # What a run kept: the jobs simulated (None until mapped onto a fleet), and the --max-jobs
    # that cut the valid rows (None when nothing was cut), so "rows read" is never mistaken
    # for the number of jobs simulated.
    simulated: int | None = None
    max_jobs: int | None = None
    # Under a --max-jobs cut: the adjustments reading the file made among the first N valid
    # rows (``adjusted`` counts them over every row read)
    first_n_adjusted: Counter[str] | None = None

    def copy(self) -> RowAccount:
        """An independent copy (a workload's account is shared by its subsets)."""
        return RowAccount(self.rows_read, self.invalid.copy(), self.adjusted.copy(),
                          {k: list(v) for k, v in self.examples.items()}, self.simulated,
                          self.max_jobs,
                          None if self.first_n_adjusted is None else self.first_n_adjusted.copy())

    def reject(self, reason: str, mask: np.ndarray, lines: np.ndarray | None) -> None:
        """Count the rows in ``mask`` as invalid for ``reason`` (``lines`` are file lines; None
        for a generated workload, which has no file: then only the count is kept). The examples
        are the first lines in the file, whatever order the rows are in (a workload's rows are
        in submit order)."""
        n = int(mask.sum())
        if n:
            self.invalid[reason] += n
            if lines is None:
                return
            ex = self.examples.setdefault(reason, [])
            ex.extend(int(x) for x in np.sort(lines[mask])[: EXAMPLE_LINES - len(ex)])

    def adjust(self, reason: str, n: int) -> None:
        if n:
            self.adjusted[reason] += int(n)

    @property
    def n_invalid(self) -> int:
        return sum(self.invalid.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "rows_read": self.rows_read,
            "invalid": dict(sorted(self.invalid.items())),
            "invalid_total": self.n_invalid,
            "adjusted": dict(sorted(self.adjusted.items())),
            "example_lines": {k: v for k, v in sorted(self.examples.items())},
            "simulated": self.simulated,
            "max_jobs": self.max_jobs,
            **({} if self.first_n_adjusted is None else
               {"first_n_adjusted": dict(sorted(self.first_n_adjusted.items()))}),
        }


@dataclass
class Workload:
    """Jobs sorted by submit time. ``submit_s`` is seconds after ``origin`` (epoch seconds of the
    trace's first submission, or 0 for generated workloads)."""

    name: str
    submit_s: np.ndarray  # float64
    runtime_s: np.ndarray  # float64, >= MIN_RUNTIME_S
    gpus: np.ndarray  # int32, >= 1
    tenant: np.ndarray  # int32, index into tenants
    tenants: list[str]
    model: np.ndarray  # int16, index into models; -1 = any accelerator type
    models: list[str] = field(default_factory=list)
    job_class: np.ndarray | None = None  # int8 JobClass, None = all batch
    preemptible: np.ndarray | None = None  # bool, None = none preemptible
    origin: float = 0.0
    account: RowAccount = field(default_factory=RowAccount)
    # The file each job came from and its line there (None for a generated workload), so rows
    # dropped later (``larger_than_fleet``) are reported with their lines like the others.
    source: str = ""
    lines: np.ndarray | None = None  # int64, file line of each job
    # A generated workload's submission horizon: its jobs were submitted over [0, horizon_s)
    # (the stated days), and its offered load is the work submitted over that horizon. None
    # for a trace, whose offered load is over its window (``window_s``).
    horizon_s: float | None = None
    # Per job, the READ_ADJUSTMENTS reading its row made (bit k: READ_ADJUSTMENTS[k]); None when
    # none was made (a generated workload)
    adjust_bits: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.submit_s)

    @property
    def span_s(self) -> float:
        """Time from the first to the last submission."""
        return float(self.submit_s[-1] - self.submit_s[0]) if len(self) else 0.0

    @property
    def gpu_seconds(self) -> float:
        return float(np.dot(self.gpus.astype(np.float64), self.runtime_s))

    def take(self, idx: np.ndarray) -> Workload:
        """A subset of rows (kept in submit order), sharing the name tables."""
        idx = np.sort(np.asarray(idx))
        return Workload(
            name=self.name,
            submit_s=self.submit_s[idx],
            runtime_s=self.runtime_s[idx],
            gpus=self.gpus[idx],
            tenant=self.tenant[idx],
            tenants=self.tenants,
            model=self.model[idx],
            models=self.models,
            job_class=None if self.job_class is None else self.job_class[idx],
            preemptible=None if self.preemptible is None else self.preemptible[idx],
            origin=self.origin,
            account=self.account,
            source=self.source,
            lines=None if self.lines is None else self.lines[idx],
            horizon_s=self.horizon_s,
            adjust_bits=None if self.adjust_bits is None else self.adjust_bits[idx],
        )

    def read_adjustments(self) -> Counter[str]:
        """The adjustments reading the file made to these jobs' rows, by reason."""
        out: Counter[str] = Counter()
        if self.adjust_bits is not None:
            for k, reason in enumerate(READ_ADJUSTMENTS):
                n = int(((self.adjust_bits >> k) & 1).sum())
                if n:
                    out[reason] = n
        return out

    def head(self, n: int) -> Workload:
        """The first ``n`` jobs; a generated workload's horizon ends at the last of them."""
        w = self.take(np.arange(min(n, len(self))))
        if w.horizon_s is not None and len(w) < len(self):
            w.horizon_s = float(w.submit_s[-1]) if len(w) else 0.0
        return w

    def compressed(self, factor: float) -> Workload:
        """Submissions ``factor`` times denser (runtimes unchanged): a higher offered load."""
        if not (np.isfinite(factor) and factor > 0):
            raise ValueError("load factor must be a positive finite number")
        w = self.take(np.arange(len(self)))
        w.submit_s = (self.submit_s - self.submit_s[0]) / factor
        if w.horizon_s is not None and len(self):
            w.horizon_s = (w.horizon_s - float(self.submit_s[0])) / factor
        return w

    def window_s(self, factor: float = 1.0) -> float:
        """Time from the first submission to the last end if no job waited, with submissions
        ``factor`` times denser: the shortest time the work can be served in."""
        if not len(self):
            return 0.0
        return float(np.max((self.submit_s - self.submit_s[0]) / factor + self.runtime_s))

    def offered_load(self, accelerators: int) -> float:
        """GPU-seconds as a fraction of ``accelerators`` over a time: for a trace its window
        (``window_s``: the submission span plus the runtime tail; dividing by the submission
        span alone overstates the load whenever jobs run long past the last submission), for
        a generated workload its horizon (``horizon_s``: the days it was generated over, so
        that the load is the rate of work submitted, whatever the tail of its longest job)."""
        span = self.horizon_s if self.horizon_s is not None else self.window_s()
        return self.gpu_seconds / (max(span, 1.0) * max(accelerators, 1))


def build(
    name: str,
    *,
    submit: np.ndarray,
    runtime: np.ndarray,
    gpus: np.ndarray,
    tenant_labels: np.ndarray,
    lines: np.ndarray,
    account: RowAccount,
    model_labels: np.ndarray | None = None,
    job_class: np.ndarray | None = None,
    preemptible: np.ndarray | None = None,
    excluded: np.ndarray | None = None,
    source: str = "",
    model_column: str = "model",
) -> Workload:
    """Validate parsed columns row by row (NaN = missing or unparseable), count what is dropped
    and adjusted, and return the surviving jobs sorted by submission. ``excluded`` rows were
    already counted by the reader (e.g. an unparseable value) and are left out uncounted.
    ``source`` names the file and ``model_column`` the column of ``model_labels`` (for
    messages)."""
    account.rows_read = len(submit)
    keep = np.ones(len(submit), dtype=bool) if excluded is None else ~excluded

    def reject(reason: str, bad: np.ndarray) -> None:
        nonlocal keep
        bad = bad & keep
        account.reject(reason, bad, lines)
        keep &= ~bad

    reject("missing_submit", ~np.isfinite(submit))
    reject("missing_runtime", ~np.isfinite(runtime))
    reject("missing_gpus", ~np.isfinite(gpus))
    with np.errstate(invalid="ignore"):
        reject("submit_out_of_range", np.abs(submit) > MAX_ABS_SUBMIT_S)
        reject("negative_runtime", runtime < 0)
        reject("runtime_over_10_years", runtime > MAX_RUNTIME_S)
        reject("zero_gpus", gpus == 0)
        reject("negative_gpus", gpus < 0)
        reject("fractional_gpus", (gpus > 1) & (gpus != np.floor(gpus)))
        reject("too_many_gpus", gpus > MAX_GPUS)
    labels = np.asarray(tenant_labels, dtype=object)
    missing_tenant = np.array([x is None or x == "" for x in labels], dtype=bool)
    if missing_tenant.any():
        labels = labels.copy()
        labels[missing_tenant] = "default"
        account.adjust("missing_tenant_as_default", int((missing_tenant & keep).sum()))
    idx = np.flatnonzero(keep)
    sub = submit[idx]
    order = np.argsort(sub, kind="stable")
    idx = idx[order]
    run = runtime[idx].astype(np.float64)
    raised = run < MIN_RUNTIME_S
    account.adjust("subsecond_runtime_raised_to_1s", int(raised.sum()))
    run = np.maximum(run, MIN_RUNTIME_S)
    g = gpus[idx]
    share = (g > 0) & (g < 1)
    account.adjust("gpu_share_rounded_up_to_1", int(share.sum()))
    g = np.ceil(g).astype(np.int32)
    bits = np.zeros(len(idx), dtype=np.uint8)
    for k, mask in enumerate((missing_tenant[idx], raised, share)):
        bits |= mask.astype(np.uint8) << k
    tenants, tenant_idx = np.unique(labels[idx].astype(str), return_inverse=True)
    if model_labels is not None:
        # a null (a Parquet null cell) is no model, as an empty CSV cell is, not "None"
        ml = np.array(["" if m is None else str(m)
                       for m in np.asarray(model_labels, dtype=object)[idx]], dtype=str)
        models, model_idx = np.unique(ml, return_inverse=True)
        names = [str(m) for m in models]
        if "" in names:
            blank = names.index("")
            model_idx = np.where(model_idx == blank, -1, model_idx - (model_idx > blank))
            names.remove("")
        if len(names) > MAX_MODELS:  # an index past int16 would wrap to another model's
            raise InvalidTrace(
                f"{source}: column {model_column} has {len(names):,} distinct values, at most "
                f"{MAX_MODELS:,} GPU models; is it a model column?", field="trace", line=None)
        model_arr = model_idx.astype(np.int16)
    else:
        names = []
        model_arr = np.full(len(idx), -1, dtype=np.int16)
    origin = float(sub[order[0]]) if len(idx) else 0.0
    return Workload(
        name=name,
        submit_s=submit[idx].astype(np.float64) - origin,
        runtime_s=run,
        gpus=g,
        tenant=tenant_idx.astype(np.int32),
        tenants=[str(t) for t in tenants],
        model=model_arr,
        models=names,
        job_class=None if job_class is None else np.asarray(job_class, dtype=np.int8)[idx],
        preemptible=None if preemptible is None else np.asarray(preemptible, dtype=bool)[idx],
        origin=origin,
        account=account,
        source=source,
        lines=np.asarray(lines, dtype=np.int64)[idx],
        adjust_bits=bits if bits.any() else None,
    )
