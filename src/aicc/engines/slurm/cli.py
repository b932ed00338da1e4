"""``aicc slurm …``: operator commands for the Slurm engine (read ``[engine]`` from aicc.toml).

- ``aicc slurm nodes``: the fleet as aicc sees it in Slurm (types mapped, states, leaves).
- ``aicc slurm sync-accounts [--prune]``: mirror sectors, organizations, projects and members
  into Slurm's account tree.
- ``aicc slurm import-usage [--since now-7days]``: charge ended Slurm runs to the ledger
  (exactly once; safe to repeat).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from aicc.cli import JsonOpt, _fail, _print_table, _settings, open_store, out
from aicc.errors import EXIT_CODE, AiccError, lookup
from aicc.fleet.arrays import NODE_STATE_NAMES

slurm_app = typer.Typer(no_args_is_help=True, help="The Slurm engine: nodes, accounts, usage.")


@slurm_app.command("nodes")
def nodes(as_json: JsonOpt = False) -> None:
    """Discover the Slurm fleet (sinfo, topology) as aicc maps it."""
    import json

    from aicc.engines.slurm import SlurmRunner
    from aicc.engines.slurm.discovery import discover

    cfg = _settings().engine
    try:
        fleet, _ = discover(SlurmRunner(cfg.slurm_conf, bin_dir=cfg.slurm_bin_dir,
                                        timeout_s=cfg.slurm_command_timeout_s),
                            _catalog(), partition=cfg.slurm_partition,
                            gres_map=cfg.slurm_gres_map)
    except AiccError as exc:
        _fail(exc.message, lookup(EXIT_CODE, exc))
    rows = [{"node": fleet.names[i],
             "accelerator_type": fleet.catalog.types[int(fleet.type_idx[i])].name,
             "accelerators": int(fleet.capacity[i]), "leaf": fleet.leaf_names[fleet.leaf[i]],
             "pod": fleet.pod_names[fleet.pod[i]], "state": NODE_STATE_NAMES[fleet.state[i]]}
            for i in range(fleet.n_nodes)]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"Slurm nodes ({fleet.n_accelerators} accelerators)")
    for col in ("node", "accelerator_type", "accelerators", "leaf", "pod", "state"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    _print_table(table)


@slurm_app.command("sync-accounts")
def sync_accounts(
    prune: Annotated[bool, typer.Option(help="remove accounts and users aicc no longer has")]
    = False,
) -> None:
    """Mirror the tenancy (sector → organization → project, members) into Slurm accounts."""
    from aicc.engines.slurm import AccountManager, SlurmRunner, tree_from_store
    from aicc.store.db import session_factory

    settings = _settings()
    cfg = settings.engine
    db = open_store(settings.database_url)
    try:
        with session_factory(db)() as session:
            tree = tree_from_store(session)
        runner = SlurmRunner(cfg.slurm_conf, bin_dir=cfg.slurm_bin_dir,
                             timeout_s=cfg.slurm_command_timeout_s)
        report = AccountManager(runner, parent=cfg.slurm_parent_account).sync(tree, prune=prune)
    except AiccError as exc:
        _fail(exc.message, lookup(EXIT_CODE, exc))
    finally:
        db.dispose()
    out.print(f"accounts created {len(report.created_accounts)}, moved "
              f"{len(report.moved_accounts)}, removed {len(report.removed_accounts)}; user "
              f"associations added {len(report.added_associations)}, removed "
              f"{len(report.removed_associations)}")


@slurm_app.command("import-usage")
def import_usage_cmd(
    since: Annotated[str, typer.Option(help="sacct start time (e.g. now-7days, 2030-01-01)")]
    = "now-7days",
) -> None:
    """Charge ended Slurm runs of aicc jobs to the ledger (each attempt exactly once)."""
    from aicc.engines.slurm import SlurmRunner
    from aicc.engines.slurm.usage import import_usage, read_runs
    from aicc.store.db import session_factory, transaction

    settings = _settings()
    cfg = settings.engine
    db = open_store(settings.database_url)
    try:
        runner = SlurmRunner(cfg.slurm_conf, bin_dir=cfg.slurm_bin_dir,
                             timeout_s=cfg.slurm_command_timeout_s)
        runs = read_runs(runner, prefix=cfg.slurm_job_prefix, since=since)
        with transaction(session_factory(db)) as session:
            new = import_usage(session, runs, _catalog())
    except AiccError as exc:
        _fail(exc.message.replace("since", "--since", 1) if exc.field == "since" else exc.message,
              lookup(EXIT_CODE, exc))
    finally:
        db.dispose()
    out.print(f"{len(runs)} ended runs in sacct; {new} new ledger entries")


def _catalog():
    from aicc.catalog import default_catalog

    return default_catalog()
