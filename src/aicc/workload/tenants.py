"""Map trace tenants (virtual clusters, QoS classes, users) to sectors, organizations, projects.

A mapping file (TOML) names them explicitly::

    [defaults]
    sector = "research"          # for tenants not listed; omit to use the rule below

    [tenant."6214e9"]
    sector = "industry"
    organization = "acme"        # default: the tenant name
    project = "acme-vision"      # default: the organization name

Without a file (or for a tenant it does not list, when it has no default sector) the rule is
deterministic: tenants are sorted by name and dealt to the sectors in turn (industry, research,
public, industry, …); each tenant is its own organization and project. The sector entitlements
are the center's published defaults (``aicc.store.seed.DEFAULT_SECTOR_SHARES``) for every type.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aicc.errors import ConfigError, UnknownSector
from aicc.inputfiles import read_input_file
from aicc.scheduler.snapshot import Tenancy
from aicc.store.seed import DEFAULT_SECTOR_SHARES


@dataclass(frozen=True)
class TenantMapping:
    """Result of mapping: the scheduler's tenancy tree, and each trace tenant's project."""

    tenancy: Tenancy
    tenant_project: np.ndarray  # int32, project index per trace tenant
    table: dict[str, tuple[str, str, str]]  # tenant -> (sector, organization, project)

    @property
    def project_sector(self) -> np.ndarray:
        return self.tenancy.project_sector


class UnknownSectorInMapping(ConfigError, UnknownSector):
    """A tenant mapping names a sector the center does not have: an input error (exit 2,
    HTTP 422) like any other bad value in a file, and still an :class:`UnknownSector` for
    callers that catch that."""


MAPPING_KEYS = ("sector", "organization", "project")


def load_mapping_file(path: str | Path, sectors: Iterable[str] | None = None
                      ) -> dict[str, object]:
    """Read and check a mapping file (see the module docstring). Every error is a
    :class:`ConfigError` naming ``--tenant-map`` and the path: a missing file, a folder, an
    unreadable file, bad TOML, an unknown table or key, and a sector not in ``sectors`` (the
    center's default sectors unless given) for any entry, listed tenant or not, so a typo is
    refused before any work rather than when (or if) a trace has that tenant."""
    p = Path(path)
    where = f"--tenant-map {p}"
    if not str(path).strip():
        raise ConfigError("--tenant-map: empty; give a TOML file", field="tenant_map")
    raw = read_input_file(p, where, "tenant_map", error=ConfigError)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}", field="tenant_map") from None
    unknown = set(data) - {"defaults", "tenant"}
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) {', '.join(sorted(unknown))}; "
                          "expected [defaults] and [tenant.NAME]", field="tenant_map")
    known = list(sectors if sectors is not None else DEFAULT_SECTOR_SHARES)
    entries: list[tuple[str, object]] = [("defaults", data.get("defaults", {}))]
    listed = data.get("tenant", {})
    if not isinstance(listed, dict):
        raise ConfigError(f"{where}: tenant must be a table of [tenant.NAME] tables",
                          field="tenant_map")
    entries += [(f"tenant.{name}", entry) for name, entry in listed.items()]
    for label, entry in entries:
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: {label} must be a table", field=f"tenant_map.{label}")
        allowed = ("sector",) if label == "defaults" else MAPPING_KEYS
        extra = set(entry) - set(allowed)
        if extra:
            raise ConfigError(f"{where}: {label}: unknown key(s) {', '.join(sorted(extra))}; "
                              f"known: {', '.join(allowed)}", field=f"tenant_map.{label}")
        wrong = next((k for k in allowed if k in entry and not isinstance(entry[k], str)), None)
        if wrong is not None:
            raise ConfigError(f"{where}: {label}: {wrong} must be a name in quotes, got "
                              f"{entry[wrong]!r}", field=f"tenant_map.{label}.{wrong}")
        sector = entry.get("sector")
        if sector is not None and sector not in known:
            raise UnknownSectorInMapping(
                f"{where}: {label}: unknown sector {sector!r}; known: {', '.join(known)}",
                field=f"tenant_map.{label}.sector")
    _check_consistent(where, listed, data.get("defaults", {}).get("sector"))
    return data


def _check_consistent(where: str, listed: dict, default_sector: str | None) -> None:
    """The file's own entries put an organization in one sector and a project in one
    organization, whatever tenants a workload has (those whose sector the file leaves to the
    deterministic rule are checked with the workload, by :func:`map_tenants`)."""
    org_at: dict[str, tuple[str, str]] = {}  # organization -> (sector, entry)
    project_at: dict[str, tuple[str, str, str]] = {}  # project -> (org, " (sector)", entry)
    for name, entry in listed.items():
        org = str(entry.get("organization") or name)
        project = str(entry.get("project") or org)
        sector = entry.get("sector") or default_sector
        if sector is not None:
            seen = org_at.setdefault(org, (sector, name))
            if seen[0] != sector:
                raise ConfigError(
                    f"{where}: tenant.{name}: organization {org!r} is put in sector {sector}, "
                    f"but tenant.{seen[1]} puts it in {seen[0]}; an organization belongs to "
                    "one sector", field=f"tenant_map.tenant.{name}")
        in_sector = f" ({sector})" if sector is not None else ""
        first = project_at.setdefault(project, (org, in_sector, name))
        if first[0] != org:
            raise ConfigError(
                f"{where}: tenant.{name}: project {project!r} is put in organization "
                f"{org!r}{in_sector}, but tenant.{first[2]} puts it in {first[0]!r}{first[1]}; "
                "a project belongs to one organization", field=f"tenant_map.tenant.{name}")


def map_tenants(
    tenants: list[str],
    n_types: int,
    *,
    mapping: dict[str, object] | None = None,
    shares: dict[str, float] | None = None,
) -> TenantMapping:
    """Build the tenancy tree for ``tenants`` (see the module docstring for the rules)."""
    shares = dict(shares or DEFAULT_SECTOR_SHARES)
    sectors = list(shares)
    mapping = mapping or {}
    defaults = mapping.get("defaults", {}) or {}
    listed = mapping.get("tenant", {}) or {}
    if not isinstance(defaults, dict) or not isinstance(listed, dict):
        raise ConfigError("tenant mapping: [defaults] and [tenant.NAME] must be tables",
                          field="tenant_map")
    default_sector = defaults.get("sector")
    if default_sector is not None and not isinstance(default_sector, str):
        raise ConfigError(f"tenant mapping: defaults: sector must be a name in quotes, got "
                          f"{default_sector!r}", field="defaults.sector")
    table: dict[str, tuple[str, str, str]] = {}
    for i, name in enumerate(sorted(tenants)):
        entry = listed.get(name, {})
        if not isinstance(entry, dict):
            raise ConfigError(f"tenant mapping: tenant.{name} must be a table",
                              field=f"tenant.{name}")
        extra = set(entry) - set(MAPPING_KEYS)
        if extra:
            raise ConfigError(f"tenant mapping: tenant.{name}: unknown key(s) "
                              f"{', '.join(sorted(extra))}", field=f"tenant.{name}")
        wrong = next((k for k in MAPPING_KEYS if k in entry and not isinstance(entry[k], str)),
                     None)
        if wrong is not None:  # a number or a list would be stringified into a new name
            raise ConfigError(f"tenant mapping: tenant.{name}: {wrong} must be a name in "
                              f"quotes, got {entry[wrong]!r}", field=f"tenant.{name}.{wrong}")
        sector = entry.get("sector") or default_sector or sectors[i % len(sectors)]
        if sector not in shares:
            raise UnknownSectorInMapping(
                f"tenant mapping: tenant.{name}: unknown sector {sector!r}; "
                f"known: {', '.join(sectors)}", field=f"tenant.{name}.sector")
        org = str(entry.get("organization") or name)
        project = str(entry.get("project") or org)
        table[name] = (sector, org, project)
    org_names: list[str] = []
    org_sector: list[int] = []
    project_names: list[str] = []
    project_org: list[int] = []
    org_index: dict[str, int] = {}
    org_tenant: list[str] = []  # the first tenant that put each organization in its sector
    project_index: dict[str, int] = {}
    project_tenant: list[str] = []  # the first tenant that put each project in its organization

    def entry(t: str) -> str:
        return f"tenant.{t}" if t in listed else f"tenant {t} (not listed: by default)"

    for name, (sector, org, project) in table.items():
        if org not in org_index:
            org_index[org] = len(org_names)
            org_names.append(org)
            org_sector.append(sectors.index(sector))
            org_tenant.append(name)
        elif org_sector[org_index[org]] != sectors.index(sector):
            first = org_tenant[org_index[org]]
            raise ConfigError(
                f"tenant mapping: {entry(name)}: organization {org!r} is put in sector "
                f"{sector}, but {entry(first)} puts it in {sectors[org_sector[org_index[org]]]}"
                "; an organization belongs to one sector", field=f"tenant.{name}")
        if project not in project_index:
            project_index[project] = len(project_names)
            project_names.append(project)
            project_org.append(org_index[org])
            project_tenant.append(name)
        elif project_org[project_index[project]] != org_index[org]:
            # merged, the jobs of one would run and be charged as the other's
            first = project_tenant[project_index[project]]
            other = project_org[project_index[project]]
            raise ConfigError(
                f"tenant mapping: {entry(name)}: project {project!r} is put in organization "
                f"{org!r} ({sector}), but {entry(first)} puts it in {org_names[other]!r} "
                f"({sectors[org_sector[other]]}); a project belongs to one organization",
                field=f"tenant.{name}")
    entitlement = np.repeat(np.array([shares[s] for s in sectors], dtype=np.float64)[:, None],
                            n_types, axis=1)
    tenancy = Tenancy(
        sector_names=sectors,
        entitlement=entitlement,
        org_names=org_names,
        org_sector=np.array(org_sector, dtype=np.int32),
        org_weight=np.ones(len(org_names)),
        project_names=project_names,
        project_org=np.array(project_org, dtype=np.int32),
        project_weight=np.ones(len(project_names)),
    )
    tenant_project = np.array([project_index[table[t][2]] for t in tenants], dtype=np.int32)
    return TenantMapping(tenancy=tenancy, tenant_project=tenant_project, table=table)
