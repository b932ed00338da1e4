"""Configuration: TOML file plus AICC_* overrides, validated at once with named keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicc.config import load_settings
from aicc.errors import ConfigError


def test_defaults_run_without_services(tmp_path: Path) -> None:
    cfg = tmp_path / "empty.toml"
    cfg.write_text("")
    s = load_settings(cfg, env={})
    assert s.database_url.startswith("sqlite:///")
    assert s.engine.kind == "twin"
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8000)


def test_file_and_environment_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "aicc.toml"
    cfg.write_text('database_url = "sqlite:///x.db"\n[server]\nport = 9000\n')
    s = load_settings(cfg, env={"AICC_PORT": "9100", "AICC_ADMIN_TOKEN": "t" * 20,
                                "AICC_DATABASE_URL": "postgresql+psycopg://u@h/db"})
    assert s.server.port == 9100
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert s.admin_token == "t" * 20


@pytest.mark.parametrize(("env", "text", "field"), [
    ({"AICC_PORT": "0"}, "", "server.port"),
    ({"AICC_PORT": "eighty"}, "", "server.port"),
    ({"AICC_DATABASE_URL": "mysql://x"}, "", "database_url"),
    ({"AICC_ADMIN_TOKEN": "short"}, "", "admin_token"),
    ({"AICC_ADMIN_TOKEN": "has spaces in it but long enough"}, "", "admin_token"),
    ({"AICC_FLEET_PHASE": "zz"}, "", "engine.fleet_phase"),
    ({}, '[engine]\nfleet_phase = "2099"\n', "engine.fleet_phase"),
    ({"AICC_REQUIRE_GRANT": "perhaps"}, "", "scheduler.require_grant"),
    ({"AICC_SECTOR_QUEUEING": "fifo"}, "", "scheduler.sector_queueing"),
    ({}, "[server]\nbogus = 1\n", "server.bogus"),
    ({}, "not toml = = =", None),
    # URLs that pass a prefix check but no driver takes
    ({"AICC_DATABASE_URL": "sqlitex:///x.db"}, "", "database_url"),
    ({"AICC_DATABASE_URL": "sqlite://var/x.db"}, "", "database_url"),
    ({"AICC_DATABASE_URL": "postgresql+asyncpg://u@h/db"}, "", "database_url"),
    ({"AICC_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:abc/db"}, "", "database_url"),
    # numbers are finite and bounded, and TOML's true/false is no number
    ({"AICC_CLOCK_SPEED": "inf"}, "", "demo.clock_speed"),
    ({"AICC_CLOCK_SPEED": "1e11"}, "", "demo.clock_speed"),
    ({"AICC_CYCLE_INTERVAL_S": "inf"}, "", "scheduler.cycle_interval_s"),
    ({}, "[scheduler]\ncycle_interval_s = 1e300\n", "scheduler.cycle_interval_s"),
    ({}, "[demo]\nseed = -1\n", "demo.seed"),
    ({}, "[server]\nport = true\n", "server.port"),
    ({}, "[energy]\nsite_power_mw = true\n", "energy.site_power_mw"),
    ({"AICC_FORECAST_WORKERS": "0"}, "", "server.forecast_workers"),
    ({}, "[server]\nforecast_workers = 65\n", "server.forecast_workers"),
    ({"AICC_ADMIN_TOKEN": "abcdefghijklmnopqrs\n"}, "", "admin_token"),
])
def test_invalid_configuration_names_the_key(tmp_path: Path, env: dict[str, str], text: str,
                                             field: str | None) -> None:
    cfg = tmp_path / "aicc.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env=env)
    if field is not None:
        assert info.value.field == field
        assert field in info.value.message


def test_missing_or_directory_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_settings(env={"AICC_CONFIG": str(tmp_path / "nope.toml")})
    with pytest.raises(ConfigError):
        load_settings(env={"AICC_CONFIG": str(tmp_path)})


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    cfg = tmp_path / "aicc.toml"
    cfg.write_text('[engine]\nfleet_phase = "2099"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={"AICC_ADMIN_TOKEN": "has spaces in it but long enough",
                                "AICC_PORT": "0"})
    keys = {p.removeprefix(f"{cfg}: ").split(":")[0] for p in info.value.details["problems"]}
    # a value from the environment names its variable too; one from the file, the file
    assert keys == {"engine.fleet_phase", "admin_token (AICC_ADMIN_TOKEN)",
                    "server.port (AICC_PORT)"}
    assert f"{cfg}: engine.fleet_phase: " in info.value.message
    assert "'2099'" in info.value.message and "lab" in info.value.message


def test_admin_token_format_matches_the_api() -> None:
    from aicc.api.tokens import TOKEN_RE
    from aicc.config import _TOKEN_RE

    assert _TOKEN_RE.pattern == TOKEN_RE.pattern


def test_grants_are_required_by_default(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    assert load_settings(tmp_path / "empty.toml", env={}).scheduler.require_grant is True
    cfg = tmp_path / "aicc.toml"
    cfg.write_text("[scheduler]\nrequire_grant = false\n")
    assert load_settings(cfg, env={}).scheduler.require_grant is False


def test_sector_queueing_is_best_effort_unless_configured(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    assert load_settings(tmp_path / "empty.toml", env={}).scheduler.sector_queueing == \
        "best_effort"
    cfg = tmp_path / "aicc.toml"
    cfg.write_text('[scheduler]\nsector_queueing = "strict"\n')
    assert load_settings(cfg, env={}).scheduler.sector_queueing == "strict"
    assert load_settings(tmp_path / "empty.toml", env={"AICC_SECTOR_QUEUEING": "strict"}
                         ).scheduler.sector_queueing == "strict"


def test_a_config_file_that_is_no_text_file_is_named(tmp_path: Path) -> None:
    """Not UTF-8, or not a regular file (a FIFO would block the start for ever): one error
    naming AICC_CONFIG, never a traceback."""
    import os

    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"# caf\xe9\n")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for path in (bad, fifo):
        with pytest.raises(ConfigError) as info:
            load_settings(path, env={})
        assert info.value.field == "AICC_CONFIG" and str(path) in info.value.message


@pytest.mark.parametrize(("toml", "key"), [
    ('[server]\nport = "8000"', "server.port"),
    ('[scheduler]\ncycle_interval_s = "5"', "scheduler.cycle_interval_s"),
    ('[scheduler]\nrequire_grant = "yes"', "scheduler.require_grant"),
    ("[scheduler]\nrequire_grant = 1", "scheduler.require_grant"),
])
def test_a_file_value_of_the_wrong_toml_type_is_refused(tmp_path: Path, toml: str,
                                                        key: str) -> None:
    # in the file, a number in quotes is a mistake; the same text in the environment is how a
    # number is given there
    cfg = tmp_path / "aicc.toml"
    cfg.write_text(toml + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    assert info.value.field == key and f"{cfg}: {key}:" in info.value.message
    env_var = {"server.port": ("AICC_PORT", "8000"),
               "scheduler.cycle_interval_s": ("AICC_CYCLE_INTERVAL_S", "5"),
               "scheduler.require_grant": ("AICC_REQUIRE_GRANT", "false")}[key]
    assert load_settings(env={env_var[0]: env_var[1], "AICC_CONFIG": ""}) is not None
    # a value from the environment that overrides the file's is what counts
    assert load_settings(cfg, env={env_var[0]: env_var[1]}) is not None


def test_a_config_file_named_by_aicc_config_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"AICC_CONFIG": str(tmp_path)})
    assert info.value.message == f"configuration file {tmp_path} (AICC_CONFIG): is a directory"
    assert info.value.field == "AICC_CONFIG"
