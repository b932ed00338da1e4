"""Tenant → sector/organization/project mapping."""

from __future__ import annotations

import pytest

from aicc.errors import ConfigError, UnknownSector
from aicc.workload.tenants import load_mapping_file, map_tenants


def test_default_rule_deals_sorted_tenants_to_sectors_in_turn():
    m = map_tenants(["d", "a", "c", "b"], n_types=2)
    assert m.table == {"a": ("industry", "a", "a"), "b": ("research", "b", "b"),
                       "c": ("public", "c", "c"), "d": ("industry", "d", "d")}
    # tenant_project follows the order of the given list
    names = m.tenancy.project_names
    assert [names[p] for p in m.tenant_project] == ["d", "a", "c", "b"]
    assert m.tenancy.entitlement.shape == (3, 2)
    assert m.tenancy.entitlement[:, 0].tolist() == [0.3, 0.2, 0.5]


def test_mapping_file(tmp_path):
    p = tmp_path / "map.toml"
    p.write_text('[defaults]\nsector = "public"\n'
                 '[tenant.vc1]\nsector = "industry"\norganization = "acme"\nproject = "llm"\n'
                 '[tenant.vc2]\nsector = "industry"\norganization = "acme"\n')
    m = map_tenants(["vc1", "vc2", "vc3"], 1, mapping=load_mapping_file(p))
    assert m.table["vc1"] == ("industry", "acme", "llm")
    assert m.table["vc2"] == ("industry", "acme", "acme")
    assert m.table["vc3"] == ("public", "vc3", "vc3")
    assert m.tenancy.org_names == ["acme", "vc3"]
    sector = m.tenancy.project_sector
    assert [m.tenancy.sector_names[s] for s in sector] == ["industry", "industry", "public"]


def test_mapping_file_errors(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[tenant.vc1]\nsector = "military"\n')
    with pytest.raises(UnknownSector, match=r"tenant\.vc1"):
        map_tenants(["vc1"], 1, mapping=load_mapping_file(p))
    p.write_text("not toml [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_mapping_file(p)
    p.write_text('[tenant.vc1]\nsector = "public"\ncolour = "red"\n')
    with pytest.raises(ConfigError, match="unknown key"):
        map_tenants(["vc1"], 1, mapping=load_mapping_file(p))
    with pytest.raises(ConfigError, match="does not exist"):
        load_mapping_file(tmp_path / "none.toml")
