"""Under ``--max-jobs N``, ``rows.first_n.adjusted`` counts the changes reading the file made
to the first N rows (a sub-second runtime raised to 1 s, a missing tenant taken as
``default``), not only those of mapping the jobs onto the fleet."""

from __future__ import annotations

import json

from .cli_helpers import sim

ROWS = "ts,run,n,team\n0,0.5,1,a\n10,0.5,1,\n20,0.5,1,c\n30,0.5,1,d\n40,0.5,1,e\n50,100,0,e\n"
COLUMNS = "submit=ts,duration=run,gpus=n,tenant=team"


def test_read_time_adjustments_are_counted_among_the_first_n(tmp_path):
    p = tmp_path / "sub.csv"
    p.write_text(ROWS)
    args = ["--trace", str(p), "--columns", COLUMNS, "--fleet", "lab", "--policy", "fifo",
            "--quiet"]
    r = sim(*args, "--max-jobs", "3", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["fifo"]["rows"]
    assert "first_n_adjusted" not in rows
    assert rows["adjusted"] == {"missing_tenant_as_default": 1,
                                "subsecond_runtime_raised_to_1s": 5}  # every row read
    assert rows["first_n"]["adjusted"] == {"missing_tenant_as_default": 1,
                                           "subsecond_runtime_raised_to_1s": 3}
    line = sim(*args, "--max-jobs", "3").stdout.strip().splitlines()[-1]
    assert line.endswith("simulated 3 of the first 3 valid rows (--max-jobs 3; among them "
                         "adjusted 4: missing tenant as default 1, subsecond runtime raised "
                         "to 1s 3)"), line
    # past the second row, the missing tenant is no longer among the first N
    rows = json.loads(sim(*args, "--max-jobs", "1", "--json").stdout)["fifo"]["rows"]
    assert rows["first_n"]["adjusted"] == {"subsecond_runtime_raised_to_1s": 1}


def test_read_time_adjustments_show_in_the_report_table(tmp_path):
    p = tmp_path / "sub.csv"
    p.write_text(ROWS)
    rep = tmp_path / "rep"
    r = sim("--trace", str(p), "--columns", COLUMNS, "--fleet", "lab", "--policy", "fifo",
            "--quiet", "--max-jobs", "3", "--report", str(rep))
    assert r.exit_code == 0, r.output
    html = (rep / "report.html").read_text()
    assert "<td>adjusted: subsecond runtime raised to 1s</td><td>5</td><td>3</td>" in html
