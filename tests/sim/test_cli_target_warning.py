"""A synthetic workload whose whole jobs cannot come within 10 % of --target-load says so on
stderr (the run goes on); one that does says nothing."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from aicc.cli import app


def _run(target: str, seed: str = "0"):
    return CliRunner().invoke(app, ["simulate", "--synthetic-days", "2", "--fleet", "lab",
                                    "--policy", "fifo", "--target-load", target, "--seed", seed,
                                    "--json"])


def test_a_missed_target_load_is_warned_of():
    # two days on 256 accelerators: a few long jobs make up the load (this seed's come to 0.54)
    r = _run("0.7", seed="2")
    assert r.exit_code == 0, r.output
    offered = json.loads(r.stdout)["fifo"]["extra"]["offered_load"]
    assert abs(offered - 0.7) > 0.07
    assert r.stderr.startswith("warning: --target-load 0.7: the synthetic workload offers")
    assert f"{offered:.3g}" in r.stderr


def test_a_met_target_load_is_not_warned_of():
    r = CliRunner().invoke(app, ["simulate", "--synthetic-days", "14", "--fleet", "lab",
                                 "--policy", "fifo", "--target-load", "0.7", "--json"])
    assert r.exit_code == 0, r.output
    assert abs(json.loads(r.stdout)["fifo"]["extra"]["offered_load"] - 0.7) <= 0.07
    assert r.stderr == ""
