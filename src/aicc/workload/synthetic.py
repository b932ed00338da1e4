"""A seeded synthetic workload for the three sectors, with daily and weekly cycles.

Each sector submits jobs as a non-homogeneous Poisson process (thinning): a base rate times a
daily profile (a cosine peaking at ``peak_hour``) times a weekday/weekend factor. Sizes come from
a discrete distribution over power-of-two gangs; runtimes are log-normal (median, σ), capped.
The base rates are solved so that each sector's mean demand is ``load`` × its entitlement share
× the fleet's accelerators.

The offered load of a generated workload is the rate of work submitted: its accelerator-seconds
over the days it was generated over (``Workload.horizon_s``), as a fraction of the fleet. Jobs
submitted near the end run on after it (up to the 7-day cap), so a short run's measured
utilisation, which counts that tail, falls short of it. ``fit_load=True`` (what ``aicc
simulate`` uses) makes the workload a function of the load that grows with it: candidate jobs
are drawn in blocks of one unit of load (block ``k`` from the seed ``[seed, k]``), each with
the load from which thinning keeps it, and the workload for ``load`` takes of each sector the
prefix in that order whose work is closest to the sector's share of ``load`` × accelerators ×
horizon (to one job). A higher load
therefore gives the same jobs and more, never fewer or others. ``max_gpus`` clips gangs to what
the fleet can hold, so that a small fleet is not offered work it must drop as larger than the
fleet. Why these defaults: ``docs/simulation.md`` (section "Synthetic workload") compares them
with the Philly and Alibaba traces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from aicc.errors import InvalidInput
from aicc.scheduler.snapshot import JobClass
from aicc.store.seed import DEFAULT_SECTOR_SHARES
from aicc.workload.trace import MIN_RUNTIME_S, RowAccount, Workload

DAY = 86400.0
WEEK = 7 * DAY


@dataclass(frozen=True)
class SectorProfile:
    sizes: tuple[int, ...]
    size_p: tuple[float, ...]
    median_s: float
    sigma: float
    cap_s: float = 7 * DAY
    daily_amplitude: float = 0.4  # rate swings ±amplitude around the mean over a day
    peak_hour: float = 14.0
    weekend_factor: float = 0.6  # weekend rate relative to weekdays
    tenants: int = 20  # organizations (each its own tenant) in the sector
    preemptible_p: float = 0.0  # share of jobs submitted as flexible, preemptible

    def mean_acc_s(self) -> float:
        """Expected accelerator-seconds per job: the mean size times the mean of the runtime as
        drawn (log-normal, clipped to [MIN_RUNTIME_S, cap_s]), exactly."""
        d = clipped_lognormal_mean(self.median_s, self.sigma, MIN_RUNTIME_S, self.cap_s)
        return float(np.dot(self.sizes, self.size_p) * d)


def clipped_lognormal_mean(median: float, sigma: float, lo: float, hi: float) -> float:
    """E[min(max(X, lo), hi)] for X = median · exp(sigma · Z), Z standard normal: what a
    generator that clips its log-normal runtimes offers per job, without sampling error."""
    if sigma <= 0:  # no spread: the median itself
        return min(max(median, lo), hi)

    def cdf(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    a, b = math.log(lo / median) / sigma, math.log(hi / median) / sigma
    inside = median * math.exp(sigma**2 / 2) * (cdf(b - sigma) - cdf(a - sigma))
    return lo * cdf(a) + hi * (1.0 - cdf(b)) + inside


# Research resembles Philly (a university/lab cluster): many small jobs, a heavy log-normal
# tail (Philly: median 1,144 s, mean 13,136 s, i.e. σ ≈ 2.2) but larger gangs at national scale.
# Industry trains large models: 8 to 1,024 accelerators, runs of many hours.
# Public: agencies' fine-tuning and batch inference, strongly diurnal (office hours).
DEFAULT_PROFILES: dict[str, SectorProfile] = {
    "industry": SectorProfile(
        sizes=(8, 16, 32, 64, 128, 256, 512, 1024),
        size_p=(0.25, 0.20, 0.20, 0.15, 0.10, 0.06, 0.03, 0.01),
        median_s=8 * 3600.0, sigma=1.0, daily_amplitude=0.25, weekend_factor=0.8,
        tenants=30, preemptible_p=0.1),
    "research": SectorProfile(
        sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        size_p=(0.25, 0.10, 0.15, 0.20, 0.12, 0.09, 0.05, 0.03, 0.01),
        median_s=2 * 3600.0, sigma=2.0, daily_amplitude=0.3, weekend_factor=0.52,
        tenants=60, preemptible_p=0.2),
    "public": SectorProfile(
        sizes=(1, 2, 4, 8, 16, 32, 64, 128),
        size_p=(0.10, 0.10, 0.15, 0.25, 0.15, 0.12, 0.09, 0.04),
        median_s=10 * 3600.0, sigma=1.2, daily_amplitude=0.6, weekend_factor=0.4,
        tenants=40, preemptible_p=0.05),
}


def _rate_shape(t: np.ndarray, p: SectorProfile) -> np.ndarray:
    """Relative arrival rate at times t (seconds from a Monday 00:00), mean ≈ 1 over a week."""
    hour = (t % DAY) / 3600.0
    daily = 1.0 + p.daily_amplitude * np.cos(2 * np.pi * (hour - p.peak_hour) / 24.0)
    weekend = ((t % WEEK) >= 5 * DAY)
    wk = np.where(weekend, p.weekend_factor, 1.0)
    return daily * wk / ((5 + 2 * p.weekend_factor) / 7)


def generate(
    *,
    days: float,
    accelerators: int,
    load: float = 0.7,
    seed: int = 0,
    shares: dict[str, float] | None = None,
    profiles: dict[str, SectorProfile] | None = None,
    max_gpus: int | None = None,
    fit_load: bool = False,
) -> Workload:
    """Jobs over ``days`` offering ``load`` × ``accelerators`` on average, split by ``shares``:
    a Poisson draw at that mean rate, or, with ``fit_load``, the nested workload whose work over
    the days is ``load`` × ``accelerators`` × days to one job (see the module docstring).
    ``max_gpus`` clips each sector's gang sizes (their probabilities merge into the largest
    size that fits)."""
    # written so that NaN fails: it compares false with everything
    if not (np.isfinite(days) and 0 < days <= 3660) or accelerators <= 0 \
            or not (np.isfinite(load) and 0 < load <= 10):
        raise InvalidInput("synthetic workload: days, accelerators and load must be positive "
                           "(load at most 10, days at most 3660)", field="synthetic")
    if max_gpus is not None and max_gpus < 1:
        raise InvalidInput("synthetic workload: max_gpus must be at least 1", field="synthetic")
    shares = shares or DEFAULT_SECTOR_SHARES
    if not all(np.isfinite(v) and v >= 0 for v in shares.values()) or not sum(shares.values()):
        raise InvalidInput("synthetic workload: sector shares must be finite, at least 0, and "
                           "not all 0", field="shares")
    profiles = {k: _clipped(v, max_gpus) for k, v in (profiles or DEFAULT_PROFILES).items()}
    expect = expected_jobs(days, accelerators, load, shares, profiles)
    if expect > MAX_JOBS:
        raise InvalidInput(f"synthetic workload: {days:g} days at load {load:g} on "
                           f"{accelerators:,} accelerators is about {expect:,.0f} jobs; at most "
                           f"{MAX_JOBS:,} are generated: give fewer days or a lower load",
                           field="synthetic_jobs")
    if fit_load:
        w = _fitted(days, accelerators, load, seed, shares, profiles)
    else:
        w, _ = _draw(days, accelerators, load, seed, shares, profiles)
    w.horizon_s = days * DAY
    return w


# The most jobs generated at once: about 2 GB with the simulator's own arrays (ten years of
# the 2030 fleet at its usual load is 8 million).
MAX_JOBS = 20_000_000


def expected_jobs(days: float, accelerators: int, load: float, shares: dict[str, float],
                  profiles: dict[str, SectorProfile]) -> float:
    """The mean number of jobs of a workload (each sector's rate × the days)."""
    return sum(load * share * accelerators / profiles[name].mean_acc_s() * days * DAY
               for name, share in shares.items())


# Blocks of one unit of load drawn at most for a fitted workload: a load of 10 needs about 10;
# the margin covers a draw whose heavy tail fell short (then every job drawn is taken).
MAX_BLOCKS = 64


def _fitted(days: float, accelerators: int, load: float, seed: int,
            shares: dict[str, float], profiles: dict[str, SectorProfile]) -> Workload:
    """Per sector, the prefix of its candidate jobs, in order of the load at which each is
    kept, whose accelerator-seconds are closest to its share of ``load`` × accelerators ×
    days; candidates come in blocks of one unit of load. Sector by sector, so that a few jobs
    of one sector's heavy tail cannot fill the whole target on a small fleet and leave another
    sector out. Block ``k`` is drawn from ``[seed, k]`` whatever the load, so the workload for a
    load is contained in the workload for any higher one."""
    names = list(shares)
    total_share = sum(shares.values())
    need = np.array([load * shares[n] / total_share * accelerators * days * DAY
                     for n in names])
    blocks: list[tuple[Workload, np.ndarray]] = []
    drawn = np.zeros(len(names))
    while (drawn < need).any() and len(blocks) < MAX_BLOCKS:
        k = len(blocks)
        w, keep_at = _draw(days, accelerators, 1.0, [seed, k], shares, profiles)
        blocks.append((w, k + keep_at))
        drawn += np.bincount(_sector_of(w, names, profiles), weights=w.gpus * w.runtime_s,
                             minlength=len(names))
    keep_at = np.concatenate([k for _, k in blocks])
    submit = np.concatenate([b.submit_s for b, _ in blocks])
    order = np.argsort(submit, kind="stable")
    w, keep_at = _concat([b for b, _ in blocks], order), keep_at[order]
    sector = _sector_of(w, names, profiles)
    taken = []
    for s, want in enumerate(need.tolist()):
        rows = np.flatnonzero(sector == s)
        by_load = rows[np.argsort(keep_at[rows], kind="stable")]
        work = np.cumsum(w.gpus[by_load].astype(np.float64) * w.runtime_s[by_load])
        # work[n] is the first at or above the need (n = len: every job drawn falls short, and
        # all are taken); n + 1 jobs reach it, unless n jobs come closer
        n = int(np.searchsorted(work, want))
        if n < len(work) and not (n > 0 and want - work[n - 1] < work[n] - want):
            n += 1
        taken.append(by_load[:n])
    w = w.take(np.concatenate(taken))
    w.account = RowAccount(rows_read=len(w))
    return w


def _sector_of(w: Workload, names: list[str], profiles: dict[str, SectorProfile]
               ) -> np.ndarray:
    """Per job, the index in ``names`` of its sector: ``_draw`` lists each sector's tenants in
    turn, ``profiles[name].tenants`` of them."""
    of_tenant = np.repeat(np.arange(len(names)), [profiles[n].tenants for n in names])
    return of_tenant[w.tenant]


def _concat(parts: list[Workload], order: np.ndarray) -> Workload:
    """Generated workloads (the same tenants) as one, rows taken in ``order`` (submit order)."""
    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])[order]
    return Workload(name=parts[0].name, submit_s=cat("submit_s"), runtime_s=cat("runtime_s"),
                    gpus=cat("gpus"), tenant=cat("tenant"), tenants=parts[0].tenants,
                    model=cat("model"), job_class=cat("job_class"),
                    preemptible=cat("preemptible"))


def _clipped(p: SectorProfile, max_gpus: int | None) -> SectorProfile:
    """``p`` with gangs above ``max_gpus`` made ``max_gpus`` (their probabilities merged)."""
    if max_gpus is None or max(p.sizes) <= max_gpus:
        return p
    merged: dict[int, float] = {}
    for size, prob in zip(p.sizes, p.size_p, strict=True):
        merged[min(size, max_gpus)] = merged.get(min(size, max_gpus), 0.0) + prob
    return replace(p, sizes=tuple(merged), size_p=tuple(merged.values()))


def _draw(days: float, accelerators: int, load: float, seed: int | list[int],
          shares: dict[str, float], profiles: dict[str, SectorProfile]
          ) -> tuple[Workload, np.ndarray]:
    """The workload at rate ``load``, and for each job the multiple of that rate from which
    thinning keeps it (in [0, 1): each job is kept at any rate at least that multiple)."""
    rng = np.random.default_rng(seed)
    horizon = days * DAY
    submit, runtime, gpus, tenant, klass, pre, keep = [], [], [], [], [], [], []
    tenants: list[str] = []
    for name, share in shares.items():
        p = profiles[name]
        base = load * share * accelerators / p.mean_acc_s()  # jobs per second
        peak = base * (1 + p.daily_amplitude) / ((5 + 2 * p.weekend_factor) / 7)
        n_cand = rng.poisson(peak * horizon)
        t = np.sort(rng.uniform(0, horizon, n_cand))
        u = rng.uniform(0, 1, n_cand)
        ratio = _rate_shape(t, p) * base / peak
        kept = u < ratio
        t = t[kept]
        keep.append(u[kept] / ratio[kept])
        n = len(t)
        submit.append(t)
        # whole seconds, as traces record them; rounding also makes the workload the same on
        # every machine (numpy's vectorised exp differs in the last bit between instruction sets)
        runtime.append(np.round(np.clip(p.median_s * np.exp(p.sigma * rng.standard_normal(n)),
                                        MIN_RUNTIME_S, p.cap_s)))
        gpus.append(rng.choice(np.array(p.sizes), size=n, p=np.array(p.size_p)))
        # tenants within a sector: a Zipf-like popularity (a few large organizations)
        w = 1.0 / np.arange(1, p.tenants + 1)
        tenant.append(len(tenants) + rng.choice(p.tenants, size=n, p=w / w.sum()))
        tenants.extend(f"{name}-org{k:02d}" for k in range(p.tenants))
        flex = rng.uniform(0, 1, n) < p.preemptible_p
        klass.append(np.where(flex, int(JobClass.FLEXIBLE), int(JobClass.BATCH)))
        pre.append(flex)
    s = np.concatenate(submit)
    order = np.argsort(s, kind="stable")
    acc = RowAccount(rows_read=len(s))
    w = Workload(
        name="synthetic",
        submit_s=s[order],
        runtime_s=np.concatenate(runtime)[order],
        gpus=np.concatenate(gpus)[order].astype(np.int32),
        tenant=np.concatenate(tenant)[order].astype(np.int32),
        tenants=tenants,
        model=np.full(len(s), -1, dtype=np.int16),
        job_class=np.concatenate(klass)[order].astype(np.int8),
        preemptible=np.concatenate(pre)[order],
        account=acc,
    )
    return w, np.concatenate(keep)[order]


def sector_mapping(w: Workload) -> dict[str, object]:
    """The tenant mapping for a synthetic workload: each ``<sector>-orgNN`` in its sector."""
    return {"tenant": {t: {"sector": t.split("-org")[0]} for t in w.tenants}}
