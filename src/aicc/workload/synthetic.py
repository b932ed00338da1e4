"""A seeded synthetic workload for the three sectors, with daily and weekly cycles.

Each sector submits jobs as a non-homogeneous Poisson process (thinning): a base rate times a
daily profile (a cosine peaking at ``peak_hour``) times a weekday/weekend factor. Sizes come from
a discrete distribution over power-of-two gangs; runtimes are log-normal (median, σ), capped.
The base rates are solved so that each sector's mean demand is ``load`` × its entitlement share
× the fleet's accelerators. Why these defaults: ``docs/simulation.md`` (section "Synthetic
workload") compares them with the Philly and Alibaba traces.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        """Expected accelerator-seconds per job (log-normal capped at ``cap_s``, by quadrature)."""
        q = (np.arange(4000) + 0.5) / 4000
        from statistics import NormalDist
        z = np.array([NormalDist().inv_cdf(float(x)) for x in q[::40]])
        d = np.minimum(self.median_s * np.exp(self.sigma * z), self.cap_s).mean()
        return float(np.dot(self.sizes, self.size_p) * d)


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
        median_s=2 * 3600.0, sigma=2.0, daily_amplitude=0.5, weekend_factor=0.52,
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
) -> Workload:
    """Jobs over ``days`` offering ``load`` × ``accelerators`` on average, split by ``shares``."""
    # written so that NaN fails: it compares false with everything
    if not (np.isfinite(days) and 0 < days <= 3660) or accelerators <= 0 \
            or not (np.isfinite(load) and 0 < load <= 10):
        raise InvalidInput("synthetic workload: days, accelerators and load must be positive "
                           "(load at most 10, days at most 3660)", field="synthetic")
    shares = shares or DEFAULT_SECTOR_SHARES
    profiles = profiles or DEFAULT_PROFILES
    rng = np.random.default_rng(seed)
    horizon = days * DAY
    submit, runtime, gpus, tenant, klass, pre = [], [], [], [], [], []
    tenants: list[str] = []
    for name, share in shares.items():
        p = profiles[name]
        base = load * share * accelerators / p.mean_acc_s()  # jobs per second
        peak = base * (1 + p.daily_amplitude) / ((5 + 2 * p.weekend_factor) / 7)
        n_cand = rng.poisson(peak * horizon)
        t = np.sort(rng.uniform(0, horizon, n_cand))
        t = t[rng.uniform(0, 1, n_cand) < _rate_shape(t, p) * base / peak]
        n = len(t)
        submit.append(t)
        runtime.append(np.clip(p.median_s * np.exp(p.sigma * rng.standard_normal(n)),
                               MIN_RUNTIME_S, p.cap_s))
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
    return Workload(
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


def sector_mapping(w: Workload) -> dict[str, object]:
    """The tenant mapping for a synthetic workload: each ``<sector>-orgNN`` in its sector."""
    return {"tenant": {t: {"sector": t.split("-org")[0]} for t in w.tenants}}
