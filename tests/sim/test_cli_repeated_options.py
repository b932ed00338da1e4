"""An option that takes one value, given twice, is refused naming it (exit 2, one line),
rather than the last one silently winning."""

from __future__ import annotations

import pytest

from .cli_helpers import one_line_error, sim

BASE = ("--synthetic-days", "0.2", "--quiet")


@pytest.mark.parametrize(("args", "option", "values"), [
    (("--policy", "fifo", "--policy", "fairshare"), "--policy", "(fifo, fairshare)"),
    (("--fleet", "lab", "--fleet", "4xh100-sxm-80g"), "--fleet", "(lab, 4xh100-sxm-80g)"),
    (("--fleet", "lab", "--max-jobs", "5", "--max-jobs", "10"), "--max-jobs", "(5, 10)"),
    (("--fleet", "lab", "--seed", "1", "--seed", "1"), "--seed", "(1, 1)"),
    (("--fleet", "lab", "--compare", "fifo", "--compare", "fairshare"), "--compare", None),
    (("--fleet", "lab", "--min-cycle", "30", "--min-cycle", "60"), "--min-cycle", None),
    (("--fleet", "lab", "--target-load", "0.3", "--target-load", "0.5"), "--target-load", None),
    (("--fleet", "lab", "--report", "a", "--report", "b"), "--report", None),
])
def test_a_single_valued_option_given_twice_is_refused(runs, tmp_path, monkeypatch, args,
                                                       option, values):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(sim(*BASE, *args))
    assert line.startswith(f"error: {option} is given twice"), line
    assert values is None or values in line, line
    assert runs == [] and not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_three_times_and_trace_options_are_counted_too():
    line = one_line_error(sim("--trace", "a.csv", "--trace", "b.csv", "--trace", "c.csv"))
    assert line.startswith("error: --trace is given 3 times (a.csv, b.csv, c.csv)"), line
    line = one_line_error(sim("--trace", "x.csv", "--columns", "submit=a,gpus=b",
                              "--columns", "submit=a,gpus=c"))
    assert line.startswith("error: --columns is given twice"), line


def test_options_given_once_keep_their_values_and_defaults(runs):
    r = sim(*BASE, "--fleet", "lab", "--policy", "fifo", "--max-jobs", "3", "--json")
    assert r.exit_code == 0, r.output
    assert runs == ["fifo"]
    r = sim(*BASE, "--fleet", "lab", "--max-jobs", "3", "--json", "--json")  # a flag: same
    assert r.exit_code == 0, r.output
    assert runs == ["fifo", "fairshare"]  # the default policy


def test_help_shows_one_value_per_option():
    r = sim("--help")
    assert r.exit_code == 0
    assert "list[" not in r.output
    assert "[default: 2028]" in r.output
