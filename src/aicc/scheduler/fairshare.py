"""Fair share with usage decay across sector → organization → project (rule 3 of
docs/design/0001-scheduling.md), and grant pacing (rule 4)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

_MEMO_SIZE = 64  # results kept per function (tenancies and fleets in use at once are few)


def _by_value(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Memoise ``fn`` on the values of its array arguments (dtype, shape and bytes), for inputs
    that change far less often than the scheduler runs (weights, entitlements, capacity). The
    result is returned read-only, so the memo cannot be altered through it; a changed input is
    a new key, so the memo is invisible in results."""
    memo: dict[tuple[Any, ...], np.ndarray] = {}

    @functools.wraps(fn)
    def wrapper(*args: Any) -> np.ndarray:
        key = tuple((a.dtype.str, a.shape, a.tobytes()) if isinstance(a, np.ndarray)
                    else (type(a), a) for a in args)
        out = memo.get(key)
        if out is None:
            out = fn(*args)
            out.flags.writeable = False
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[key] = out
        return out

    return wrapper


def decay_usage(usage_s: np.ndarray | float, elapsed_s: float, half_life_s: float
                ) -> np.ndarray | float:
    """Usage after ``elapsed_s`` of exponential decay with ``half_life_s`` (rule 3).

    Callers keep decayed usage per project and call this between cycles, adding what ran."""
    if half_life_s <= 0:
        raise ValueError("half_life_s must be positive")
    if elapsed_s < 0:
        raise ValueError("elapsed_s must not be negative")
    return usage_s * 0.5 ** (elapsed_s / half_life_s)


@_by_value
def _normalised(weights: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Each weight divided by the sum of its siblings' (equal split when they sum to zero)."""
    w = np.maximum(weights.astype(np.float64), 0.0)
    tot = np.bincount(groups, weights=w, minlength=n_groups)
    cnt = np.bincount(groups, minlength=n_groups).astype(np.float64)
    return np.where(tot[groups] > 0, w / np.where(tot[groups] > 0, tot[groups], 1.0),
                    1.0 / np.maximum(cnt[groups], 1.0))


@_by_value
def sector_shares(entitlement: np.ndarray, type_capacity: np.ndarray) -> np.ndarray:
    """A sector's share of the whole fleet: its entitlement weighted by in-service capacity."""
    cap = type_capacity.astype(np.float64)
    raw = entitlement @ cap if cap.sum() > 0 else entitlement.sum(axis=1)
    tot = raw.sum()
    n = len(raw)
    return raw / tot if tot > 0 else np.full(n, 1.0 / max(n, 1))


def fair_tree_factor(project_org: np.ndarray, org_sector: np.ndarray, org_weight: np.ndarray,
                     project_weight: np.ndarray, sector_share: np.ndarray,
                     usage_s: np.ndarray) -> np.ndarray:
    """Rule 3, docs/design/0001-scheduling.md: fair-tree factor per project in [0, 1].

    Projects are ranked by (sector, organization, project) ratio share/usage, highest first;
    equal tuples share a rank."""
    n_s, n_o, n_p = len(sector_share), len(org_sector), len(project_org)
    if n_p == 0:
        return np.zeros(0)
    usage = np.maximum(np.asarray(usage_s, dtype=np.float64), 0.0)
    eps = 1e-12
    proj_sector = org_sector[project_org]
    u_org = np.bincount(project_org, weights=usage, minlength=n_o)
    u_sec = np.bincount(org_sector, weights=u_org, minlength=n_s)
    u_all = u_sec.sum()
    r_sec = sector_share / (u_sec / u_all + eps) if u_all > 0 else sector_share / eps
    s_org = _normalised(org_weight, org_sector, n_s)
    f_org = np.where(u_sec[org_sector] > 0, u_org / np.where(u_sec[org_sector] > 0,
                                                             u_sec[org_sector], 1.0), 0.0)
    r_org = s_org / (f_org + eps)
    s_prj = _normalised(project_weight, project_org, n_o)
    f_prj = np.where(u_org[project_org] > 0, usage / np.where(u_org[project_org] > 0,
                                                              u_org[project_org], 1.0), 0.0)
    r_prj = s_prj / (f_prj + eps)
    a, b, c = r_sec[proj_sector], r_org[project_org], r_prj
    order = np.lexsort((-c, -b, -a))
    sa, sb, sc = a[order], b[order], c[order]
    change = np.ones(n_p, dtype=np.int64)
    change[1:] = ((sa[1:] != sa[:-1]) | (sb[1:] != sb[:-1]) | (sc[1:] != sc[:-1]))
    change[0] = 0
    rank = np.empty(n_p, dtype=np.float64)
    rank[order] = np.cumsum(change)
    return 1.0 - rank / n_p


def flat_fairshare_factor(project_org: np.ndarray, org_sector: np.ndarray,
                          org_weight: np.ndarray, project_weight: np.ndarray,
                          sector_share: np.ndarray, usage_s: np.ndarray) -> np.ndarray:
    """Rule 10 (multifactor baseline): Slurm's classic ``2^(-U/S)`` with the project's share the
    product of its normalised shares down the tree and U its fraction of all usage."""
    n_s = len(sector_share)
    share = (sector_share[org_sector[project_org]]
             * _normalised(org_weight, org_sector, n_s)[project_org]
             * _normalised(project_weight, project_org, len(org_sector)))
    usage = np.maximum(np.asarray(usage_s, dtype=np.float64), 0.0)
    tot = usage.sum()
    u = usage / tot if tot > 0 else np.zeros_like(usage)
    return np.power(2.0, -u / np.maximum(share, 1e-12))


def pacing_factor(total_s: np.ndarray, used_s: np.ndarray, start: np.ndarray, end: np.ndarray,
                  now: float) -> np.ndarray:
    """Rule 4: ``clip(0.5 + (elapsed fraction − used fraction) / 2, 0, 1)`` per grant."""
    span = np.maximum(end - start, 1e-9)
    e = np.clip((now - start) / span, 0.0, 1.0)
    u = np.clip(used_s / np.maximum(total_s, 1e-9), 0.0, 1.0)
    return np.clip(0.5 + (e - u) / 2.0, 0.0, 1.0)
