"""Free capacity of one cycle: gang placement, best fit, reservations, fragmentation.

Rules 6 and 7 of docs/design/0001-scheduling.md. The free count per node lives twice: as a numpy
array for vector work (gangs, reservations) and as a Python list for the scalar hot path (one-node
jobs). Within a cycle free capacity only shrinks, which makes the per-type failure memos exact: a
shape that failed for an end time fails for every later end time and every larger shape.
"""

from __future__ import annotations

import itertools
import math
import weakref
from dataclasses import dataclass

import numpy as np

from aicc.fleet.arrays import NODE_DOWN, NODE_UP, FleetArrays
from aicc.scheduler.snapshot import JobTable

INF = math.inf
_SCANS = 8  # array scans per type before the per-level lists pay for themselves


@dataclass(frozen=True)
class FleetStatic:
    """What a cycle derives from the fleet's types, capacities and node states alone.

    Built once per fleet state (:func:`fleet_static`) instead of once per cycle: a simulated
    or live fleet changes far less often than the scheduler runs. Read-only by contract."""

    up: np.ndarray  # bool per node: in service
    live: np.ndarray  # bool per node: not down (draws power)
    cap32: np.ndarray  # int32 capacity per node
    cap64: np.ndarray  # int64 capacity per node
    cap_up: np.ndarray  # capacity of the nodes in service (fragmentation)
    type_cap: np.ndarray  # float64 in-service accelerators per type
    type_nodes: np.ndarray  # in-service nodes per type
    type_maxcap: np.ndarray  # int64 largest in-service node per type
    tdp_node: np.ndarray  # float64 TDP watts per accelerator, per node
    idle_node: np.ndarray  # float64 idle watts per accelerator, per node
    delta_w: np.ndarray  # float64 per type: TDP − idle
    type_up: np.ndarray  # type index of the nodes in service
    nodes_of_type: tuple[np.ndarray, ...]  # in-service node indices per type, ascending
    maxcap: tuple[int, ...]  # largest in-service node per type (0: none)
    uniform: tuple[bool, ...]  # all in-service nodes of the type have one size
    size_keys: np.ndarray  # the nodes in service as size_keys(); see nodes_at_least
    key_base: int


def size_keys(type_idx: np.ndarray, capacity: np.ndarray) -> tuple[np.ndarray, int]:
    """Nodes as sorted ``type × base + capacity`` keys, and the base (see
    :func:`nodes_at_least`)."""
    base = int(np.max(capacity, initial=0)) + 1
    return np.sort(np.asarray(type_idx, dtype=np.int64) * base + capacity), base


def nodes_at_least(keys: np.ndarray, base: int, t: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per row: nodes (of :func:`size_keys`) of type ``t`` with at least ``k`` accelerators.
    A gang's nodes must each hold its per-node share: with nodes of several sizes in one type,
    fewer than the type's node count can."""
    t = np.asarray(t, dtype=np.int64)
    k = np.minimum(np.asarray(k, dtype=np.int64), base)
    end = np.searchsorted(keys, (t + 1) * base, side="left")
    return end - np.searchsorted(keys, t * base + k, side="left")


_STATIC: dict[int, tuple[weakref.ref, tuple[tuple[str, tuple[int, ...], bytes], ...],
                         FleetStatic]] = {}


def _fingerprint(*arrays: np.ndarray) -> tuple[tuple[str, tuple[int, ...], bytes], ...]:
    """dtype, shape and bytes of each array: equal fingerprints mean equal values (a cheap
    comparison for the small arrays of a fleet, where ``np.array_equal`` costs more)."""
    return tuple((a.dtype.str, a.shape, a.tobytes()) for a in arrays)


def _build_static(fleet: FleetArrays) -> FleetStatic:
    n_t = len(fleet.catalog)
    up = fleet.state == NODE_UP
    cap = fleet.capacity.astype(np.int64)
    type_cap = np.bincount(fleet.type_idx[up], weights=cap[up], minlength=n_t)
    type_nodes = np.bincount(fleet.type_idx[up], minlength=n_t)
    type_maxcap = np.zeros(n_t, dtype=np.int64)
    np.maximum.at(type_maxcap, fleet.type_idx[up], cap[up])
    tdp = np.array([t.tdp_w for t in fleet.catalog])
    idle = np.array([t.idle_w for t in fleet.catalog])
    ti = fleet.type_idx
    cap32 = fleet.capacity.astype(np.int32)
    order = np.argsort(fleet.type_idx, kind="stable")
    bounds = np.searchsorted(fleet.type_idx[order], np.arange(n_t + 1))
    nodes_of_type = tuple(order[bounds[t]:bounds[t + 1]][up[order[bounds[t]:bounds[t + 1]]]]
                          for t in range(n_t))
    maxcap = tuple(int(cap32[ix].max()) if len(ix) else 0 for ix in nodes_of_type)
    uniform = tuple(bool(len(ix) == 0 or (cap32[ix] == cap32[ix[0]]).all())
                    for ix in nodes_of_type)
    keys, key_base = size_keys(fleet.type_idx[up], cap[up])
    st = FleetStatic(up=up, live=fleet.state != NODE_DOWN, cap32=cap32, cap64=cap,
                     cap_up=fleet.capacity[up], type_cap=type_cap.astype(np.float64),
                     type_nodes=type_nodes, type_maxcap=type_maxcap, tdp_node=tdp[ti],
                     idle_node=idle[ti], delta_w=tdp - idle, type_up=fleet.type_idx[up],
                     nodes_of_type=nodes_of_type, maxcap=maxcap, uniform=uniform,
                     size_keys=keys, key_base=key_base)
    for a in (st.up, st.live, st.cap32, st.cap64, st.cap_up, st.type_cap, st.type_nodes,
              st.type_maxcap, st.tdp_node, st.idle_node, st.delta_w, st.type_up, st.size_keys,
              *nodes_of_type):
        a.flags.writeable = False
    return st


def fleet_static(fleet: FleetArrays) -> FleetStatic:
    """The :class:`FleetStatic` of ``fleet`` as it is now: cached per fleet object and reused
    while its types, capacities and states are equal to those it was built from (compared by
    value, so that a fleet changed in place is never served stale data)."""
    key = id(fleet)
    hit = _STATIC.get(key)
    fp = _fingerprint(fleet.state, fleet.type_idx, fleet.capacity)
    if hit is not None:
        ref, seen, st = hit
        if ref() is fleet and seen == fp:
            return st
    st = _build_static(fleet)
    try:
        ref = weakref.ref(fleet, lambda _r, k=key: _STATIC.pop(k, None))
    except TypeError:  # an object without weak references: not cached
        return st
    _STATIC[key] = (ref, fp, st)
    return st


def fragmentation(fleet: FleetArrays, free: np.ndarray, static: FleetStatic | None = None
                  ) -> float:
    """Rule 6: fraction of free in-service accelerators not on wholly free nodes (0 = none).
    ``static``: the fleet's :class:`FleetStatic` when the caller has it already."""
    st = fleet_static(fleet) if static is None else static
    f = np.asarray(free)[st.up].astype(np.int64)
    total = int(f.sum())
    if total == 0:
        return 0.0
    whole = int(f[f == st.cap_up].sum())
    return 1.0 - whole / total


class FreeState:
    """Free accelerators, reservations and placement for one cycle."""

    def __init__(self, fleet: FleetArrays, free: np.ndarray, running: JobTable, now: float,
                 static: FleetStatic | None = None) -> None:
        self.fleet = fleet
        self.now = now
        st = fleet_static(fleet) if static is None else static
        self.static = st
        self.free = np.where(st.up, np.asarray(free, dtype=np.int32), 0).astype(np.int32)
        self.cap = st.cap32
        self.freel: list[int] = self.free.tolist()
        n = fleet.n_nodes
        self.res_time = np.full(n, INF)
        self.res_timel: list[float] = [INF] * n
        self.res_spare: list[int] = [0] * n
        self.cycle_until = np.full(n, -INF)  # latest release of this cycle's starts, per node
        # this cycle's allocations (node, accelerators, estimated release), appended by take()
        self._cyc_node: list[int] = []
        self._cyc_cnt: list[int] = []
        self._cyc_rel: list[float] = []
        self._cyc: tuple[np.ndarray, np.ndarray, np.ndarray] = (
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
        self._merged: dict[int, tuple[int, tuple[np.ndarray, ...] | None]] = {}
        self.running = running
        self.n_types = len(fleet.catalog)
        self.nodes_of_type = st.nodes_of_type
        self.maxcap = list(st.maxcap)
        self.uniform = st.uniform
        self._levels: list[list[list[int]] | None] = [None] * self.n_types
        self.hint = list(self.maxcap)  # upper bound of free on unreserved nodes, per type
        self.scans = [0] * self.n_types
        self.resv: list[list[int]] = [[] for _ in range(self.n_types)]
        self.resv_max = [0] * self.n_types  # upper bound of free on reserved nodes
        self.fail_sub = [[INF] * (c + 2) for c in self.maxcap]
        # one buffer, a slice per type (cheaper than an array per type)
        sizes = [len(ix) + 2 for ix in self.nodes_of_type]
        buf = np.full(sum(sizes), INF)
        cut = [0, *itertools.accumulate(sizes)]
        self._gang_width = max(sizes, default=1)
        self.fail_gang = [buf[cut[t]:cut[t + 1]] for t in range(self.n_types)]
        self._profile: tuple[np.ndarray, ...] | None = None
        self.last_reserved: tuple[int, ...] = ()  # nodes of the latest reservation
        # memo_tables: built on first use, then only the rows of the types that failed since
        self._memo: tuple[np.ndarray, np.ndarray] | None = None
        self._memo_stale: set[int] = set()

    # --- one-node jobs: best fit (rule 6) ------------------------------------------------------
    def _levels_of(self, t: int) -> list[list[int]]:
        lv = self._levels[t]
        if lv is None:
            ix = self.nodes_of_type[t]
            f = self.free[ix]
            ix, f = ix[f > 0], f[f > 0]
            whole = f == self.cap[ix]
            leaf = self.fleet.leaf[ix]
            leaf_whole = np.bincount(leaf[whole], minlength=int(leaf.max()) + 1 if len(ix) else 1)
            # pop() takes from the end: lowest level, the leaf with fewest whole nodes first
            srt = np.lexsort((-ix, -leaf_whole[leaf], f))
            ix, f = ix[srt], f[srt]
            cut = np.searchsorted(f, np.arange(self.maxcap[t] + 2))
            lv = [ix[cut[v]:cut[v + 1]].tolist() for v in range(self.maxcap[t] + 1)]
            self._levels[t] = lv
        return lv

    def _scan(self, t: int, k: int) -> int:
        """The best-fit search of :meth:`find_sub` on arrays (no per-type lists to build): the
        cheaper path while a type has seen few placements in this cycle."""
        ix = self.nodes_of_type[t]
        f = self.free[ix]
        ok = (f >= k) & (self.res_time[ix] == INF)
        if not ok.any():
            return -1
        ix, f = ix[ok], f[ok].astype(np.int64)
        whole = self.free[self.nodes_of_type[t]] == self.cap[self.nodes_of_type[t]]
        leaf_all = self.fleet.leaf
        lw = np.bincount(leaf_all[self.nodes_of_type[t][whole]],
                         minlength=int(leaf_all.max()) + 1)[leaf_all[ix]].astype(np.int64)
        n = self.fleet.n_nodes + 1
        return int(ix[np.argmin((f * n + lw) * n + ix)])

    def find_sub(self, t: int, k: int, end: float) -> int:
        """Best-fit node for ``k`` accelerators of type ``t`` until ``end``, or -1: the fewest
        free accelerators that fit; among those, a node in a leaf with few whole nodes (rule 6;
        the scan counts whole nodes now, the lists as of their building, and keep filling the
        node they used last)."""
        freel = self.freel
        if k <= self.hint[t] and self._levels[t] is None and self.scans[t] < _SCANS:
            self.scans[t] += 1
            n = self._scan(t, k)
            if n >= 0:
                return n
            self.hint[t] = k - 1
        elif k <= self.hint[t]:
            levels = self._levels_of(t)
            rt = self.res_timel
            for f in range(k, self.maxcap[t] + 1):
                lst = levels[f]
                while lst:
                    n = lst[-1]
                    if freel[n] != f or rt[n] != INF:
                        lst.pop()  # stale (taken or reserved: reserved nodes live in resv)
                        continue
                    return n
            self.hint[t] = k - 1
        if k <= self.resv_max[t]:
            best, best_f, top = -1, 1 << 30, 0
            for n in self.resv[t]:
                f = freel[n]
                top = max(top, f)
                if f >= k and f < best_f and (end <= self.res_timel[n] or k <= self.res_spare[n]):
                    best, best_f = n, f
            self.resv_max[t] = top
            return best
        return -1

    def failed_sub(self, t: int, k: int, end: float) -> bool:
        """Memo: has a shape no larger, ending no later, already failed for this type?"""
        return end >= self.fail_sub[t][k]

    def remember_sub_failure(self, t: int, k: int, end: float) -> None:
        self._memo_stale.add(t)
        fs = self.fail_sub[t]
        for kk in range(k, len(fs)):
            if end < fs[kk]:
                fs[kk] = end

    def take(self, n: int, k: int, end: float, release: float | None = None) -> None:
        """Allocate ``k`` accelerators on node ``n`` until ``end`` (the time limit, which bounds
        backfill on reserved nodes); ``release`` is when later reservations expect them back,
        estimated as for running jobs (``end`` when not given)."""
        f = self.freel[n]
        nf = f - k
        self.freel[n] = nf
        self.free[n] = nf
        rel = end if release is None else release
        self._cyc_node.append(n)
        self._cyc_cnt.append(k)
        self._cyc_rel.append(rel)
        if rel > self.cycle_until[n]:
            self.cycle_until[n] = rel
        if self.res_timel[n] != INF:
            if end > self.res_timel[n]:
                self.res_spare[n] -= k
        elif nf > 0:
            lv = self._levels[int(self.fleet.type_idx[n])]
            if lv is not None:
                lv[nf].append(n)

    # --- gangs: whole nodes, one leaf, then one pod (rule 6) ------------------------------------
    def find_gang(self, t: int, nodes: int, per_node: int, end: float) -> np.ndarray | None:
        ix = self.nodes_of_type[t]
        if self.uniform[t] and end >= self.fail_gang[t][min(nodes, len(ix) + 1)]:
            return None
        cap = self.cap[ix]
        ok = ((self.free[ix] == cap) & (cap >= per_node)
              & ((self.res_time[ix] >= end) | (self.res_time[ix] == INF)))
        cand = ix[ok]
        if len(cand) < nodes:
            if self.uniform[t]:
                g = self.fail_gang[t]
                g[nodes:] = np.minimum(g[nodes:], end)
                self._memo_stale.add(t)
            return None
        leaf = self.fleet.leaf[cand]
        _, linv, lcnt = np.unique(leaf, return_inverse=True, return_counts=True)
        if lcnt.max() >= nodes:
            pick = int(np.argmin(np.where(lcnt >= nodes, lcnt, np.iinfo(np.int64).max)))
            return cand[linv == pick][:nodes]
        pod = self.fleet.pod[cand]
        _, pinv, pcnt = np.unique(pod, return_inverse=True, return_counts=True)
        if pcnt.max() >= nodes:
            pick = int(np.argmin(np.where(pcnt >= nodes, pcnt, np.iinfo(np.int64).max)))
            sel = pinv == pick
            c, lc = cand[sel], lcnt[linv[sel]]
            return c[np.argsort(-lc, kind="stable")][:nodes]
        srt = np.lexsort((-lcnt[linv], -pcnt[pinv]))
        return cand[srt][:nodes]

    def whole_counts(self) -> np.ndarray:
        """Wholly free in-service nodes per type."""
        whole = self.static.up & (self.free == self.cap)
        return np.bincount(self.fleet.type_idx[whole], minlength=self.n_types)

    def memo_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The failure memos as 2-D arrays [type, size] (inf: no failure yet); gang memos of
        types with mixed node sizes stay empty (inf), as in :meth:`find_gang`."""
        if self._memo is None:  # all inf, as the memos of the types that have not failed yet
            sub = np.full((self.n_types, max(self.maxcap, default=0) + 2), INF)
            gang = np.full((self.n_types, self._gang_width), INF)
            self._memo = (sub, gang)
        sub, gang = self._memo
        for t in self._memo_stale:
            row = self.fail_sub[t]
            sub[t, :len(row)] = row
            sub[t, len(row):] = row[-1]
            if self.uniform[t]:
                g = self.fail_gang[t]
                gang[t, :len(g)] = g
                gang[t, len(g):] = g[-1]
        self._memo_stale = set()
        return self._memo

    def whole_free(self, t: int) -> int:
        ix = self.nodes_of_type[t]
        return int((self.free[ix] == self.cap[ix]).sum())

    # --- reservations (rule 7) ------------------------------------------------------------------
    def _release_profile(self) -> tuple[np.ndarray, ...]:
        """Running allocations on in-service nodes as (node, end, accelerators, cumulative
        released on the node by that end) sorted by (type, node, end), with per-type bounds and
        per-node last end. Ends are estimated from ``expected_runtime_s`` when known, else the
        time limit."""
        if self._profile is None:
            r = self.running
            n_alloc = np.diff(r.alloc_ptr) if len(r) else np.zeros(0, dtype=np.int64)
            if len(r) and len(r.alloc_node):
                run = np.where(r.expected_runtime_s > 0,
                               np.minimum(r.expected_runtime_s, r.time_limit_s), r.time_limit_s)
                job_end = np.maximum(r.start_time + run, self.now)
                end = np.repeat(job_end, n_alloc)
                node = r.alloc_node.astype(np.int64)
                cnt = r.alloc_count.astype(np.int64)
                keep = self.fleet.state[node] == NODE_UP
                node, cnt, end = node[keep], cnt[keep], end[keep]
            else:
                node = np.zeros(0, dtype=np.int64)
                cnt = np.zeros(0, dtype=np.int64)
                end = np.zeros(0)
            typ = self.fleet.type_idx[node].astype(np.int64)
            srt = np.lexsort((end, node, typ))
            node, cnt, end, typ = node[srt], cnt[srt], end[srt], typ[srt]
            bounds = np.searchsorted(typ, np.arange(self.n_types + 1))
            last_end = np.full(self.fleet.n_nodes, -INF)
            if len(node):  # each node's last entry holds its latest end (sorted by end)
                last = np.empty(len(node), dtype=bool)
                last[-1] = True
                np.not_equal(node[1:], node[:-1], out=last[:-1])
                last_end[node[last]] = end[last]
            self._profile = (node, end, cnt, _node_cumsum(node, cnt), bounds, last_end)
        return self._profile

    def _cycle_allocs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This cycle's allocations as arrays (node, accelerators, release), extended with what
        :meth:`take` appended since the last call."""
        node, cnt, rel = self._cyc
        done = len(node)
        if done < len(self._cyc_node):
            node = np.concatenate((node, np.array(self._cyc_node[done:], dtype=np.int64)))
            cnt = np.concatenate((cnt, np.array(self._cyc_cnt[done:], dtype=np.int64)))
            rel = np.concatenate((rel, np.array(self._cyc_rel[done:], dtype=np.float64)))
            self._cyc = (node, cnt, rel)
        return self._cyc

    def _cycle_profile(self, t: int) -> tuple[np.ndarray, ...] | None:
        """The release profile of the nodes of type ``t`` that took starts in this cycle, with
        those starts taken as running jobs released at their estimated ends: (index of the
        nodes' entries in the type's running profile, node, end, cumulative released on the
        node by that end), sorted by node, then end; None when the type took no start. Cached
        until the type's next start."""
        cn, cc, ce = self._cycle_allocs()
        seen = len(cn)
        hit = self._merged.get(t)
        tidx = self.fleet.type_idx
        if hit is not None and (hit[0] == seen or not (tidx[cn[hit[0]:]] == t).any()):
            self._merged[t] = (seen, hit[1])  # no start of this type since
            return hit[1]
        mine = tidx[cn] == t
        out: tuple[np.ndarray, ...] | None = None
        if mine.any():
            node, end, cnt, _, bounds, _ = self._release_profile()
            a, b = bounds[t], bounds[t + 1]
            cn, cc, ce = cn[mine], cc[mine], ce[mine]
            touched = np.zeros(self.fleet.n_nodes, dtype=bool)
            touched[cn] = True
            redo = np.flatnonzero(touched[node[a:b]])
            rn = np.concatenate((node[a:b][redo], cn))
            re_ = np.concatenate((end[a:b][redo], ce))
            rc = np.concatenate((cnt[a:b][redo], cc))
            srt = np.lexsort((re_, rn))
            rn, re_, rc = rn[srt], re_[srt], rc[srt]
            out = (redo, rn, re_, _node_cumsum(rn, rc))
        self._merged[t] = (seen, out)
        return out

    def _first_reach(self, nd: np.ndarray, en: np.ndarray, cu: np.ndarray, k: int,
                     skip: np.ndarray | None = None) -> tuple[float, int, int]:
        """(time, node, released by then) of the earliest entry of a profile sorted by node, then
        end, where an unreserved node has ``k`` accelerators free (the lowest node among equal
        times); (inf, -1, 0) when none. Entries at ``skip`` are left out."""
        ok = (cu >= k - self.free[nd]) & (self.res_time[nd] == INF)
        if skip is not None:
            ok[skip] = False
        ok = np.flatnonzero(ok)
        if not len(ok):
            return INF, -1, 0
        i = int(ok[np.argmin(en[ok])])  # the first minimum: lowest node, its first entry
        return float(en[i]), int(nd[i]), int(cu[i])

    def reserve_sub(self, t: int, k: int) -> float:
        """Reserve the unreserved node where ``k`` accelerators free up first (the lowest node
        among equal times); its start or inf. Running jobs and jobs started earlier in this
        cycle release at their estimated ends."""
        node, end, _, cum, bounds, _ = self._release_profile()
        a, b = bounds[t], bounds[t + 1]
        cyc = self._cycle_profile(t)
        if cyc is None:
            when, n, got = self._first_reach(node[a:b], end[a:b], cum[a:b], k)
        else:  # nodes that took starts are searched in their own profile, with those starts
            redo, rn, re_, rcu = cyc
            when, n, got = min(self._first_reach(node[a:b], end[a:b], cum[a:b], k, redo),
                               self._first_reach(rn, re_, rcu, k))
        if when == INF:
            return INF
        self._mark(t, n, when, int(self.free[n]) + got - k)
        self.last_reserved = (n,)
        return when

    def reserve_gang(self, t: int, nodes: int, per_node: int) -> float:
        """Reserve ``nodes`` whole nodes at the earliest time that many are free (running jobs
        and this cycle's starts release at their estimated ends); the start, or inf. Of the
        nodes free by then it takes those that free up first, from one leaf if a leaf has
        enough, else from one pod, else across pods (rule 6)."""
        ix = self.nodes_of_type[t]
        last_end = self._release_profile()[-1]
        cap = self.cap[ix]
        whole = self.free[ix] == cap
        known = np.maximum(last_end[ix], self.cycle_until[ix])
        # a node not whole with no known release is unknown
        when = np.where(whole, self.now, np.where(known > -INF, np.maximum(known, self.now), INF))
        when = np.where((self.res_time[ix] == INF) & (cap >= per_node), when, INF)
        if len(ix) < nodes:
            return INF
        start = float(np.partition(when, nodes - 1)[nodes - 1])
        if start == INF:
            return INF
        by = when <= start
        cand, cw = ix[by], when[by]
        srt = np.lexsort((cand, cw))  # earliest first, then lowest node
        cand, cw = cand[srt], cw[srt]
        leaf = self.fleet.leaf[cand]
        g = _earliest_group(cw, leaf, nodes)
        if g is not None:
            pick = cand[leaf == g][:nodes]
        else:  # as placement: the leaves with most candidates first; among equals the leaf
            # that frees first (its first candidate: earliest, then lowest node), so one leaf's
            # nodes are taken together, in time order
            _, lfirst, linv, lcnt = np.unique(leaf, return_index=True, return_inverse=True,
                                              return_counts=True)
            pod = self.fleet.pod[cand]
            g = _earliest_group(cw, pod, nodes)
            if g is not None:
                ins = np.flatnonzero(pod == g)
                li = linv[ins]
                pick = cand[ins[np.lexsort((ins, lfirst[li], -lcnt[li]))]][:nodes]
            else:  # the pods with most candidates first, likewise: one pod's nodes together
                _, pfirst, pinv, pcnt = np.unique(pod, return_index=True, return_inverse=True,
                                                  return_counts=True)
                pick = cand[np.lexsort((np.arange(len(cand)), lfirst[linv], -lcnt[linv],
                                        pfirst[pinv], -pcnt[pinv]))][:nodes]
        chosen = sorted(pick.tolist())
        for n in chosen:
            self._mark(t, n, start, 0)
        self.last_reserved = tuple(chosen)
        return start

    def _mark(self, t: int, n: int, when: float, spare: int) -> None:
        self.res_time[n] = when
        self.res_timel[n] = when
        self.res_spare[n] = max(spare, 0)
        self.resv[t].append(n)
        self.resv_max[t] = max(self.resv_max[t], self.freel[n])


def _node_cumsum(node: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Running total of ``cnt`` within each run of equal ``node`` (``node`` grouped)."""
    cum = np.cumsum(cnt)
    if not len(node):
        return cum
    first = np.empty(len(node), dtype=bool)  # (not np.r_: its overhead dominates small inputs)
    first[0] = True
    np.not_equal(node[1:], node[:-1], out=first[1:])
    base = (cum - cnt)[first]
    return cum - base[np.cumsum(first) - 1]


def _earliest_group(when: np.ndarray, group: np.ndarray, nodes: int) -> int | None:
    """Of the groups (leaves or pods) with at least ``nodes`` candidates, the one whose earliest
    ``nodes`` free up first in total (ties: the lowest); None when no group has enough.
    ``when`` is sorted (earliest first)."""
    if not len(group):
        return None
    srt = np.argsort(group, kind="stable")  # per group, still earliest first
    g = group[srt]
    first = np.empty(len(g), dtype=bool)  # (not np.r_: its overhead dominates small inputs)
    first[0] = True
    np.not_equal(g[1:], g[:-1], out=first[1:])
    start_of = np.flatnonzero(first)
    count = np.diff(start_of, append=len(g))
    if count.max() < nodes:
        return None
    gi = np.cumsum(first) - 1
    head = (np.arange(len(g)) - start_of[gi]) < nodes
    total = np.bincount(gi[head], weights=when[srt][head], minlength=len(start_of))
    return int(g[start_of[int(np.argmin(np.where(count >= nodes, total, INF)))]])
