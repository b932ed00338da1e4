"""``--fleet FILE.toml``: a phases file of several phases is refused unless one is chosen
(``FILE.toml:PHASE``), listing them; a file of one phase keeps working."""

from __future__ import annotations

import json

import pytest

from aicc.fleet.phases import parse_phases
from aicc.sim.scenario import parse_fleet

from .cli_helpers import one_line_error, sim

TWO = """
[phase.a]
nodes_per_leaf = 2
groups = [ { type = "h100-sxm-80g", nodes = 4 } ]
[phase.b]
groups = [ { type = "h100-sxm-80g", nodes = 8 } ]
"""


@pytest.fixture
def two(tmp_path):
    p = tmp_path / "f2.toml"
    p.write_text(TWO)
    return p


def test_a_file_of_several_phases_is_refused_listing_them(two, runs):
    line = one_line_error(sim("--synthetic-days", "0.2", "--fleet", str(two), "--quiet"))
    assert line == (f"error: --fleet {two}: the file has 2 phases (a, b); choose one: "
                    f"--fleet {two}:a"), line
    assert runs == []


def test_a_phase_is_chosen_by_name(two):
    assert parse_fleet(f"{two}:a").n_accelerators == 32
    assert parse_fleet(f"{two}:b").n_accelerators == 64
    r = sim("--synthetic-days", "0.2", "--fleet", f"{two}:a,{two}:b", "--policy", "fifo",
            "--quiet", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [s["fleet"]["accelerators"] for s in out.values()] == [32, 64]
    assert list(out) == [f"fifo@{two}:a", f"fifo@{two}:b"]


@pytest.mark.parametrize(("suffix", "message"), [
    (":z", "no phase 'z' in {p}; its phases: a, b"),
    (":", "no phase named after ':'"),
])
def test_an_unknown_or_empty_phase_name_is_refused(two, suffix, message):
    line = one_line_error(sim("--synthetic-days", "0.2", "--fleet", f"{two}{suffix}"))
    assert line.startswith(f"error: --fleet {two}{suffix}: {message.format(p=two)}"), line


def test_a_missing_file_with_a_phase_name_is_file_not_found(tmp_path):
    spec = f"{tmp_path / 'nope.toml'}:a"
    line = one_line_error(sim("--synthetic-days", "0.2", "--fleet", spec))
    assert line == f"error: --fleet {spec}: file not found", line  # printed as written


def test_a_single_phase_file_keeps_working_with_or_without_its_name(tmp_path):
    p = tmp_path / "one.toml"
    p.write_text('[phase.only]\ngroups = [ { type = "h100-sxm-80g", nodes = 2 } ]\n')
    assert parse_fleet(str(p)).n_accelerators == 16
    assert parse_fleet(f"{p}:only").n_accelerators == 16


def test_phase_node_limits_are_those_of_a_custom_fleet():
    ok = parse_phases('[phase.x]\ngroups = [{ type = "h100-sxm-80g", nodes = 2, '
                      "accelerators_per_node = 1024 }]\n")
    assert ok["x"].n_accelerators == 2048
    assert parse_fleet("2xh100-sxm-80g@1024").n_accelerators == 2048
    for body in ("nodes = 2, accelerators_per_node = 1025", "nodes = 100001"):
        with pytest.raises(Exception, match="less than or equal"):
            parse_phases(f'[phase.x]\ngroups = [{{ type = "h100-sxm-80g", {body} }}]\n')


@pytest.mark.parametrize(("text", "message"), [
    ("[phase.a]\ngroups = []\n", "phase.a.groups: Tuple should have at least 1 item"),
    ('[phase.a]\ngroups = [{ type = "h100-sxm-80g", nodes = true }]\n',
     "phase.a.groups.0.nodes: Input should be a valid integer"),
    ('[phase.a]\ngroups = [{ type = "h100-sxm-80g", nodes = "2" }]\n',
     "phase.a.groups.0.nodes: Input should be a valid integer"),
    ('[other]\n[phase.a]\ngroups = [{ type = "h100-sxm-80g", nodes = 2 }]\n',
     "other: unknown table or key"),
    ('[phase.a]\nname = "z"\ngroups = [{ type = "h100-sxm-80g", nodes = 2 }]\n',
     "phase.a: a phase is named by its table"),
    ('[phase.a]\ngroups = { type = "h100-sxm-80g", nodes = 2 }\n',
     "phase.a.groups: an array of node groups"),
])
def test_a_phase_file_is_read_strictly_before_any_run(tmp_path, runs, text, message):
    """No nodes, a count given as a flag or as text, a table the file does not define and a
    second name are refused naming --fleet and the file, before the first fleet runs."""
    p = tmp_path / "f.toml"
    p.write_text(text)
    line = one_line_error(sim("--synthetic-days", "0.2", "--quiet", "--fleet",
                              f"8xh100-sxm-80g,{p}"))
    assert line.startswith(f"error: --fleet {p}: {message}"), line
    assert runs == []


def test_synthetic_days_that_generate_no_job_are_named(runs):
    line = one_line_error(sim("--synthetic-days", "1e-9", "--fleet", "lab", "--quiet"))
    assert line.startswith("error: --synthetic-days 1e-09: no job was generated"), line
    assert runs == []
