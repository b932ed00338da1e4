"""Tenant → sector/organization/project mapping."""

from __future__ import annotations

import tomllib

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


@pytest.mark.parametrize(("body", "words"), [
    # in two sectors (organizations default to the tenant names)
    ('[tenant.vc1]\nsector = "industry"\nproject = "p"\n'
     '[tenant.vc2]\nsector = "research"\nproject = "p"\n',
     "tenant.vc2: project 'p' is put in organization 'vc2' (research), but tenant.vc1 puts it "
     "in 'vc1' (industry); a project belongs to one organization"),
    # in two organizations of one sector
    ('[tenant.vc1]\nsector = "industry"\norganization = "o1"\nproject = "p"\n'
     '[tenant.vc2]\nsector = "industry"\norganization = "o2"\nproject = "p"\n',
     "tenant.vc2: project 'p' is put in organization 'o2' (industry), but tenant.vc1 puts it "
     "in 'o1' (industry)"),
    # a project named like another tenant's default one
    ('[tenant.vc2]\nsector = "industry"\nproject = "vc1"\n',
     "tenant.vc2: project 'vc1' is put in organization 'vc2' (industry), but tenant vc1 (not "
     "listed: by default) puts it in 'vc1' (industry)"),
])
def test_a_project_in_two_organizations_is_refused_naming_both_tenants(tmp_path, body, words):
    p = tmp_path / "map.toml"
    p.write_text('[defaults]\nsector = "industry"\n' + body)
    with pytest.raises(ConfigError) as exc:
        map_tenants(["vc1", "vc2"], 1, mapping=load_mapping_file(p))
    assert words in exc.value.message


def test_a_project_shared_within_its_organization_is_one_project(tmp_path):
    p = tmp_path / "map.toml"
    p.write_text('[tenant.vc1]\nsector = "industry"\norganization = "o"\nproject = "p"\n'
                 '[tenant.vc2]\nsector = "industry"\norganization = "o"\nproject = "p"\n')
    m = map_tenants(["vc1", "vc2"], 1, mapping=load_mapping_file(p))
    assert m.tenancy.project_names == ["p"] and m.tenant_project.tolist() == [0, 0]


@pytest.mark.parametrize(("line", "key", "shown"), [
    ("organization = 5", "organization", "5"),
    ('project = ["x"]', "project", "['x']"),
    ("sector = true", "sector", "True"),
])
def test_a_value_that_is_not_text_is_refused_naming_tenant_and_key(tmp_path, line, key, shown):
    p = tmp_path / "map.toml"
    p.write_text(f'[tenant.vc1]\n{line}\n')
    with pytest.raises(ConfigError) as exc:
        load_mapping_file(p)
    assert exc.value.message == (f"--tenant-map {p}: tenant.vc1: {key} must be a name in "
                                 f"quotes, got {shown}")
    assert exc.value.field == f"tenant_map.tenant.vc1.{key}"
    # a mapping given as a table (a scenario's) is checked too
    entry = {"sector": "industry"} | {key: tomllib.loads(line)[key]}
    with pytest.raises(ConfigError, match=rf"tenant\.vc1: {key} must be a name in quotes"):
        map_tenants(["vc1"], 1, mapping={"tenant": {"vc1": entry}})


@pytest.mark.parametrize(("body", "words"), [
    ('[tenant.a]\nsector = "industry"\norganization = "acme"\n'
     '[tenant.b]\nsector = "research"\norganization = "acme"\n',
     "tenant.b: organization 'acme' is put in sector research, but tenant.a puts it in "
     "industry"),
    ('[tenant.a]\norganization = "o1"\nproject = "p"\n'
     '[tenant.b]\norganization = "o2"\nproject = "p"\n',
     "tenant.b: project 'p' is put in organization 'o2', but tenant.a puts it in 'o1'"),
])
def test_a_contradictory_file_is_refused_whatever_tenants_the_workload_has(tmp_path, body,
                                                                           words):
    # neither a nor b is a tenant of the workload: the file contradicts itself all the same
    p = tmp_path / "map.toml"
    p.write_text(body)
    with pytest.raises(ConfigError) as exc:
        load_mapping_file(p)
    assert words in exc.value.message and f"--tenant-map {p}" in exc.value.message
