"""``aicc slurm …`` against the localhost Slurm."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

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


def test_since_that_is_no_calendar_date_is_a_usage_error(env: dict[str, str]) -> None:
    cli = CliRunner()
    assert cli.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    for since in ("2030-13-45", "2030-02-30", "2030-01-31T25:00"):
        bad = cli.invoke(app, ["slurm", "import-usage", "--since", since], env=env)
        assert bad.exit_code == 2, bad.output
        assert f"--since '{since}' is not a sacct time" in bad.output.replace("\n", " ")


def _conf_env(tmp_path, conf: str) -> dict[str, str]:
    cfg = tmp_path / "other.toml"
    cfg.write_text(f'database_url = "sqlite:///{tmp_path / "aicc.db"}"\n'
                   f'[engine]\nkind = "slurm"\nslurm_conf = "{conf}"\n')
    return {"AICC_CONFIG": str(cfg)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COMMANDS = (["slurm", "nodes"], ["slurm", "sync-accounts"], ["slurm", "import-usage"])


def _each_command_names_the_setting(env: dict[str, str], words: str) -> None:
    """Every ``aicc slurm`` command exits 2 at once with one message naming
    ``engine.slurm_conf`` and ``words``, never a traceback (the database upgraded first)."""
    cli = CliRunner()
    assert cli.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    for cmd in COMMANDS:
        result = cli.invoke(app, cmd, env=env)
        assert result.exit_code == 2, (cmd, result.output)
        text = result.output.replace("\n", " ")
        assert "engine.slurm_conf:" in text and words in text, text
        assert "Traceback" not in text


def test_a_missing_slurm_conf_is_named_at_once(tmp_path) -> None:
    _each_command_names_the_setting(_conf_env(tmp_path, str(tmp_path / "nowhere" / "slurm.conf")),
                                    "is not a file")
    cli = CliRunner()
    # SLURM_CONF from the environment is checked the same way when the key is not set.
    cfg = tmp_path / "unset.toml"
    cfg.write_text(f'database_url = "sqlite:///{tmp_path / "aicc.db"}"\n[engine]\nkind = "slurm"\n')
    result = cli.invoke(app, ["slurm", "nodes"],
                        env={"AICC_CONFIG": str(cfg), "SLURM_CONF": str(tmp_path / "x.conf")})
    assert result.exit_code == 2
    assert "SLURM_CONF=" in result.output and "engine.slurm_conf" in result.output


def test_an_unreachable_cluster_names_the_setting(tmp_path, slurm_conf: str) -> None:
    """slurmctld and slurmdbd not answering (the lab's slurm.conf with ports nobody listens
    on): exit 2 naming engine.slurm_conf with Slurm's own words, not an engine error."""
    lab = Path(slurm_conf).parent
    bad = tmp_path / "etc"
    bad.mkdir()
    for extra in lab.iterdir():
        if extra.name not in {"slurm.conf", "slurmdbd.conf"} and extra.is_file():
            shutil.copy(extra, bad / extra.name)
    text = Path(slurm_conf).read_text()
    text = re.sub(r"(?m)^SlurmctldPort=.*$", f"SlurmctldPort={_free_port()}", text)
    text = re.sub(r"(?m)^AccountingStoragePort=.*$", f"AccountingStoragePort={_free_port()}",
                  text)
    (bad / "slurm.conf").write_text(text)
    _each_command_names_the_setting(_conf_env(tmp_path, str(bad / "slurm.conf")),
                                    "cannot reach Slurm")


def test_a_partition_slurm_does_not_have_is_named(env: dict[str, str]) -> None:
    """A mistyped partition is no empty fleet: aicc would serve nothing and call every stored
    node down."""
    result = CliRunner().invoke(app, ["slurm", "nodes"],
                                env={**env, "AICC_SLURM_PARTITION": "gpux"})
    assert result.exit_code == 2, result.output
    out = result.output.replace("\n", " ")
    assert "engine.slurm_partition: Slurm has no partition 'gpux'; it has gpu" in out


def test_a_database_not_upgraded_or_unreachable_is_named(env: dict[str, str]) -> None:
    """sync-accounts and import-usage read the store: no schema yet, or no server, is one line
    naming database_url and exit 2, never a traceback."""
    cli = CliRunner()
    unreachable = {**env, "AICC_DATABASE_URL": "postgresql+psycopg://aicc@127.0.0.1:1/aicc"}
    for cmd in (["slurm", "sync-accounts"], ["slurm", "import-usage"]):
        fresh = cli.invoke(app, cmd, env=env)  # the configured SQLite file was never made
        assert fresh.exit_code == 2, fresh.output
        out = fresh.output.replace("\n", " ")
        assert "database_url: no database at " in out and "run `aicc db upgrade` first" in out
        down = cli.invoke(app, cmd, env=unreachable)
        assert down.exit_code == 2, down.output
        assert "database_url: cannot connect to" in down.output.replace("\n", " ")
        assert fresh.exception is None or isinstance(fresh.exception, SystemExit)
        assert down.exception is None or isinstance(down.exception, SystemExit)
