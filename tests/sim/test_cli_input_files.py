"""``aicc simulate``: the files and values an option names are checked before they are read or
used (a device, a name too long, an empty value, a workload too large to generate), each
refused with one line naming the option, and a report never removes a file it did not write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aicc.errors import InvalidTrace
from aicc.workload.readers import parse_columns, read_trace

from .cli_helpers import one_line_error, sim

SYN = ["--synthetic-days", "1", "--fleet", "lab", "--quiet"]
LONG = "a" * 300 + ".toml"  # longer than a file name may be


def test_an_empty_report_option_is_refused_and_touches_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = ["jobs-mydata.parquet", "series-important.parquet", "summary.json"]
    for name in mine:
        (tmp_path / name).write_text("mine")
    line = one_line_error(sim(*SYN, "--report", ""))
    assert line.startswith("error: --report: empty"), line
    assert all((tmp_path / n).read_text() == "mine" for n in mine)


def test_a_report_removes_only_the_run_files_an_earlier_report_wrote(tmp_path):
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "jobs-mydata.parquet").write_text("mine")  # the user's, of the same pattern
    r = sim(*SYN, "--compare", "fifo,fairshare", "--report", str(rep))
    assert r.exit_code == 0, r.output
    r = sim(*SYN, "--policy", "fifo", "--report", str(rep))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in rep.iterdir()) == [
        "jobs-fifo.parquet", "jobs-mydata.parquet", "report.html", "series-fifo.parquet",
        "summary.json"]
    assert (rep / "jobs-mydata.parquet").read_text() == "mine"
    # a summary.json that names a file outside the folder's run files removes nothing else
    (rep / "jobs-x").mkdir()
    (rep / "summary.json").write_text(json.dumps(
        {"files": {"jobs": "jobs-x/../../outside.parquet", "series": "report.html"}}))
    (tmp_path / "outside.parquet").write_text("mine")
    assert sim(*SYN, "--policy", "fifo", "--report", str(rep)).exit_code == 0
    assert (tmp_path / "outside.parquet").exists() and (rep / "report.html").exists()
    # a summary.json that is a FIFO is neither read nor written (either would block for ever)
    (rep / "summary.json").unlink()
    os.mkfifo(rep / "summary.json")
    line = one_line_error(sim(*SYN, "--policy", "fifo", "--report", str(rep)))
    assert line == (f"error: --report {rep}: summary.json there is not a regular file; remove "
                    "it or give another folder"), line


def _without_fleet(option: str) -> list[str]:
    """The synthetic run's options, less ``--fleet lab`` where the test gives ``--fleet``."""
    return ["--synthetic-days", "1", "--quiet"] if option == "--fleet" else SYN


@pytest.mark.parametrize("option", ["--tenant-map", "--fleet"])
def test_a_device_as_a_toml_file_is_refused_before_it_is_read(tmp_path, option):
    link = tmp_path / "zero.toml"  # endless: read whole, it would fill the memory
    os.symlink("/dev/zero", link)
    line = one_line_error(sim(*_without_fleet(option), option, str(link)))
    assert line == f"error: {option} {link}: not a regular file", line


@pytest.mark.parametrize("option", ["--tenant-map", "--fleet"])
def test_a_file_name_too_long_names_the_option(option):
    line = one_line_error(sim(*_without_fleet(option), option, LONG))
    assert line.startswith(f"error: {option} {LONG}: cannot read the file"), line


def test_empty_values_are_refused_not_taken_as_defaults():
    line = one_line_error(sim(*SYN, "--tenant-map", ""))
    assert line == "error: --tenant-map: empty; give a TOML file", line
    line = one_line_error(sim(*SYN, "--failures", "--on-failure", ""))
    assert "--on-failure" in line and "''" in line, line


def test_a_column_mapping_names_only_the_keys_it_lacks():
    with pytest.raises(InvalidTrace, match=r"needs gpus= \(given: submit=, duration=\)"):
        parse_columns("submit=s,duration=d")
    with pytest.raises(InvalidTrace, match=r"needs submit= and gpus= \(given: duration=\)"):
        parse_columns("duration=d")


def test_a_true_false_column_is_not_read_as_numbers(tmp_path):
    p = tmp_path / "flags.parquet"
    pq.write_table(pa.table({"s": [0.0, 10.0], "d": [100.0, 200.0], "g": [True, False]}), p)
    with pytest.raises(InvalidTrace, match="gpus column holds true/false"):
        read_trace(p, columns="submit=s,duration=d,gpus=g")
    line = one_line_error(sim("--trace", str(p), "--columns", "submit=s,duration=d,gpus=g",
                              "--fleet", "lab", "--quiet"))
    assert line.startswith(f"error: --trace {p}: the gpus column holds true/false"), line


def test_a_negative_gpu_share_is_counted_as_negative_not_as_zero(tmp_path):
    p = tmp_path / "pods.csv"
    p.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
                 "creation_time,deletion_time,scheduled_time\n"
                 "a,1000,1024,1,-5,,LS,Running,0,100,0\n"
                 "b,1000,1024,1,0,,LS,Running,0,100,0\n"
                 "c,1000,1024,1,500,,LS,Running,0,100,0\n")
    w = read_trace(p)
    assert w.account.invalid == {"negative_gpus": 1, "zero_gpus": 1} and len(w) == 1


def test_a_synthetic_workload_too_large_to_generate_is_refused_up_front():
    # ten years of the 2030 fleet at load 10: over a hundred million jobs (tens of GB)
    line = one_line_error(sim("--synthetic-days", "3660", "--target-load", "10", "--fleet",
                              "2030", "--max-jobs", "10", "--quiet"))
    assert line.startswith("error: --synthetic-days 3660 --target-load 10: 3660 days at load "
                           "10 on 50,000 accelerators is about "), line
    assert "at most 20,000,000 are generated" in line


def test_report_paths_are_as_given(tmp_path):
    # "." is this folder, given on purpose
    r = sim(*SYN, "--report", str(Path(tmp_path) / "."))
    assert r.exit_code == 0 and (tmp_path / "report.html").exists(), r.output
