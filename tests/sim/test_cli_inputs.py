"""``aicc simulate``: every input refused up front with one line naming its option or file, no
input silently ignored, the report folder made only for a valid command, and jobs left
unfinished shown."""

from __future__ import annotations

import json

import pytest

from aicc.sim.report import file_names

from .cli_helpers import one_line_error, philly_slice, sim

SYN = ["--synthetic-days", "1", "--fleet", "lab", "--quiet"]


def test_a_folder_as_tenant_map_names_tenant_map_not_report(tmp_path):
    folder = tmp_path / "somedir"
    folder.mkdir()
    line = one_line_error(sim(*SYN, "--tenant-map", str(folder)))
    assert "--tenant-map" in line and str(folder) in line and "--report" not in line


def test_a_tenant_map_that_does_not_exist_or_is_not_toml_names_tenant_map(tmp_path):
    line = one_line_error(sim(*SYN, "--tenant-map", str(tmp_path / "none.toml")))
    assert f"--tenant-map {tmp_path / 'none.toml'}" in line and "does not exist" in line
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[x")
    line = one_line_error(sim(*SYN, "--tenant-map", str(bad)))
    assert f"--tenant-map {bad}" in line and "not valid TOML" in line


@pytest.mark.parametrize("body, entry", [
    ('[defaults]\nsector = "indusrty"\n', "defaults"),
    ('[tenant."industry-org00"]\nsector = "indusrty"\n', "tenant.industry-org00"),
    # a tenant the workload does not have: the typo is still refused
    ('[tenant.nobody]\nsector = "indusrty"\n', "tenant.nobody")])
def test_an_unknown_sector_in_the_tenant_map_is_an_input_error(tmp_path, body, entry, runs):
    p = tmp_path / "map.toml"
    p.write_text(body)
    line = one_line_error(sim(*SYN, "--tenant-map", str(p)), code=2)
    assert entry in line and "'indusrty'" in line and "industry, research, public" in line
    assert "--tenant-map" in line and runs == []


def test_the_tenant_map_replaces_the_synthetic_sector_mapping(tmp_path):
    p = tmp_path / "map.toml"
    p.write_text('[defaults]\nsector = "public"\n')
    r = sim(*SYN, "--tenant-map", str(p), "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["fairshare"]
    assert s["sectors"]["public"]["jobs"] == s["jobs"] > 0
    assert {v[0] for v in s["extra"]["tenants"].values()} == {"public"}


def test_target_load_out_of_reach_for_any_fleet_is_refused_before_the_first_run(tmp_path, runs):
    trace = philly_slice(tmp_path, 500)
    # reachable on 32 accelerators, out of reach on the lab fleet's 256
    line = one_line_error(sim("--trace", str(trace), "--fleet", "4xh100-sxm-80g,lab",
                                "--target-load", "0.7", "--quiet"))
    assert "fleet lab" in line and "--target-load 0.7 is out of reach" in line
    assert runs == []  # nothing was simulated


def test_fleet_errors_name_fleet_and_the_file(tmp_path):
    garbage = tmp_path / "x.toml"
    garbage.write_text("garbage\n")
    line = one_line_error(sim("--synthetic-days", "1", "--quiet", "--fleet", str(garbage)))
    assert f"--fleet {garbage}" in line and "not valid TOML" in line
    missing = tmp_path / "missing.toml"
    line = one_line_error(sim("--synthetic-days", "1", "--quiet", "--fleet", str(missing)))
    assert f"--fleet {missing}: file not found" in line and "unknown fleet" not in line
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    line = one_line_error(sim("--synthetic-days", "1", "--quiet", "--fleet", str(empty)))
    assert line.count(str(empty)) == 1 and "no [phase.NAME] table" in line
    line = one_line_error(sim("--synthetic-days", "1", "--quiet", "--fleet", "4xfoo-gpu"))
    assert "--fleet 4xfoo-gpu" in line and "unknown accelerator type 'foo-gpu'" in line


def test_substitute_errors_name_substitute():
    line = one_line_error(sim(*SYN, "--substitute", "V100=nope"))
    assert "--substitute V100=nope" in line and "unknown accelerator type 'nope'" in line
    # a type the (second) fleet lacks is refused before the first fleet runs
    line = one_line_error(sim("--synthetic-days", "1", "--quiet", "--fleet",
                                "8xb200,8xh100-sxm-80g", "--substitute", "*=b200"))
    assert "--substitute *=b200" in line and "8xh100-sxm-80g" in line


@pytest.mark.parametrize("opts, option", [
    (["--substitute", "V100=h100-sxm-80g,V100=h200-141g"], "--substitute"),
    (["--compare", "fifo,fifo"], "--compare"),
    (["--policy", "fifo,fifo"], "--policy"),
    (["--fleet", "lab,lab"], "--fleet"),
    (["--policy", "fifo", "--compare", "fifo,fairshare"], "--policy"),
    (["--columns", "submit=a,gpus=b,duration=c"], "--columns"),
    (["--format", "philly"], "--format"),
    (["--format", "auto"], "--format")])
def test_ignored_or_duplicate_input_is_refused_naming_the_option(opts, option, runs):
    fleet = [] if "--fleet" in opts else ["--fleet", "lab"]
    line = one_line_error(sim("--synthetic-days", "1", "--quiet", *fleet, *opts))
    assert option in line and runs == []


def test_a_refused_command_leaves_no_report_folder(tmp_path):
    rep = tmp_path / "rep"
    r = sim("--trace", str(tmp_path / "none.csv"), "--quiet", "--report", str(rep))
    assert r.exit_code == 2 and not rep.exists(), r.output
    r = sim(*SYN, "--compare", "fifo,fifo", "--report", str(rep))
    assert r.exit_code == 2 and not rep.exists(), r.output


def test_a_new_report_removes_the_run_files_of_an_earlier_one(tmp_path):
    rep = tmp_path / "rep"
    r = sim(*SYN, "--compare", "fifo,fairshare", "--report", str(rep))
    assert r.exit_code == 0, r.output
    assert (rep / "jobs-fairshare.parquet").exists()
    (rep / "notes.txt").write_text("mine")
    r = sim(*SYN, "--policy", "fifo", "--report", str(rep))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in rep.iterdir()) == [
        "jobs-fifo.parquet", "notes.txt", "report.html", "series-fifo.parquet", "summary.json"]
    assert json.loads((rep / "summary.json").read_text())["policy"] == "fifo"


def test_run_file_names_never_collide():
    assert file_names(["fifo@a b", "fifo@a_b", "fifo@a_b-2"]) == [
        "fifo@a_b", "fifo@a_b-2", "fifo@a_b-2-2"]


def _table(stdout: str) -> dict[str, dict[str, str]]:
    """The comparison table as {run: {column: cell}} (piped: one line per row, never cut)."""
    lines = stdout.splitlines()
    k = next(i for i, line in enumerate(lines) if "utilisation" in line)
    head = [c.strip() for c in lines[k].strip("┃ ").split("┃")]
    rows = {}
    for line in lines[k + 2:]:
        if not line.startswith("│"):
            break
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        rows[cells[0]] = dict(zip(head, cells, strict=True))
    return rows


def test_the_table_shows_unfinished_jobs_and_failures_and_warns_of_jobs_never_started(
        tmp_path):
    r = sim(*SYN, "--compare", "fifo,fairshare", "--failures", "--failure-scale", "2000")
    assert r.exit_code == 0, r.output
    table = _table(r.stdout)
    assert set(table) == {"fifo", "fairshare"}, r.stdout
    for row in table.values():
        assert row["not ended"] == "0" and int(row["node failures"].replace(",", "")) > 0
        assert row["failed jobs"].replace(",", "").isdigit()
    assert "never started" not in r.output  # every job ran

    # stopped after a day: of two ten-day jobs of a whole node submitted at once on one node,
    # one runs and one waits (never started); a third, due on day 5, was never submitted and
    # never waited: the warning counts the waiting one alone; the table's "not ended" all
    # three (running, pending or never submitted when the run stopped)
    trace = tmp_path / "stop.csv"
    trace.write_text("s,d,g,t\n0,864000,8,a\n0,864000,8,a\n432000,100,1,a\n")
    args = ["--trace", str(trace), "--columns", "submit=s,duration=d,gpus=g,tenant=t",
            "--fleet", "1xh100-sxm-80g", "--policy", "fifo", "--quiet", "--until-days", "1"]
    r = sim(*args, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["fifo"]  # stdout stays JSON: the warning is on stderr
    assert s["states"] == {"running": 1, "pending": 1, "unsubmitted": 1}, s["states"]
    warning = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "fifo: 1 of 3 jobs never started" in warning[0], r.stderr
    r = sim(*args)
    assert _table(r.stdout)["fifo"]["not ended"] == "3"
    assert "never started" in r.stderr
