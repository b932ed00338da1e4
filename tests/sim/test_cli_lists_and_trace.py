"""``aicc simulate``: comma lists with an empty item or an empty value, a ``--columns`` key
given twice, and every ``--trace`` error are refused naming the option; ``--max-jobs`` counts
jobs larger than the fleet among its N and the row account says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli_helpers import one_line_error, sim

SYN = ["--synthetic-days", "1", "--quiet"]
COLS = "submit=ts,duration=run,gpus=n"





@pytest.fixture
def trace(tmp_path) -> Path:
    p = tmp_path / "t.csv"
    p.write_text("ts,run,n,gpu_time\n0,100,1,100\n10,100,2,200\n20,100,4,400\n")
    return p


@pytest.mark.parametrize("opts, option, words", [
    (["--fleet", "lab,"], "--fleet", "empty item"),
    (["--fleet", "lab,,2030"], "--fleet", "empty item"),
    (["--fleet", "lab", "--compare", "fifo,"], "--compare", "empty item"),
    (["--fleet", "lab", "--compare", " ,fifo"], "--compare", "empty item"),
    (["--fleet", "lab", "--policy", "fifo,"], "--policy", "empty item"),
    (["--fleet", "lab", "--substitute", "V100=b200,"], "--substitute", "empty item"),
    (["--fleet", "lab", "--substitute", ""], "--substitute", "empty")])
def test_an_empty_item_or_value_in_a_list_option_is_refused(opts, option, words, runs):
    line = one_line_error(sim(*SYN, *opts))
    assert line.startswith(f"error: {option}: {words}") and runs == []


@pytest.mark.parametrize("columns, words", [
    ("submit=ts,duration=run,gpus=n,gpus=gpu_time", "gpus is given twice"),
    ("submit=ts,duration=run,gpus=n,gpus=n", "gpus is given twice"),
    ("", "empty"),
    ("  ", "empty"),
    ("submit=ts,,duration=run,gpus=n", "empty item"),
    ("submit=ts,duration=run,gpus=n,", "empty item"),
    ("submit=ts,duration=run,gpus=", "expected KEY=COLUMN"),
    ("submit=ts,duration=run,=n", "expected KEY=COLUMN")])
def test_a_bad_columns_mapping_is_refused_before_anything_runs(trace, columns, words, runs):
    line = one_line_error(sim("--trace", str(trace), "--fleet", "lab", "--quiet",
                                "--columns", columns))
    assert line.startswith("error: --columns") and words in line and runs == []


def test_every_trace_error_names_trace_and_the_path(tmp_path, monkeypatch):
    missing = tmp_path / "nope.csv"
    line = one_line_error(sim("--trace", str(missing), "--quiet"))
    assert line == f"error: --trace {missing}: trace file does not exist"
    line = one_line_error(sim("--trace", str(tmp_path), "--quiet"))
    assert line.startswith(f"error: --trace {tmp_path}: is a folder; give a trace file")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    line = one_line_error(sim("--trace", str(binary), "--quiet"))
    assert line.startswith(f"error: --trace {binary}, line 1: unrecognised columns")
    assert "\x00" not in line
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,run,n\n0,1,1\n1,2\n")
    line = one_line_error(sim("--trace", str(bad), "--columns", COLS, "--quiet"))
    assert line.startswith(f"error: --trace {bad}, line 3: ")
    none = tmp_path / "none.csv"
    none.write_text("ts,run,n\n0,abc,1\n")
    line = one_line_error(sim("--trace", str(none), "--columns", "submit=ts,duration=run,"
                                "gpus=x", "--quiet"))
    assert line.startswith(f"error: --trace {none}, line 1: missing column(s) x")
    line = one_line_error(sim("--trace", str(none), "--columns", COLS, "--quiet"))
    assert line.startswith(f"error: --trace {none}: the workload has no valid jobs")
    line = one_line_error(sim("--trace", "", "--quiet"))
    assert line.startswith("error: --trace: empty")
    monkeypatch.setenv("AICC_TRACE_DIR", str(tmp_path / "elsewhere"))
    line = one_line_error(sim("--trace", "philly", "--quiet"))
    assert line.startswith("error: --trace philly: not found at ") and "elsewhere" in line


def test_max_jobs_counts_jobs_larger_than_the_fleet_among_its_n(tmp_path):
    p = tmp_path / "t.csv"
    # line 3: zero GPUs (invalid on reading); the first three valid rows by submit time are
    # lines 2, 4 and 5, and line 4 is larger than one 8-accelerator node
    p.write_text("ts,run,n\n0,100,1\n5,100,0\n10,100,16\n20,100,4\n30,100,2\n40,100,64\n")
    args = ["--trace", str(p), "--columns", COLS, "--fleet", "1xh100-sxm-80g", "--quiet",
            "--max-jobs", "3"]
    r = sim(*args)
    assert r.exit_code == 0, r.output
    account = r.stdout.strip().splitlines()[-1]
    assert account == ("rows read 6; invalid 1: zero GPUs 1; simulated 2 of the first 3 valid "
                       "rows (--max-jobs 3; among them invalid 1: larger than fleet 1)"), r.stdout
    s = json.loads(sim(*args, "--json").stdout)["fairshare"]
    assert s["jobs"] == 2
    assert s["rows"]["simulated"] == 2 and s["rows"]["max_jobs"] == 3
    # the two scopes of the printed line: reading the file, then the first N valid rows
    assert s["rows"]["invalid"] == {"zero_gpus": 1}
    assert s["rows"]["first_n"]["invalid"] == {"larger_than_fleet": 1}
    # without a cut the account covers every row alike, as before
    r = sim(*args[:-2])
    assert r.stdout.strip().splitlines()[-1] == (
        "rows read 6; invalid 3: larger than fleet 2, zero GPUs 1; simulated 3"), r.stdout


def test_fleets_with_different_accounts_get_a_line_each(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("ts,run,n\n0,100,1\n10,100,16\n20,100,4\n")
    r = sim("--trace", str(p), "--columns", COLS, "--fleet", "1xh100-sxm-80g,2xh100-sxm-80g",
             "--policy", "fifo", "--quiet")
    assert r.exit_code == 0, r.output
    tail = r.stdout.strip().splitlines()[-2:]
    assert tail == ["fifo@1xh100-sxm-80g: rows read 3; invalid 1: larger than fleet 1; "
                    "simulated 2",
                    "fifo@2xh100-sxm-80g: rows read 3"], r.stdout
