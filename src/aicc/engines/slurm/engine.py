"""The Slurm engine: aicc decides (admission, fair share, grants, placement), Slurm launches.

Life of one job in Slurm, as this engine drives it:

1. **held submission** — ``sbatch --hold --parsable`` with the job's account, ``-N``,
   ``--gres=gpu:<type>:<per node>``, time limit, ``--job-name=<prefix>-<aicc id>`` and
   ``--comment=<prefix>:<aicc id>``. Either :meth:`SlurmEngine.submit_held` does it when the
   service accepts the job (Slurm then shows it pending, held, with its script checked), or
   :meth:`SlurmEngine.start` does it on the spot for a job that was never submitted. Both
   paths give the same result, so the engine passes the contract suite either way.
2. **start** — ``scontrol update JobId=… NodeList=…`` pins a held job to the nodes the
   scheduler chose (a job ``start`` submits itself is pinned at submission with
   ``--nodelist``, one client call fewer), then one ``scontrol release`` frees every job
   started in that cycle.
3. **events** — :meth:`SlurmEngine.poll` reads ``squeue --json`` (and ``sacct --json`` for jobs
   slurmctld has forgotten) at most every ``poll_interval_s`` and turns state changes into
   ``started`` / ``finished`` / ``failed`` / ``preempted`` / ``cancelled`` events, plus
   ``node_down`` / ``node_up`` from ``sinfo --json``.
4. **preempt** — a preemptible job is requeued and held (``scontrol requeuehold``: same Slurm
   job id, Slurm counts the restart); a job that is not preemptible is cancelled (``scancel``).
   **cancel** is ``scancel``.

The job name carries the aicc id, so a restarted aicc (or a restarted slurmctld, which recovers
its saved state) finds its jobs again: the constructor reads ``squeue`` and adopts every job
whose name has the engine's prefix; :meth:`SlurmEngine.adopt` tracks ids the database believes
are active and reports how they ended while aicc was away.
"""

from __future__ import annotations

import logging
import math
import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aicc.catalog import Catalog, default_catalog
from aicc.engines.base import EventKind, JobEvent, LaunchSpec, RunningJob, StartOrder
from aicc.errors import EngineError, InvalidJobShape
from aicc.fleet.arrays import NODE_UP, FleetArrays

from .accounts import AccountManager
from .discovery import catalog_to_gres, discover, list_nodes
from .runner import SlurmRunner, expand_hostlist

log = logging.getLogger(__name__)

# Slurm job states (squeue ``job_state`` / sacct ``state.current``) by what they mean to aicc.
ACTIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
                 "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT"}
FINISHED_STATES = {"COMPLETED"}
FAILED_STATES = {"FAILED", "NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY", "DEADLINE", "TIMEOUT"}
CANCELLED_STATES = {"CANCELLED", "REVOKED", "SPECIAL_EXIT"}
PREEMPTED_STATES = {"PREEMPTED"}
TIMEOUT_EXIT = 124  # what `timeout` exits with when the limit is reached
TERMINAL_STATES = FINISHED_STATES | FAILED_STATES | CANCELLED_STATES | PREEMPTED_STATES


@dataclass
class _Tracked:
    """What the engine knows of one aicc job in Slurm."""

    job_id: int
    slurm_id: int
    spec: LaunchSpec | None
    phase: str  # held | released | running | stopped (we preempted: held again) | ended
    nodes: tuple[str, ...] = ()
    start_time: float = 0.0
    restart_cnt: int = 0
    released_at: float = 0.0  # wall time of the release (decision -> running latency)
    running_seen_at: float = 0.0


@dataclass
class SlurmEngine:
    """An :class:`~aicc.engines.base.Engine` on a real Slurm cluster (see module docstring)."""

    runner: SlurmRunner
    catalog: Catalog = field(default_factory=default_catalog)
    partition: str | None = None
    gres_map: Mapping[str, str] = field(default_factory=dict)
    poll_interval_s: float = 5.0
    prefix: str = "aicc"
    output_dir: str | None = None
    workdir: str = "/tmp"
    parent_account: str = "aicc"
    auto_accounts: bool = True
    wall_clock: Callable[[], float] = time.time
    name: str = "slurm"
    time_resolution_s: float = 1.0  # squeue and sacct give whole seconds

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,30}", self.prefix):
            raise EngineError(f"job name prefix {self.prefix!r} must be a letter then letters, "
                              "digits or underscores", field="engine.slurm_job_prefix")
        self._jobs: dict[int, _Tracked] = {}
        self._queued: list[JobEvent] = []
        self._last_poll = -math.inf
        self._node_state: dict[str, int] = {}
        # The state each node was last reported in (an event of a poll): the first poll reports
        # every node, so a store that is behind Slurm (a node drained or returned while aicc was
        # away) catches up; a look between polls (fleet()) never swallows a change.
        self._told: dict[str, int] = {}
        self._node_why: dict[str, tuple[str, str]] = {}
        self._fleet: FleetArrays | None = None
        self._observed_gres: dict[str, str] = {}
        self.accounts = AccountManager(self.runner, parent=self.parent_account)
        self.last_error: str | None = None
        self.latencies: list[float] = []  # release -> RUNNING seen by a poll, seconds
        self._name_re = re.compile(rf"^{re.escape(self.prefix)}-(\d+)$")
        self._fleet = self._discover()
        self._reconcile()

    # --- fleet --------------------------------------------------------------------------------

    def _discover(self) -> FleetArrays:
        fleet, observed = discover(self.runner, self.catalog, partition=self.partition,
                                   gres_map=self.gres_map)
        self._observed_gres = observed
        self._node_state = dict(zip(fleet.names, (int(s) for s in fleet.state), strict=True))
        return fleet

    def fleet(self) -> FleetArrays:
        """The Slurm nodes (discovered once) with the node states of the latest look."""
        assert self._fleet is not None
        self._refresh_nodes(self.wall_clock())
        idx = self._fleet.node_index()
        for name, st in self._node_state.items():
            if name in idx:
                self._fleet.state[idx[name]] = st
        return self._fleet

    def _refresh_nodes(self, now: float) -> None:
        for n in list_nodes(self.runner, self.partition):
            self._node_state[n.name] = n.state
            self._node_why[n.name] = (n.reason or n.state_text, n.state_text)

    def _node_events(self, now: float) -> list[JobEvent]:
        """``node_up`` / ``node_down`` for every node whose state differs from the last one
        reported (all of them at the first poll)."""
        events = []
        for name, st in self._node_state.items():
            if self._told.get(name) == st:
                continue
            self._told[name] = st
            reason, text = self._node_why.get(name, ("", ""))
            kind = EventKind.NODE_UP if st == NODE_UP else EventKind.NODE_DOWN
            events.append(JobEvent(kind, now, node=name, reason=reason or text,
                                   extra={"slurm_state": text}))
        return events

    # --- submission ---------------------------------------------------------------------------

    def job_name(self, job_id: int) -> str:
        return f"{self.prefix}-{job_id}"

    def _sbatch_args(self, spec: LaunchSpec) -> tuple[list[str], str | None]:
        if spec.nodes <= 0 or spec.per_node <= 0 or spec.time_limit_s <= 0:
            raise InvalidJobShape(
                f"job {spec.job_id}: nodes, per_node and time_limit_s must be positive",
                field="spec")
        gres_type = catalog_to_gres(spec.accelerator_type, self._observed_gres, self.gres_map)
        gres = f"gpu:{gres_type}:{spec.per_node}" if gres_type else f"gpu:{spec.per_node}"
        account = (spec.account or spec.project).lower()
        minutes = max(1, math.ceil(spec.time_limit_s / 60.0))
        args = ["sbatch", "--hold", "--parsable",
                f"--job-name={self.job_name(spec.job_id)}",
                f"--comment={self.prefix}:{spec.job_id}",
                f"--account={account}", f"--nodes={spec.nodes}", "--ntasks-per-node=1",
                f"--gres={gres}", f"--time={minutes}", f"--chdir={self.workdir}",
                "--requeue" if spec.preemptible else "--no-requeue",
                "--output=" + (f"{self.output_dir}/{self.prefix}-{spec.job_id}-%j.out"
                               if self.output_dir else "/dev/null")]
        if self.partition:
            args.append(f"--partition={self.partition}")
        # Slurm's time limits are whole minutes; the exact limit is kept by `timeout` around
        # the command (exit status 124 reads as "time limit reached"), Slurm's as a backstop.
        limit = f"timeout --kill-after=2 {spec.time_limit_s:g}"
        script = spec.script
        if script is None:
            run_s = spec.runtime_s if spec.runtime_s is not None else spec.time_limit_s
            args.append(f"--wrap={limit} sleep {max(0.0, run_s):g}")
            return args, None
        if script.lstrip().startswith("#!"):
            return args, script
        args.append(f"--wrap={limit} bash -c {shlex.quote(script)}")
        return args, None

    def submit_held(self, spec: LaunchSpec, nodes: Sequence[str] = ()) -> int:
        """Hand a job to Slurm held (it waits for :meth:`start`); returns the Slurm job id.

        ``nodes`` pins it at submission already (``--nodelist``): what :meth:`start` does for a
        job it submits itself, saving the ``scontrol update`` call.
        """
        known = self._jobs.get(spec.job_id)
        if known is not None and known.phase in {"held", "stopped"}:
            return known.slurm_id
        args, stdin = self._sbatch_args(spec)
        if nodes:
            args.append(f"--nodelist={','.join(nodes)}")
        if self.auto_accounts:
            self.accounts.ensure_project_account(args_account(args))
        out = self._sbatch(args, stdin)
        slurm_id = int(out.strip().split(";")[0])
        self._jobs[spec.job_id] = _Tracked(spec.job_id, slurm_id, spec, "held")
        return slurm_id

    def _sbatch(self, args: list[str], stdin: str | None) -> str:
        # A freshly created association reaches slurmctld from slurmdbd a moment later.
        for attempt in range(20):
            try:
                return self.runner.run(args, stdin=stdin)
            except EngineError as exc:
                if "Invalid account" not in exc.message or attempt == 19:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    def start(self, orders: Sequence[StartOrder], now: float) -> None:
        """Pin each job to its nodes and release them all (submitting held first if needed).

        A job Slurm refuses is reported as ``failed`` by the next poll; the others still start.
        """
        release: list[_Tracked] = []
        for order in orders:
            spec = order.spec
            try:
                if len(order.nodes) != spec.nodes:
                    raise InvalidJobShape(
                        f"job {spec.job_id}: {len(order.nodes)} nodes given for a "
                        f"{spec.nodes}-node job", field="nodes")
                t = self._jobs.get(spec.job_id)
                if t is not None and t.phase in {"released", "running"}:
                    raise EngineError(f"job {spec.job_id} is already started in Slurm "
                                      f"(job {t.slurm_id})")
                if t is None or t.phase not in {"held", "stopped"}:
                    self.submit_held(spec, order.nodes)  # pinned at submission
                    t = self._jobs[spec.job_id]
                    t.nodes = tuple(order.nodes)
                    release.append(t)
                    continue
                t.spec = spec
                try:
                    self._pin(t, order.nodes)
                except EngineError:
                    if t.phase != "stopped":
                        raise
                    # A requeued job may still be completing: start it afresh instead.
                    self._scancel([t.slurm_id])
                    del self._jobs[spec.job_id]
                    self.submit_held(spec, order.nodes)
                    t = self._jobs[spec.job_id]
                t.nodes = tuple(order.nodes)
                release.append(t)
            except (EngineError, InvalidJobShape) as exc:
                dropped = self._jobs.get(spec.job_id)
                if dropped is not None and dropped.phase in {"held", "stopped"}:
                    try:
                        self._scancel([dropped.slurm_id])
                    except EngineError as cancel_exc:
                        log.warning("could not cancel refused job %s: %s", dropped.slurm_id,
                                    cancel_exc.message)
                self._queued.append(JobEvent(EventKind.FAILED, self.wall_clock(),
                                             job_id=spec.job_id,
                                             reason=f"Slurm refused the job: {exc.message}"))
                self._jobs.pop(spec.job_id, None)
        if not release:
            return
        try:  # one call for the whole cycle
            self.runner.run(["scontrol", "release", ",".join(str(t.slurm_id) for t in release)])
        except EngineError:  # find the one Slurm refuses; release the others
            for t in list(release):
                try:
                    self.runner.run(["scontrol", "release", str(t.slurm_id)])
                except EngineError as exc:
                    release.remove(t)
                    self._jobs.pop(t.job_id, None)
                    self._queued.append(self._stop_event(
                        EventKind.FAILED, t, self.wall_clock(),
                        f"Slurm refused the release: {exc.message}"))
        at = self.wall_clock()
        for t in release:
            t.phase, t.released_at = "released", at

    def _pin(self, t: _Tracked, nodes: Sequence[str]) -> None:
        args = ["scontrol", "update", f"JobId={t.slurm_id}", f"NodeList={','.join(nodes)}"]
        if t.phase == "stopped":  # Slurm delays a requeued job's begin time; aicc decided now
            args.append("StartTime=now")
        self.runner.run(args)

    # --- preempt and cancel -------------------------------------------------------------------

    def preempt(self, job_ids: Sequence[int], now: float, reason: str = "") -> None:
        """Requeue-and-hold preemptible jobs, cancel the others; ``preempted`` events follow."""
        at = self.wall_clock()
        for jid in job_ids:
            t = self._jobs.get(jid)
            if t is None or t.phase not in {"released", "running"}:
                continue
            requeue = t.spec is None or t.spec.preemptible
            try:
                if requeue and t.phase == "running":
                    self.runner.run(["scontrol", "requeuehold", str(t.slurm_id)])
                elif requeue:  # released but not yet running: hold it back
                    self.runner.run(["scontrol", "hold", str(t.slurm_id)])
                else:
                    self._scancel([t.slurm_id])
            except EngineError as exc:
                if not _already_gone(exc):
                    raise
                requeue = False
            self._queued.append(self._stop_event(EventKind.PREEMPTED, t, at,
                                                 reason or "preempted",
                                                 action="requeue" if requeue else "cancel"))
            t.phase = "stopped" if requeue else "ended"
            if not requeue:
                del self._jobs[jid]

    def cancel(self, job_ids: Sequence[int], now: float) -> None:
        found = [self._jobs[j] for j in job_ids if j in self._jobs]
        if not found:
            return
        try:
            self._scancel([t.slurm_id for t in found])
        except EngineError as exc:
            if not _already_gone(exc):
                raise
        # slurmctld stamps the end when it handles scancel, in whole seconds: the second the
        # answer came back in, so the charge is sacct's elapsed time (not a fraction beyond).
        at = float(math.floor(self.wall_clock()))
        for t in found:
            if t.phase in {"released", "running", "held", "stopped"}:
                self._queued.append(self._stop_event(EventKind.CANCELLED, t, at, "cancelled"))
            del self._jobs[t.job_id]

    def _scancel(self, slurm_ids: Iterable[int]) -> None:
        self.runner.run(["scancel", *[str(i) for i in slurm_ids]])

    def _stop_event(self, kind: EventKind, t: _Tracked, at: float, reason: str,
                    **extra: str) -> JobEvent:
        return JobEvent(kind, at, job_id=t.job_id, reason=reason,
                        extra={"slurm_job_id": str(t.slurm_id), **extra})

    # --- state and events ---------------------------------------------------------------------

    def _our_jobs(self, doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
        """aicc job id -> the newest squeue record of it."""
        out: dict[int, dict[str, Any]] = {}
        for rec in doc.get("jobs") or []:
            m = self._name_re.match(str(rec.get("name") or ""))
            if m is None:
                continue
            jid = int(m.group(1))
            if jid not in out or int(rec["job_id"]) > int(out[jid]["job_id"]):
                out[jid] = rec
        return out

    def _reconcile(self) -> None:
        """Adopt the jobs Slurm holds for this prefix (after a restart of aicc)."""
        for jid, rec in self._our_jobs(self.runner.json(["squeue"])).items():
            state = str(rec.get("job_state"))
            if state in TERMINAL_STATES:
                continue
            t = _Tracked(jid, int(rec["job_id"]), None, "held",
                         restart_cnt=int(rec.get("restart_cnt") or 0))
            if state == "RUNNING" or (state == "COMPLETING" and rec.get("start_time")):
                t.phase = "running"
                t.nodes = tuple(expand_hostlist(str(rec.get("nodes") or "")))
                t.start_time = float(rec.get("start_time") or 0)
            elif int(rec.get("priority") or 0) != 0:  # pending but not held: released
                t.phase = "released"
            elif t.restart_cnt > 0:  # held after a requeue (preempted)
                t.phase = "stopped"
            self._jobs[jid] = t

    def adopt(self, order: StartOrder, start_time: float) -> bool:
        """Re-establish a job the store says has been running since ``start_time`` (after a
        restart of aicc). True when Slurm still knows it — running, or ended while aicc was
        away, which the next poll then reports with Slurm's own end time (read from ``sacct``
        when slurmctld has forgotten it); False when Slurm never heard of it."""
        jid = order.spec.job_id
        t = self._jobs.get(jid)
        if t is not None:
            t.spec = order.spec
            return True
        rec = self._our_jobs(self.runner.json(["squeue"])).get(jid)
        if rec is not None:
            slurm_id = int(rec["job_id"])
        else:
            found = self.runner.json(["sacct", "-D", "--name", self.job_name(jid),
                                      "-S", "now-30days"]).get("jobs") or []
            if not found:
                return False
            slurm_id = max(int(r["job_id"]) for r in found)
        # "running": the store already announced its start, so no second started event.
        self._jobs[jid] = _Tracked(jid, slurm_id, order.spec, "running",
                                   nodes=tuple(order.nodes), start_time=start_time)
        return True

    def poll(self, now: float) -> list[JobEvent]:
        """Events since the last poll, in time order (Slurm is asked at most every interval)."""
        events, self._queued = self._queued, []
        wall = self.wall_clock()
        if wall - self._last_poll < self.poll_interval_s:
            return sorted(events, key=lambda e: e.time)
        self._last_poll = wall
        try:
            self._refresh_nodes(wall)
            events += self._node_events(wall)
            events += self._poll_jobs(wall)
            self.last_error = None
        except EngineError as exc:  # slurmctld restarting: try again next time
            self.last_error = exc.message
            log.warning("Slurm poll failed, retrying next interval: %s", exc.message)
        return sorted(events, key=lambda e: e.time)

    def _poll_jobs(self, wall: float) -> list[JobEvent]:
        watching = {j: t for j, t in self._jobs.items() if t.phase in {"released", "running"}}
        if not watching:
            return []
        seen = self._our_jobs(self.runner.json(["squeue"]))
        events: list[JobEvent] = []
        missing: list[_Tracked] = []
        for jid, t in watching.items():
            rec = seen.get(jid)
            if rec is None or (t.slurm_id and int(rec["job_id"]) != t.slurm_id):
                missing.append(t)
                continue
            t.slurm_id = int(rec["job_id"])
            events += self._advance(t, _squeue_view(rec), wall)
        if missing:
            events += self._from_sacct(missing, wall)
        return events

    def _from_sacct(self, missing: list[_Tracked], wall: float) -> list[JobEvent]:
        """Jobs slurmctld no longer shows: their end, from the accounting database."""
        ids = [t for t in missing if t.slurm_id]
        names = [t for t in missing if not t.slurm_id]
        found: dict[int, dict[str, Any]] = {}
        args = ["sacct", "-D"]
        if ids:
            args += ["-j", ",".join(str(t.slurm_id) for t in ids)]
        else:
            args += ["--name", ",".join(self.job_name(t.job_id) for t in names), "-S", "now-7days"]
        for rec in self.runner.json(args).get("jobs") or []:
            m = self._name_re.match(str(rec.get("name") or ""))
            if m is None:
                continue
            jid = int(m.group(1))
            if jid not in found or int(rec["job_id"]) >= int(found[jid]["job_id"]):
                found[jid] = rec
        events: list[JobEvent] = []
        for t in missing:
            rec = found.get(t.job_id)
            if rec is None:
                if t.slurm_id:  # neither slurmctld nor the database knows it
                    events.append(self._stop_event(EventKind.FAILED, t, wall,
                                                   "job vanished from Slurm"))
                    t.phase = "ended"
                    del self._jobs[t.job_id]
                continue
            t.slurm_id = int(rec["job_id"])
            events += self._advance(t, _sacct_view(rec), wall)
        return events

    def _advance(self, t: _Tracked, v: _View, wall: float) -> list[JobEvent]:
        """Turn one observation of a job into events, updating what we know of it."""
        events: list[JobEvent] = []
        extra = {"slurm_job_id": str(t.slurm_id)}
        if t.phase == "running" and v.state == "PENDING" and v.restart_cnt > t.restart_cnt:
            # Requeued by Slurm itself (node failure, its own preemption): hold it for aicc.
            try:
                self.runner.run(["scontrol", "hold", str(t.slurm_id)])
            except EngineError as exc:
                log.warning("could not hold requeued job %s: %s", t.slurm_id, exc.message)
            t.phase, t.restart_cnt = "stopped", v.restart_cnt
            events.append(JobEvent(EventKind.PREEMPTED, wall, job_id=t.job_id,
                                   reason=f"requeued by Slurm ({v.reason})",
                                   extra={**extra, "action": "requeue"}))
            return events
        started = v.start_time > 0 and (v.state in {"RUNNING", "COMPLETING"}
                                        or v.state in TERMINAL_STATES)
        if t.phase == "released" and started:
            t.phase, t.start_time = "running", v.start_time
            t.nodes = tuple(v.nodes) or t.nodes
            t.restart_cnt = v.restart_cnt
            t.running_seen_at = wall
            if t.released_at:
                self.latencies.append(max(0.0, wall - t.released_at))
            events.append(JobEvent(EventKind.STARTED, v.start_time, job_id=t.job_id,
                                   extra={**extra, "nodes": ",".join(t.nodes)}))
        if v.state not in TERMINAL_STATES:
            return events
        end = v.end_time or wall
        if v.state in FINISHED_STATES:
            kind, reason = EventKind.FINISHED, ""
        elif v.state in CANCELLED_STATES:
            kind, reason = EventKind.CANCELLED, "cancelled in Slurm"
        elif v.state in PREEMPTED_STATES:
            kind, reason = EventKind.PREEMPTED, "preempted by Slurm"
        else:
            kind, reason = EventKind.FAILED, _failure_reason(v)
        lost = 0.0
        if kind is EventKind.FAILED and t.spec is not None and t.start_time:
            lost = max(0.0, end - t.start_time) * t.spec.nodes * t.spec.per_node
        events.append(JobEvent(kind, max(end, t.start_time), job_id=t.job_id, reason=reason,
                               lost_s=lost, extra={**extra, "slurm_state": v.state,
                                                   "exit_code": str(v.exit_code)}))
        t.phase = "ended"
        del self._jobs[t.job_id]
        return events

    def running(self) -> list[RunningJob]:
        return [RunningJob(t.job_id, t.nodes, t.start_time)
                for t in sorted(self._jobs.values(), key=lambda x: x.job_id)
                if t.phase == "running"]

    def slurm_job_id(self, job_id: int) -> int | None:
        t = self._jobs.get(job_id)
        return t.slurm_id if t is not None and t.slurm_id else None

    def cancel_all(self) -> None:
        """Cancel every job with this engine's prefix (tests and operators' clean-up)."""
        ids = [str(r["job_id"]) for r in (self.runner.json(["squeue"]).get("jobs") or [])
               if self._name_re.match(str(r.get("name") or ""))
               and str(r.get("job_state")) not in TERMINAL_STATES]
        if ids:
            self.runner.run(["scancel", *ids])
        self._jobs.clear()
        self._queued.clear()

    def close(self) -> None:
        """Nothing to release: jobs keep running in Slurm, and a new engine adopts them."""


@dataclass(frozen=True, slots=True)
class _View:
    """One observation of a Slurm job, from squeue or sacct (whose JSON shapes differ)."""

    state: str
    start_time: float
    end_time: float
    nodes: list[str]
    restart_cnt: int
    exit_code: int
    reason: str


def _squeue_view(rec: dict[str, Any]) -> _View:
    return _View(state=str(rec.get("job_state") or "UNKNOWN").split()[0],
                 start_time=float(rec.get("start_time") or 0),
                 end_time=float(rec.get("end_time") or 0),
                 nodes=expand_hostlist(str(rec.get("nodes") or "")),
                 restart_cnt=int(rec.get("restart_cnt") or 0),
                 exit_code=_int(rec.get("exit_code")),
                 reason=str(rec.get("state_reason") or ""))


def _sacct_view(rec: dict[str, Any]) -> _View:
    st = rec.get("state") or {}
    tm = rec.get("time") or {}
    ec = rec.get("exit_code") or {}
    return _View(state=str(st.get("current") or "UNKNOWN").split()[0],
                 start_time=float(tm.get("start") or 0), end_time=float(tm.get("end") or 0),
                 nodes=expand_hostlist(str(rec.get("nodes") or "")),
                 restart_cnt=0,
                 exit_code=_int(ec.get("return_code") if isinstance(ec, dict) else ec),
                 reason=str(st.get("reason") or ""))


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _failure_reason(v: _View) -> str:
    if v.state == "TIMEOUT" or TIMEOUT_EXIT in (v.exit_code, v.exit_code >> 8):
        return "time limit reached"
    if v.state == "NODE_FAIL":
        return "node failure"
    if v.state == "OUT_OF_MEMORY":
        return "out of memory"
    return f"{v.state.lower()} (exit code {v.exit_code})"


def _already_gone(exc: EngineError) -> bool:
    text = exc.message.lower()
    return "already completing or completed" in text or "invalid job id" in text \
        or "job has already finished" in text or "already completed" in text


def args_account(args: list[str]) -> str:
    for a in args:
        if a.startswith("--account="):
            return a.split("=", 1)[1]
    raise AssertionError("sbatch arguments without --account")
