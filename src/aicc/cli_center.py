"""CLI commands that show the center: ``aicc fleet show`` (a capacity phase, read from the
package data, no server needed), ``aicc usage`` (ledger totals, through the API) and ``aicc
lending`` (what sectors lent each other, through the API)."""

from __future__ import annotations

import enum
import json
import sys
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer
from rich.table import Table

from aicc.catalog import default_catalog
from aicc.cli import (
    DEFAULT_URL,
    Client,
    JsonOpt,
    TokenOpt,
    UrlOpt,
    _fail,
    _print_table,
    _settings,
)
from aicc.errors import EXIT_CODE, AiccError, lookup
from aicc.fleet.phases import FleetPhase, node_infos, phase

fleet_app = typer.Typer(no_args_is_help=True, help="The fleet: capacity phases.")


@dataclass(frozen=True)
class TypeLine:
    accelerator_type: str
    vendor: str
    nodes: int
    accelerators: int
    tdp_kw: float  # all accelerators at board power
    idle_kw: float  # all accelerators idle
    leaves: int
    pods: int


def phase_summary(ph: FleetPhase) -> list[TypeLine]:
    """One line per accelerator type of the phase, from its laid-out nodes."""
    catalog = default_catalog()
    nodes: dict[str, int] = {}
    acc: dict[str, int] = {}
    leaves: dict[str, set[str]] = {}
    pods: dict[str, set[str]] = {}
    for n in node_infos(ph):
        t = n.accelerator_type
        nodes[t] = nodes.get(t, 0) + 1
        acc[t] = acc.get(t, 0) + n.accelerators
        leaves.setdefault(t, set()).add(n.leaf)
        pods.setdefault(t, set()).add(n.pod)
    out_lines = []
    for t in nodes:
        spec = catalog.get(t)
        out_lines.append(TypeLine(
            accelerator_type=t, vendor=spec.vendor, nodes=nodes[t], accelerators=acc[t],
            tdp_kw=acc[t] * spec.tdp_w / 1000.0, idle_kw=acc[t] * spec.idle_w / 1000.0,
            leaves=len(leaves[t]), pods=len(pods[t])))
    return out_lines


@fleet_app.command("show")
def fleet_show(
    phase_name: Annotated[str | None, typer.Option(
        "--phase", help="capacity phase (2028, 2030, lab); default: the configured one")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Accelerator types × nodes × accelerators × power × leaves and pods of a phase."""
    name = phase_name if phase_name is not None else _settings().engine.fleet_phase
    try:
        ph = phase(name)
    except AiccError as exc:
        # a --phase given names the option; the configured one names its setting
        where = "--phase" if phase_name is not None else "engine.fleet_phase"
        _fail(f"{where}: {exc.message}", lookup(EXIT_CODE, exc))
    lines = phase_summary(ph)
    all_nodes = node_infos(ph)
    totals = {
        "nodes": len(all_nodes), "accelerators": ph.n_accelerators,
        "tdp_kw": sum(x.tdp_kw for x in lines), "idle_kw": sum(x.idle_kw for x in lines),
        "leaves": len({n.leaf for n in all_nodes}), "pods": len({n.pod for n in all_nodes}),
    }
    if as_json:
        sys.stdout.write(json.dumps({
            "phase": ph.name, "description": ph.description, "site": ph.site,
            "nodes_per_leaf": ph.nodes_per_leaf, "leaves_per_pod": ph.leaves_per_pod,
            "types": [asdict(x) for x in lines], "total": totals}, indent=2) + "\n")
        return
    t = Table(title=f"fleet phase {ph.name}: {ph.description}", caption=(
        f"site {ph.site} · {ph.nodes_per_leaf} nodes per leaf · {ph.leaves_per_pod} leaves "
        "per pod"))
    for col in ("type", "vendor", "nodes", "accelerators", "TDP total", "idle total",
                "leaves", "pods"):
        t.add_column(col, justify="left" if col in ("type", "vendor") else "right")
    for x in lines:
        t.add_row(x.accelerator_type, x.vendor, f"{x.nodes:,}", f"{x.accelerators:,}",
                  _kw(x.tdp_kw), _kw(x.idle_kw), f"{x.leaves:,}", f"{x.pods:,}")
    t.add_section()
    t.add_row("total", "", f"{totals['nodes']:,}", f"{totals['accelerators']:,}",
              _kw(totals["tdp_kw"]), _kw(totals["idle_kw"]), f"{totals['leaves']:,}",
              f"{totals['pods']:,}", style="bold")
    _print_table(t)


def _kw(kw: float) -> str:
    return f"{kw / 1000:,.2f} MW" if kw >= 1000 else f"{kw:,.1f} kW"


def _amount(x: float, places: int) -> str:
    """``places`` decimals, but three significant digits below 1: a short job on a small
    cluster (4 GPUs × 25 s is 0.0278 accelerator-hours) is not shown as nothing."""
    return f"{x:.3g}" if 0 < abs(x) < 1 else f"{x:,.{places}f}"


class GroupBy(enum.StrEnum):
    project = "project"
    organization = "organization"
    sector = "sector"


# the query parameters of /v1/usage, as usage's options name them in an error
USAGE_OPTIONS = {"group_by": "--by", "start": "--start", "end": "--end",
                 "accelerator_type": "--type"}


def usage(
    group_by: Annotated[GroupBy, typer.Option("--by", help="group by")] = GroupBy.project,
    start: Annotated[str | None, typer.Option(
        "--start", help="period start, ISO 8601 with zone (2028-01-01T00:00:00Z)")] = None,
    end: Annotated[str | None, typer.Option("--end", help="period end, exclusive")] = None,
    accelerator_type: Annotated[str | None, typer.Option("--type", "-t")] = None,
    url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Accelerator-hours, energy and charges from the ledger, for what you may see."""
    params: dict[str, Any] = {"group_by": group_by.value}
    for k, v in (("start", start), ("end", end), ("accelerator_type", accelerator_type)):
        if v is not None:
            params[k] = v
    data = Client(url, token).call("GET", "/v1/usage", params=params, options=USAGE_OPTIONS)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    period = f"{data.get('start') or 'beginning'} → {data.get('end') or 'now'}"
    t = Table(title=f"usage by {data['group_by']} ({period})")
    by_sector = data["group_by"] == "sector"
    labels = [data["group_by"]] + ([] if by_sector else ["sector"])
    for col in [*labels, "accelerator-hours", "energy kWh", "carbon kg", "charge", "jobs"]:
        t.add_column(col, justify="left" if col in labels else "right")
    for r in data["rows"]:
        t.add_row(r["name"], *([] if by_sector else [r["sector"]]),
                  _amount(r["accelerator_hours"], 1), _amount(r["energy_kwh"], 0),
                  _amount(r["carbon_kg"], 0), _amount(r["charge"], 1), f"{r['jobs']:,}")
    t.add_section()
    t.add_row("total", *([] if by_sector else [""]), _amount(data["total_accelerator_hours"], 1),
              "", "", "", "", style="bold")
    _print_table(t)


def lending(url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Accelerator-hours each sector lent each other one (decayed), and what each is owed."""
    data = Client(url, token).call("GET", "/v1/lending")
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    caption = (f"at {data['at']}; balances decay with a half-life of "
               f"{data['half_life_s'] / 86400:g} days")
    t = Table(title="lending between sectors", caption=caption)
    for col in ("lender", "borrower", "accelerator-hours", "lent now"):
        t.add_column(col, justify="left" if col in ("lender", "borrower") else "right")
    for p in data["pairs"]:
        t.add_row(p["lender"], p["borrower"], _amount(p["accelerator_hours"], 1),
                  _amount(p["accelerators_now"], 1))
    _print_table(t)
    t = Table(title="per sector")
    for col in ("sector", "lent", "borrowed", "owed to it", "lent now", "borrowed now"):
        t.add_column(col, justify="left" if col == "sector" else "right")
    for r in data["sectors"]:
        t.add_row(r["sector"], _amount(r["lent_accelerator_hours"], 1),
                  _amount(r["borrowed_accelerator_hours"], 1),
                  _amount(r["owed_accelerator_hours"], 1), _amount(r["lent_now"], 1),
                  _amount(r["borrowed_now"], 1))
    _print_table(t)
