"""``aicc fleet show``, ``aicc usage`` and ``aicc lending`` (the last two against a real server on
a free port)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from aicc.api.app import create_app
from aicc.cli import app
from aicc.clock import VirtualClock
from aicc.fleet import build_fleet
from live_server import serving

from .conftest import ADMIN_TOKEN

runner = CliRunner()


@pytest.mark.parametrize("name,accelerators", [("2028", 15_000), ("2030", 50_000), ("lab", 256)])
def test_fleet_show_json_matches_the_phase(name, accelerators) -> None:
    r = runner.invoke(app, ["fleet", "show", "--phase", name, "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    fleet = build_fleet(name)
    assert d["total"]["accelerators"] == accelerators == fleet.n_accelerators
    assert d["total"]["nodes"] == fleet.n_nodes
    assert {x["accelerator_type"]: x["accelerators"] for x in d["types"]} == \
        fleet.accelerators_by_type()
    assert d["total"]["leaves"] == len(fleet.leaf_names)
    assert d["total"]["pods"] == len(fleet.pod_names)
    tdp = float((fleet.tdp_w() * fleet.capacity).sum()) / 1000
    idle = float((fleet.idle_w() * fleet.capacity).sum()) / 1000
    assert d["total"]["tdp_kw"] == pytest.approx(tdp)
    assert d["total"]["idle_kw"] == pytest.approx(idle)


def test_fleet_show_table_and_unknown_phase() -> None:
    # Piped (as here), the table is as wide as its content whatever the terminal's width: the
    # type names are the ones a user types again.
    r = runner.invoke(app, ["fleet", "show", "--phase", "2028"], env={"COLUMNS": "60"})
    assert r.exit_code == 0
    assert "h100-sxm-80g" in r.stdout and "15,000" in r.stdout and "MW" in r.stdout
    for name in ("h200-141g", "ascend-910b", "mlu370-x8", "Cambricon", "accelerators"):
        assert name in r.stdout, r.stdout
    bad = runner.invoke(app, ["fleet", "show", "--phase", "2029"])
    assert bad.exit_code == 2
    assert bad.output.startswith("error: --phase: unknown fleet phase '2029'"), bad.output
    assert "2028" in bad.output


@pytest.fixture()
def server(center) -> Iterator[str]:
    plane = SimpleNamespace(clock=VirtualClock(center.now.timestamp()))
    api = create_app(center.settings, session_factory=center.factory, control_plane=plane)
    with serving(api) as port:
        yield f"http://127.0.0.1:{port}"


def test_usage_command_through_the_api(server, center) -> None:
    direct = center.call("GET", "/v1/usage?group_by=sector", ADMIN_TOKEN).json()
    r = runner.invoke(app, ["usage", "--by", "sector", "--json", "--url", server,
                            "--token", ADMIN_TOKEN])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == direct
    table = runner.invoke(app, ["usage", "--url", server, "--token", ADMIN_TOKEN],
                          env={"COLUMNS": "40"})
    assert table.exit_code == 0 and "accelerator-hours" in table.stdout, table.stdout
    projects = center.call("GET", "/v1/usage", ADMIN_TOKEN).json()["rows"]
    assert projects and all(p["name"] in table.stdout for p in projects), table.stdout
    bad = runner.invoke(app, ["usage", "--url", server, "--token", ADMIN_TOKEN,
                              "--start", "2028-03-02T00:00:00Z", "--end", "2028-03-01T00:00:00Z"])
    assert bad.exit_code == 2 and "error: --end must be after start" in bad.output, bad.output
    bad = runner.invoke(app, ["usage", "--url", server, "--token", ADMIN_TOKEN,
                              "--start", "2028-03-02"])
    assert bad.exit_code == 2 and "error: --start" in bad.output, bad.output


def test_lending_command_through_the_api(server, center) -> None:
    from sqlalchemy import select

    from aicc.store.db import transaction
    from aicc.store.models import LendingBalance, Sector

    with transaction(center.factory) as s:
        ids = dict(s.execute(select(Sector.name, Sector.id)).all())
        s.add(LendingBalance(lender_sector_id=ids["industry"], borrower_sector_id=ids["research"],
                             balance_s=7200.0, loan=4.0, at=center.now))
    direct = center.call("GET", "/v1/lending", ADMIN_TOKEN).json()
    [pair] = direct["pairs"]
    assert (pair["lender"], pair["borrower"], pair["accelerator_hours"],
            pair["accelerators_now"]) == ("industry", "research", 2.0, 4.0)
    r = runner.invoke(app, ["lending", "--json", "--url", server, "--token", ADMIN_TOKEN])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == direct
    table = runner.invoke(app, ["lending", "--url", server, "--token", ADMIN_TOKEN])
    assert table.exit_code == 0, table.output
    for text in ("industry", "research", "owed to it", "2.0", "-2.0"):
        assert text in table.stdout, table.stdout
    assert runner.invoke(app, ["lending", "--url", server, "--token", "wrong-token-x"]
                         ).exit_code == 4


def test_usage_table_shows_small_amounts() -> None:
    """100 accelerator-seconds (4 GPUs × 25 s on a small Slurm cluster) read as 0.0278 hours,
    not 0.0, so the table can be checked against sacct; large amounts keep their places."""
    from aicc.cli_center import _amount

    assert _amount(100 / 3600, 1) == "0.0278"
    assert _amount(0.0194, 0) == "0.0194"
    assert _amount(0.0, 1) == "0.0"
    assert _amount(12_345.67, 1) == "12,345.7"
    assert _amount(1.4, 0) == "1"
