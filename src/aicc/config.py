"""One validated configuration: ``aicc.toml`` (optional) plus ``AICC_*`` environment overrides.

Every default runs on one machine with no services: SQLite under ``./var/`` and the twin engine.
All errors are collected and reported at once, each naming its key.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from aicc.errors import ConfigError
from aicc.inputfiles import read_input_file

DEFAULT_CONFIG_FILE = "aicc.toml"
# The bearer-token format of aicc.api.tokens (kept in step by tests/test_config.py).
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-.~+/=]{16,256}$")


class _Strict(BaseModel):
    # numbers are finite: an infinite interval or clock speed would pass "> 0" and then stop
    # the control plane or overflow its clock
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _no_flag(v: Any) -> Any:
    """TOML's true/false is no number (pydantic would read it as 1/0: ``port = true`` would
    listen on port 1); environment overrides stay text and are parsed as numbers."""
    if isinstance(v, bool):
        raise ValueError(f"expected a number, got {str(v).lower()}")
    return v


Int = Annotated[int, BeforeValidator(_no_flag)]
Num = Annotated[float, BeforeValidator(_no_flag)]


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: Int = Field(8000, ge=1, le=65535)
    max_body_bytes: Int = Field(1_048_576, ge=1024)
    # start-time forecasts simulated at once (each takes a core while it runs); as many more
    # wait for a slot, and beyond that a forecast answers 503 busy (docs/api.md)
    forecast_workers: Int = Field(2, ge=1, le=64)


class SchedulerConfig(_Strict):
    policy: Literal["fairshare", "fifo", "multifactor"] = "fairshare"
    cycle_interval_s: Num = Field(5.0, gt=0, le=3600)
    # Hold jobs whose project has no active grant for their type (docs/api.md): the center
    # charges every accelerator-hour to a grant. false only for test beds without allocations.
    require_grant: bool = True
    # Rule 1 (docs/design/0001-scheduling.md): may a sector's jobs pass its first job that does
    # not fit its room (best_effort), or do they wait behind it (strict)? fairshare only.
    sector_queueing: Literal["best_effort", "strict"] = "best_effort"


class EngineConfig(_Strict):
    kind: Literal["twin", "slurm"] = "twin"
    fleet_phase: str = "2028"
    slurm_poll_interval_s: Num = Field(5.0, gt=0, le=3600)
    slurm_partition: str | None = None
    # The Slurm engine (docs/slurm.md): where the cluster's slurm.conf is (None: the clients'
    # default), GRES type -> catalog type overrides, and how aicc names what it creates.
    slurm_conf: str | None = None
    slurm_bin_dir: str | None = None
    slurm_command_timeout_s: Num = Field(30.0, gt=0, le=3600)
    slurm_gres_map: dict[str, str] = Field(default_factory=dict)
    slurm_job_prefix: str = Field("aicc", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,30}$")
    slurm_parent_account: str = Field("aicc", pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    slurm_auto_accounts: bool = True
    slurm_output_dir: str | None = None
    slurm_workdir: str = "/tmp"

    @field_validator("fleet_phase")
    @classmethod
    def _known_phase(cls, v: str) -> str:
        from aicc.fleet import load_phases  # the phases are package data

        phases = load_phases()
        if v not in phases:
            raise ValueError(f"unknown fleet phase {v!r}; known: {', '.join(phases)}")
        return v


class EnergyConfig(_Strict):
    """The site's power envelope and grid facts (docs/operations.md, "Power and carbon")."""

    # Site power the center may draw, in MW (None: no cap). The accelerators get what is left
    # after the facility overhead: site_power_mw / pue.
    site_power_mw: Num | None = Field(None, gt=0, le=100_000)
    pue: Num = Field(1.2, ge=1.0, le=3.0)
    grid_intensity_kg_per_kwh: Num = Field(0.5810, ge=0, le=2.0)

    @property
    def it_power_w(self) -> float:
        return float("inf") if self.site_power_mw is None else self.site_power_mw * 1e6 / self.pue


class DemoConfig(_Strict):
    # at most an hour a second: faster, the clock passes the calendar's end within years
    clock_speed: Num = Field(60.0, gt=0, le=3600)
    seed: Int = Field(7, ge=0, le=2**32 - 1)


class Settings(_Strict):
    database_url: str = "sqlite:///var/aicc.db"
    admin_token: str | None = Field(None, min_length=16)
    server: ServerConfig = ServerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    engine: EngineConfig = EngineConfig()
    energy: EnergyConfig = EnergyConfig()
    demo: DemoConfig = DemoConfig()

    @field_validator("admin_token")
    @classmethod
    def _token_format(cls, v: str | None) -> str | None:
        # The format every bearer token has (aicc.api.tokens.TOKEN_RE): checked here so that a
        # bad token stops start-up with this message instead of failing when it is registered.
        if v is not None and not _TOKEN_RE.fullmatch(v):  # ($ would admit a final newline)
            raise ValueError("must be 16-256 characters of A-Z a-z 0-9 _ - . ~ + / = "
                             "(no spaces)")
        return v

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        usage = "must be a sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB URL"
        try:
            u = make_url(v)
            u.port  # noqa: B018 (parsed on access: a port that is no number raises here)
            backend, driver = u.get_backend_name(), u.get_driver_name()
        except (ArgumentError, NoSuchModuleError, ValueError):
            raise ValueError(f"not a database URL; {usage}") from None
        if backend == "sqlite" and (u.host or u.port):
            raise ValueError("a SQLite URL names a file, not a host: sqlite:///relative/path.db "
                             "or sqlite:////absolute/path.db")
        if (backend, driver) not in (("sqlite", "pysqlite"), ("postgresql", "psycopg")):
            raise ValueError(f"{backend}+{driver} is not supported; {usage}")
        return v


# Environment variable -> dotted key in Settings.
ENV_KEYS: dict[str, str] = {
    "AICC_DATABASE_URL": "database_url",
    "AICC_ADMIN_TOKEN": "admin_token",
    "AICC_HOST": "server.host",
    "AICC_PORT": "server.port",
    "AICC_FORECAST_WORKERS": "server.forecast_workers",
    "AICC_POLICY": "scheduler.policy",
    "AICC_REQUIRE_GRANT": "scheduler.require_grant",
    "AICC_CYCLE_INTERVAL_S": "scheduler.cycle_interval_s",
    "AICC_SECTOR_QUEUEING": "scheduler.sector_queueing",
    "AICC_ENGINE": "engine.kind",
    "AICC_FLEET_PHASE": "engine.fleet_phase",
    "AICC_SLURM_CONF": "engine.slurm_conf",
    "AICC_SLURM_POLL_INTERVAL_S": "engine.slurm_poll_interval_s",
    "AICC_SLURM_PARTITION": "engine.slurm_partition",
    "AICC_SLURM_JOB_PREFIX": "engine.slurm_job_prefix",
    "AICC_CLOCK_SPEED": "demo.clock_speed",
    "AICC_SITE_POWER_MW": "energy.site_power_mw",
    "AICC_PUE": "energy.pue",
}


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for p in parents:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{p} must be a table", field=p)
        node = child
    node[leaf] = value


def load_settings(
    path: str | Path | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Read the TOML file (if any), apply environment overrides, validate everything at once."""
    env = dict(os.environ if env is None else env)
    explicit = path is not None or bool(env.get("AICC_CONFIG"))
    cfg_path = Path(path or env.get("AICC_CONFIG") or DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    named = (f"configuration file {cfg_path}" if path is not None or not env.get("AICC_CONFIG")
             else f"configuration file {cfg_path} (AICC_CONFIG)")
    try:
        present = explicit or cfg_path.exists()
    except OSError:  # e.g. a name too long: read_input_file says so
        present = True
    if present:  # (a FIFO or a device would block or never end: refused before reading)
        raw = read_input_file(cfg_path, named, "AICC_CONFIG", error=ConfigError,
                              missing="does not exist", folder="is a directory")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            field = "AICC_CONFIG" if named.endswith("(AICC_CONFIG)") else str(cfg_path)
            raise ConfigError(f"{named}: not valid TOML: {exc}", field=field) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{named}: cannot read it ({exc})", field="AICC_CONFIG") from None
    # the file's values have TOML's own types: a number in quotes is a mistake there
    # (environment overrides, always text, are read as numbers and flags)
    where = f"{cfg_path}: " if data else ""  # (a key the file set is named with the file)
    _, in_file = _problems(copy.deepcopy(data), strict=True, where=where)
    from_env: dict[str, str] = {}
    for var, key in ENV_KEYS.items():
        if var in env and env[var] != "":
            try:
                _set_dotted(data, key, env[var])
            except ConfigError as exc:
                raise ConfigError(f"{var}: cannot set {key}: {where}{exc.message}",
                                  field=exc.field) from None
            from_env[key] = var
    settings, found = _problems(data, strict=False, where=where, from_env=from_env)
    seen = {k for k, _ in found}
    found += [(k, text) for k, text in in_file if k not in seen and k not in from_env]
    if found or settings is None:
        raise ConfigError("invalid configuration: " + "; ".join(t for _, t in found),
                          field=found[0][0], problems=[t for _, t in found])
    return settings


def _problems(data: dict[str, Any], *, strict: bool, where: str = "",
              from_env: dict[str, str] | None = None
              ) -> tuple[Settings | None, list[tuple[str, str]]]:
    """``data`` as Settings, else None and every problem, as (key, text naming the key, and
    the file or the environment variable it came from)."""
    try:
        return Settings.model_validate(data, strict=strict), []
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(root)"
            msg = err["msg"].removeprefix("Value error, ")
            var = (from_env or {}).get(key)
            out.append((key, f"{key} ({var}): {msg}" if var else f"{where}{key}: {msg}"))
        return None, out
