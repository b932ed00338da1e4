"""The Slurm engine against a real localhost Slurm 22.05: the engine contract (the same suite
the twin passes), then what only Slurm does — held submission, pinning, requeue, restarts of
aicc and of slurmctld."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from aicc.config import EngineConfig, load_settings
from aicc.engines import make_engine
from aicc.engines.base import Engine, EventKind
from aicc.engines.slurm import SlurmEngine, SlurmRunner, from_config
from aicc.engines.slurm.discovery import list_nodes
from aicc.errors import ConfigError, EngineError
from aicc.fleet import build_fleet
from aicc.fleet.arrays import NODE_UP
from engines.conftest import LAB_SCRIPT
from engines.contract import EngineContract, EngineHarness, FleetRequest, collect, of, order, spec

pytestmark = pytest.mark.slurm

TYPE = "h100-sxm-80g"


def _resume_down_nodes(runner: SlurmRunner) -> None:
    """Bring nodes a test took down back, and wait until slurmctld hears from them again."""
    for _ in range(100):
        bad = [n for n in runner.json(["sinfo"])["nodes"]
               if n["state"] in {"down", "drain", "unknown"} or n.get("state_flags")]
        if not bad:
            return
        for n in bad:
            if n["state"] == "down" or "DRAIN" in n.get("state_flags", []):
                subprocess.run(["scontrol", "update", f"NodeName={n['name']}", "State=RESUME"],
                               env=runner.env, capture_output=True, check=False)
        time.sleep(0.2)
    pytest.fail(f"nodes did not come back: {bad}")


@pytest.fixture
def runner(slurm_conf: str) -> SlurmRunner:
    return SlurmRunner(slurm_conf, timeout_s=20)


@pytest.fixture
def engines(runner: SlurmRunner, slurm_prefix: str) -> Iterator[list[SlurmEngine]]:
    """Engines made in a test; their jobs are cancelled and failed nodes resumed afterwards."""
    made: list[SlurmEngine] = []
    yield made
    if made:
        made[0].cancel_all()
    _resume_down_nodes(runner)


def new_engine(runner: SlurmRunner, prefix: str, made: list[SlurmEngine]) -> SlurmEngine:
    e = SlurmEngine(runner, prefix=prefix, poll_interval_s=0.2)
    made.append(e)
    return e


class TestSlurmContract(EngineContract):
    @pytest.fixture
    def make_harness(self, runner: SlurmRunner, slurm_prefix: str,
                     engines: list[SlurmEngine]):
        def make(req: FleetRequest) -> EngineHarness:
            engine = new_engine(runner, slurm_prefix, engines)

            def fail_node(node: str, now: float) -> None:
                runner.run(["scontrol", "update", f"NodeName={node}", "State=DOWN",
                            "Reason=contract: injected failure"])

            # Slurm stamps whole seconds and its scheduler takes a moment to act.
            return EngineHarness(engine=engine, now=time.time, advance=time.sleep,
                                 fail_node=fail_node, max_wait_s=45.0, tick_s=0.25,
                                 time_tolerance_s=1.5)
        return make


# --- discovery and configuration ---------------------------------------------------------------


def test_the_first_poll_reports_every_node_and_later_polls_only_changes(
        runner: SlurmRunner, slurm_prefix: str, engines: list[SlurmEngine]) -> None:
    """A restarted aicc learns each node's Slurm state at its first poll (its store may be
    behind: a node drained or returned while it was away), and a look at the fleet between
    polls does not swallow a change."""
    engine = new_engine(runner, slurm_prefix, engines)
    engine.fleet()
    first = [e for e in engine.poll(time.time()) if e.node]
    states = {n.name: n.state for n in list_nodes(runner)}
    assert sorted(e.node for e in first) == sorted(states)
    assert all((e.kind == EventKind.NODE_UP) == (states[e.node] == NODE_UP) for e in first)
    time.sleep(0.25)
    engine.fleet()
    assert [e for e in engine.poll(time.time()) if e.node] == []


def test_fleet_is_discovered_from_slurm(runner: SlurmRunner, slurm_prefix: str,
                                        engines: list[SlurmEngine]) -> None:
    engine = new_engine(runner, slurm_prefix, engines)
    assert isinstance(engine, Engine)
    fleet = engine.fleet()
    assert fleet.names == ["n1", "n2", "n3", "n4"]
    assert fleet.accelerators_by_type() == {TYPE: 32}
    assert [fleet.leaf_names[i] for i in fleet.leaf] == ["leaf1", "leaf1", "leaf2", "leaf2"]
    assert fleet.pod_names == ["spine1"]
    assert (fleet.state == NODE_UP).all()


def test_gres_map_from_config_maps_types(runner: SlurmRunner, slurm_conf: str,
                                         slurm_prefix: str) -> None:
    cfg = EngineConfig(kind="slurm", slurm_conf=slurm_conf, slurm_job_prefix=slurm_prefix,
                       slurm_gres_map={"h100": "h200-141g"})
    engine = from_config(cfg)
    assert engine.fleet().accelerators_by_type() == {"h200-141g": 32}
    bad = EngineConfig(kind="slurm", slurm_conf=slurm_conf, slurm_gres_map={"h100": "nope"})
    with pytest.raises(Exception, match="nope"):
        from_config(bad)


def test_engine_is_built_by_name_from_settings(slurm_conf: str, tmp_path) -> None:
    toml = tmp_path / "aicc.toml"
    toml.write_text(f'[engine]\nkind = "slurm"\nslurm_conf = "{slurm_conf}"\n'
                    'slurm_poll_interval_s = 0.5\n')
    settings = load_settings(toml, env={})
    engine = make_engine("slurm", build_fleet("lab"), settings)
    assert isinstance(engine, SlurmEngine) and engine.poll_interval_s == 0.5
    assert engine.fleet().n_accelerators == 32
    toml.write_text('[engine]\nkind = "slurm"\nslurm_job_prefix = "bad prefix!"\n')
    with pytest.raises(ConfigError, match=r"engine\.slurm_job_prefix"):
        load_settings(toml, env={})


# --- submission --------------------------------------------------------------------------------


def _squeue(runner: SlurmRunner, slurm_id: int) -> dict:
    [rec] = [j for j in runner.json(["squeue"])["jobs"] if j["job_id"] == slurm_id]
    return rec


def test_submit_held_then_start_pins_and_releases(runner: SlurmRunner, slurm_prefix: str,
                                                  engines: list[SlurmEngine]) -> None:
    engine = new_engine(runner, slurm_prefix, engines)
    s = spec(21, TYPE, runtime=2.0, nodes=2, per_node=3)
    slurm_id = engine.submit_held(s)
    rec = _squeue(runner, slurm_id)
    assert rec["job_state"] == "PENDING" and rec["priority"] == 0  # held
    assert rec["name"] == f"{slurm_prefix}-21" and rec["comment"] == f"{slurm_prefix}:21"
    assert rec["account"] == "contract" and rec["node_count"] == 2
    assert rec["tres_per_node"] == "gres:gpu:h100:3" and rec["time_limit"] == 1
    assert engine.submit_held(s) == slurm_id  # idempotent
    engine.start([order(s, ["n2", "n4"])], time.time())
    h = EngineHarness(engine, time.time, time.sleep, max_wait_s=30, tick_s=0.25)
    events = collect(h, lambda ev: bool(of(ev, 21, EventKind.FINISHED)), what="finish")
    [started] = of(events, 21, EventKind.STARTED)
    assert started.extra["nodes"] == "n2,n4" and started.extra["slurm_job_id"] == str(slurm_id)
    assert engine.latencies and engine.latencies[0] < 30


def test_a_command_script_runs_and_its_failure_is_reported(
        runner: SlurmRunner, slurm_prefix: str, engines: list[SlurmEngine], tmp_path) -> None:
    engine = new_engine(runner, slurm_prefix, engines)
    engine.output_dir = str(tmp_path)
    ok = replace(spec(31, TYPE, per_node=2), script='echo "gpus=$CUDA_VISIBLE_DEVICES"')
    bad = replace(spec(32, TYPE), script="exit 3")
    engine.start([order(ok, ["n3"]), order(bad, ["n3"])], time.time())
    h = EngineHarness(engine, time.time, time.sleep, max_wait_s=30, tick_s=0.25)
    events = collect(h, lambda ev: len([e for e in ev if e.kind in
                                        (EventKind.FINISHED, EventKind.FAILED)]) == 2)
    assert of(events, 31, EventKind.FINISHED)
    [failed] = of(events, 32, EventKind.FAILED)
    assert failed.extra["slurm_state"] == "FAILED" and "exit code" in failed.reason
    [out] = list(tmp_path.glob(f"{slurm_prefix}-31-*.out"))
    assert out.read_text().strip() == "gpus=0,1"


def test_preempting_a_job_that_is_not_preemptible_cancels_it(
        runner: SlurmRunner, slurm_prefix: str, engines: list[SlurmEngine]) -> None:
    engine = new_engine(runner, slurm_prefix, engines)
    keep = spec(41, TYPE, runtime=600.0, limit=1200.0, preemptible=True)
    kill = spec(42, TYPE, runtime=600.0, limit=1200.0, preemptible=False)
    engine.start([order(keep, ["n1"]), order(kill, ["n1"])], time.time())
    h = EngineHarness(engine, time.time, time.sleep, max_wait_s=30, tick_s=0.25)
    collect(h, lambda ev: len(of_kind(ev, EventKind.STARTED)) == 2, what="starts")
    ids = {j: engine.slurm_job_id(j) for j in (41, 42)}
    engine.preempt([41, 42], time.time(), reason="test")
    events = engine.poll(time.time())
    assert {(e.job_id, e.extra["action"]) for e in events} == {(41, "requeue"), (42, "cancel")}
    time.sleep(1.0)
    recs = {j["job_id"]: j for j in runner.json(["squeue"])["jobs"]}
    assert recs[ids[41]]["job_state"] == "PENDING" and recs[ids[41]]["restart_cnt"] == 1
    assert recs[ids[42]]["job_state"] == "CANCELLED"
    # The requeued job starts again, on other nodes, as the same Slurm job.
    engine.start([order(keep, ["n2"])], time.time())
    events = collect(h, lambda ev: bool(of(ev, 41, EventKind.STARTED)), what="restart")
    assert of(events, 41, EventKind.STARTED)[0].extra["nodes"] == "n2"
    assert engine.slurm_job_id(41) == ids[41]


def of_kind(events, kind):
    return [e for e in events if e.kind == kind]


# --- restarts ----------------------------------------------------------------------------------


def test_a_restarted_aicc_finds_its_jobs(runner: SlurmRunner, slurm_prefix: str,
                                         engines: list[SlurmEngine]) -> None:
    first = new_engine(runner, slurm_prefix, engines)
    long_job = spec(51, TYPE, runtime=600.0, limit=1200.0)
    short_job = spec(52, TYPE, runtime=1.0)
    first.start([order(long_job, ["n4"]), order(short_job, ["n4"])], time.time())
    h = EngineHarness(first, time.time, time.sleep, max_wait_s=30, tick_s=0.25)
    collect(h, lambda ev: len(of_kind(ev, EventKind.STARTED)) == 2, what="starts")
    first.close()
    time.sleep(2.5)  # the short job ends while "aicc" is down
    second = new_engine(runner, slurm_prefix, engines)
    assert [r.job_id for r in second.running()] == [51]
    assert second.running()[0].nodes == ("n4",)
    # The store says 52 was running: adopting it reports its end, without a second start.
    assert second.adopt(order(short_job, ["n4"]), start_time=time.time() - 3)
    assert not second.adopt(order(spec(53, TYPE), ["n4"]), start_time=time.time())
    h2 = EngineHarness(second, time.time, time.sleep, max_wait_s=30, tick_s=0.25)
    events = collect(h2, lambda ev: bool(of(ev, 52)), what="end of the adopted job")
    assert [e.kind for e in of(events, 52)] == [EventKind.FINISHED]
    second.cancel([51], time.time())
    assert [e.kind for e in second.poll(time.time())] == [EventKind.CANCELLED]


def test_events_survive_a_restart_of_slurmctld(slurm_lab: tuple[str, bool], runner: SlurmRunner,
                                               slurm_prefix: str,
                                               engines: list[SlurmEngine]) -> None:
    if not slurm_lab[1]:
        pytest.skip("slurmctld belongs to an external cluster here; not restarting it")
    engine = new_engine(runner, slurm_prefix, engines)
    engine.start([order(spec(61, TYPE, runtime=4.0), ["n1"])], time.time())
    h = EngineHarness(engine, time.time, time.sleep, max_wait_s=40, tick_s=0.25)
    events = collect(h, lambda ev: bool(of(ev, 61, EventKind.STARTED)), what="start")
    proc = subprocess.run(["bash", str(LAB_SCRIPT), "restart-ctld"], capture_output=True,
                          text=True, check=False, env={**runner.env})
    assert proc.returncode == 0, proc.stderr
    events = collect(h, lambda ev: bool(of(ev, 61, EventKind.FINISHED)), events, what="finish")
    assert [e.kind for e in of(events, 61)] == [EventKind.STARTED, EventKind.FINISHED]


# --- the runner --------------------------------------------------------------------------------


def test_runner_errors_carry_slurms_stderr(runner: SlurmRunner) -> None:
    with pytest.raises(EngineError, match="Invalid job id") as info:
        runner.run(["scontrol", "update", "JobId=99999999", "NodeList=n1"])
    assert info.value.details["returncode"] != 0
    with pytest.raises(EngineError, match="not found"):
        runner.run(["sbatch-does-not-exist"])
    with pytest.raises(EngineError, match="did not answer within"):
        runner.run(["sleep", "5"], timeout_s=0.2)
