"""The summary table: offered load and the exact utilisation (installed capacity) per run,
readable on an 80-column terminal; report.html's header gives each run's jobs and load."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

import aicc.sim.cli as sim_cli
from aicc.sim.report import COMPARISON_HEAD

from .cli_helpers import sim


@pytest.fixture
def one_job(tmp_path):
    p = tmp_path / "one.csv"
    p.write_text("ts,run,n\n0,100,1\n")
    return ["--trace", str(p), "--columns", "submit=ts,duration=run,gpus=n",
            "--fleet", "1xh100-sxm-80g", "--policy", "fifo", "--quiet"]


def _piped_row(stdout: str, label: str) -> dict[str, str]:
    lines = stdout.splitlines()
    k = next(i for i, line in enumerate(lines) if "utilisation" in line)
    head = [c.strip() for c in lines[k].strip("┃ ").split("┃")]
    row = next(line for line in lines[k:] if line.startswith(f"│ {label} "))
    return dict(zip(head, [c.strip() for c in row.strip("│ ").split("│")], strict=True))


def test_the_table_shows_the_exact_utilisation_and_the_offered_load(one_job):
    # one 100 s job of one accelerator on 8: 1/8 of the fleet over the makespan
    s = json.loads(sim(*one_job, "--json").stdout)["fifo"]
    assert s["fleet"]["utilisation_exact"] == pytest.approx(0.125)
    row = _piped_row(sim(*one_job).stdout, "fifo")
    assert row["utilisation"] == "12.5%"  # not the sampled mean over capacity in service
    assert row["offered load"] == f"{s['extra']['offered_load']:.1%}" == "12.5%"
    assert "utilisation_mean" in s["fleet"]  # the sampled figure stays in the summary


def test_an_80_column_terminal_cuts_no_label_and_no_figure(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(sim_cli, "out", Console(file=buf, width=80, force_terminal=True,
                                                color_system=None, emoji=False))
    r = sim("--synthetic-days", "0.5", "--fleet", "1xh100-sxm-80g,4xh100-sxm-80g",
            "--compare", "fifo,fairshare", "--quiet")
    assert r.exit_code == 0, r.output
    text = buf.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    words = set(re.findall(r"[\w()@-]+", text))
    for label in COMPARISON_HEAD:
        assert set(label.split()) <= words, label
    for run in ("fifo@1xh100-sxm-80g", "fairshare@4xh100-sxm-80g"):
        assert run in words


def test_the_report_header_gives_each_runs_jobs_and_offered_load(tmp_path):
    rep = tmp_path / "rep"
    r = sim("--synthetic-days", "1", "--fleet", "1xh100-sxm-80g,4xh100-sxm-80g", "--policy",
            "fifo", "--quiet", "--report", str(rep))
    assert r.exit_code == 0, r.output
    summaries = json.loads((rep / "summary.json").read_text())
    html = (rep / "report.html").read_text()
    assert "<th>offered load</th>" in html
    for label, s in summaries.items():
        cells = (f"<td>{label}</td><td>{s['fleet']['accelerators']:,}</td>"
                 f"<td>{s['jobs']:,}</td>")
        assert cells in html, label
        assert f"<td>{s['extra']['offered_load']:.1%}</td>" in html
    loads = {s["extra"]["offered_load"] for s in summaries.values()}
    assert len(loads) == 2  # the same jobs on 8 and on 32 accelerators
