"""The row account under ``--max-jobs``: the printed line, ``summary.json`` / ``--json`` and
``report.html`` keep the counts over every row read apart from those among the first N."""

from __future__ import annotations

import csv
import json

from .cli_helpers import philly_slice, sim

ZERO_AT = (10, 300)  # file lines (header = line 1) whose GPU count is set to 0


def _trace(tmp_path):
    """The first 400 Philly rows, two of them made CPU-only (invalid on reading): one among
    the first 100 valid rows, one far after them."""
    p = philly_slice(tmp_path, rows=400)
    lines = p.read_text().splitlines(keepends=True)
    for ln in ZERO_AT:
        cells = lines[ln - 1].split(",")
        cells[2] = "0"  # num_gpus
        lines[ln - 1] = ",".join(cells)
    p.write_text("".join(lines))
    return p


def _larger_than_node(path, first: int, per_node: int = 8) -> int:
    """Among the first ``first`` valid rows (the file is in submit order), the jobs larger than
    one ``per_node`` node."""
    with path.open() as fh:
        gpus = [float(r["num_gpus"]) for r in csv.DictReader(fh)]
    valid = [g for g in gpus if g > 0][:first]
    return sum(g > per_node for g in valid)


def test_max_jobs_rows_in_json_and_html_match_the_printed_line(tmp_path):
    trace = _trace(tmp_path)
    big = _larger_than_node(trace, 100)
    assert big > 0
    rep = tmp_path / "rep"
    args = ["--trace", str(trace), "--max-jobs", "100", "--fleet", "1xh100-sxm-80g",
            "--policy", "fifo", "--quiet"]
    r = sim(*args, "--report", str(rep))
    assert r.exit_code == 0, r.output
    line = (f"rows read 400; invalid 2: zero GPUs 2; simulated {100 - big} of the first 100 "
            f"valid rows (--max-jobs 100; among them invalid {big}: larger than fleet {big})")
    assert line in r.stdout.splitlines(), r.stdout

    rows = json.loads((rep / "summary.json").read_text())["rows"]
    # the top level covers every row read (reading the file), as the line's first part
    assert rows["rows_read"] == 400
    assert rows["invalid"] == {"zero_gpus": 2} and rows["invalid_total"] == 2
    assert rows["example_lines"] == {"zero_gpus": list(ZERO_AT)}
    assert rows["simulated"] == 100 - big and rows["max_jobs"] == 100
    # first_n: what mapping the first 100 valid rows onto the fleet did, the second part
    first = rows["first_n"]
    assert first["rows"] == 100 and first["simulated"] == 100 - big
    assert first["invalid"] == {"larger_than_fleet": big} and first["invalid_total"] == big
    assert len(first["example_lines"]["larger_than_fleet"]) == min(big, 5)
    assert first["simulated"] + first["invalid_total"] == first["rows"]
    # --json states the same
    assert json.loads(sim(*args, "--json").stdout)["fifo"]["rows"] == rows

    html = (rep / "report.html").read_text()
    assert f"<p>{line[:1].upper() + line[1:]}.</p>" in html
    assert "every row read (file)" in html and "first 100 valid rows (--max-jobs)" in html
    assert "<td>invalid: zero GPUs</td><td>2</td><td>–</td>" in html
    assert f"<td>invalid: larger than fleet</td><td>–</td><td>{big}</td>" in html
    assert f"<td>simulated</td><td>–</td><td>{100 - big}</td>" in html


def test_without_a_cut_one_scope_covers_every_row(tmp_path):
    trace = _trace(tmp_path)
    big = _larger_than_node(trace, 400)
    rep = tmp_path / "rep"
    r = sim("--trace", str(trace), "--fleet", "1xh100-sxm-80g", "--policy", "fifo",
            "--quiet", "--report", str(rep))
    assert r.exit_code == 0, r.output
    line = (f"rows read 400; invalid {2 + big}: larger than fleet {big}, zero GPUs 2; "
            f"simulated {398 - big}")
    assert line in r.stdout.splitlines(), r.stdout
    rows = json.loads((rep / "summary.json").read_text())["rows"]
    assert rows["invalid"] == {"larger_than_fleet": big, "zero_gpus": 2}
    assert rows["first_n"] is None and rows["max_jobs"] is None
    html = (rep / "report.html").read_text()
    assert f"<p>{line[:1].upper() + line[1:]}.</p>" in html
    assert "every row read (file)" not in html  # no second scope to set apart


def test_fleets_with_different_accounts_each_get_their_line_in_the_report(tmp_path):
    trace = _trace(tmp_path)
    rep = tmp_path / "rep"
    r = sim("--trace", str(trace), "--max-jobs", "100", "--policy", "fifo", "--quiet",
            "--fleet", "1xh100-sxm-80g,4xh100-sxm-80g", "--report", str(rep))
    assert r.exit_code == 0, r.output
    printed = [x for x in r.stdout.splitlines() if x.startswith("fifo@")]
    assert len(printed) == 2, r.stdout
    summary = json.loads((rep / "summary.json").read_text())
    html = (rep / "report.html").read_text()
    for x in printed:
        assert f"<p>{x}.</p>" in html
    for s in summary.values():  # the file's counts are the same for both fleets
        assert s["rows"]["invalid"] == {"zero_gpus": 2}
    small, large = summary["fifo@1xh100-sxm-80g"], summary["fifo@4xh100-sxm-80g"]
    assert (small["rows"]["first_n"]["invalid_total"]
            > large["rows"]["first_n"]["invalid_total"])
