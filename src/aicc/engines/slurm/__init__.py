"""Real execution on Slurm: aicc decides, Slurm launches and tracks (see ``engine.py``)."""

from __future__ import annotations

from aicc.catalog import Catalog, default_catalog
from aicc.config import EngineConfig, Settings
from aicc.fleet.arrays import FleetArrays

from .accounts import AccountManager, OrgNode, ProjectNode, SectorNode, SyncReport, tree_from_store
from .discovery import DEFAULT_GRES_MAP, discover
from .engine import SlurmEngine
from .runner import SlurmRunner, expand_hostlist


def from_config(cfg: EngineConfig, catalog: Catalog | None = None) -> SlurmEngine:
    """The engine ``[engine] kind = "slurm"`` describes."""
    runner = SlurmRunner(cfg.slurm_conf, bin_dir=cfg.slurm_bin_dir,
                         timeout_s=cfg.slurm_command_timeout_s)
    return SlurmEngine(
        runner, catalog or default_catalog(), partition=cfg.slurm_partition,
        gres_map=dict(cfg.slurm_gres_map), poll_interval_s=cfg.slurm_poll_interval_s,
        prefix=cfg.slurm_job_prefix, output_dir=cfg.slurm_output_dir, workdir=cfg.slurm_workdir,
        parent_account=cfg.slurm_parent_account, auto_accounts=cfg.slurm_auto_accounts,
    )


def from_settings(fleet: FleetArrays, settings: object | None = None) -> SlurmEngine:
    """The engine factory entry (see :func:`aicc.engines.make_engine`): the fleet comes from
    Slurm itself; the store's fleet only lends its catalog."""
    cfg = settings.engine if isinstance(settings, Settings) else EngineConfig(kind="slurm")
    return from_config(cfg, fleet.catalog)


__all__ = ["DEFAULT_GRES_MAP", "AccountManager", "OrgNode", "ProjectNode", "SectorNode",
           "SlurmEngine", "SlurmRunner", "SyncReport", "discover", "expand_hostlist",
           "from_config", "from_settings", "tree_from_store"]
