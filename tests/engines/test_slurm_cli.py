"""``aicc slurm …`` against the localhost Slurm."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aicc.cli import app

pytestmark = pytest.mark.slurm


@pytest.fixture
def env(tmp_path, slurm_conf: str) -> dict[str, str]:
    cfg = tmp_path / "aicc.toml"
    cfg.write_text(f'database_url = "sqlite:///{tmp_path / "aicc.db"}"\n'
                   f'[engine]\nkind = "slurm"\nslurm_conf = "{slurm_conf}"\n')
    return {"AICC_CONFIG": str(cfg)}


def test_nodes_lists_the_discovered_fleet(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["slurm", "nodes", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["node"] for r in rows] == ["n1", "n2", "n3", "n4"]
    assert {r["accelerator_type"] for r in rows} == {"h100-sxm-80g"}


def test_import_usage_validates_since_and_is_repeatable(env: dict[str, str]) -> None:
    cli = CliRunner()
    assert cli.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    bad = cli.invoke(app, ["slurm", "import-usage", "--since", "yesterday"], env=env)
    assert bad.exit_code == 2 and "not a sacct time" in bad.output
    ok = cli.invoke(app, ["slurm", "import-usage", "--since", "now-1days"], env=env)
    assert ok.exit_code == 0 and "0 new ledger entries" in ok.output
