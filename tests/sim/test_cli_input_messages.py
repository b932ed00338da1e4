"""Messages of refused or doubtful input: a tenant map that puts an organization in two
sectors names --tenant-map, the file and the entries; a --substitute model that no job has is
warned of (refused when the workload names no model); the --failures options' grammar."""

from __future__ import annotations

from .cli_helpers import one_line_error, philly_slice, sim

TRACE = "ts,run,n,team,gpu\n0,100,1,a,V100\n10,100,1,b,V100\n20,100,1,c,P100\n"
COLUMNS = "submit=ts,duration=run,gpus=n,tenant=team,model=gpu"


def _trace(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text(TRACE)
    return ["--trace", str(p), "--columns", COLUMNS, "--fleet", "lab", "--quiet"]


def test_an_organization_in_two_sectors_names_the_option_file_and_entries(tmp_path, runs):
    m = tmp_path / "map.toml"
    m.write_text('[tenant.a]\nsector = "industry"\norganization = "acme"\n'
                 '[tenant.b]\nsector = "research"\norganization = "acme"\n')
    line = one_line_error(sim(*_trace(tmp_path), "--tenant-map", str(m)))
    assert line == (f"error: --tenant-map {m}: tenant.b: organization 'acme' is put in sector "
                    "research, but tenant.a puts it in industry; an organization belongs to "
                    "one sector"), line
    assert runs == []


def test_an_unlisted_tenant_in_a_listed_organization_says_it_is_not_listed(tmp_path):
    m = tmp_path / "map.toml"
    m.write_text('[defaults]\nsector = "public"\n[tenant.b]\nsector = "research"\n'
                 'organization = "a"\n')
    line = one_line_error(sim(*_trace(tmp_path), "--tenant-map", str(m)))
    assert "tenant a (not listed: by default)" in line and "tenant.b" in line, line


def test_a_substituted_model_no_job_has_is_warned_of(tmp_path, runs):
    r = sim(*_trace(tmp_path), "--substitute", "v100=h100-sxm-80g,A100=h100-sxm-80g")
    assert r.exit_code == 0, r.output
    assert ("warning: --substitute v100=h100-sxm-80g: no job of the workload has model "
            "'v100', so it substitutes nothing (did you mean V100?)") in r.stderr
    assert ("warning: --substitute A100=h100-sxm-80g: no job of the workload has model 'A100', "
            "so it substitutes nothing (its models: P100, V100)") in r.stderr
    assert len(runs) == 1
    r = sim(*_trace(tmp_path), "--substitute", "V100=h100-sxm-80g")
    assert r.exit_code == 0 and "warning" not in r.stderr, r.output


def test_a_model_substitution_without_models_is_refused(tmp_path, runs):
    line = one_line_error(sim("--trace", str(philly_slice(tmp_path, 50)), "--fleet", "lab",
                              "--substitute", "V100=h100-sxm-80g"))
    assert line == ("error: --substitute V100=h100-sxm-80g: the workload names no GPU model "
                    "(the trace has no GPU model column, or every cell of it is empty); "
                    "only *=TYPE applies to it"), line
    line = one_line_error(sim("--synthetic-days", "0.2", "--fleet", "lab",
                              "--substitute", "V100=h100-sxm-80g"))
    assert "(a synthetic workload); only *=TYPE applies to it" in line, line
    assert runs == []
    r = sim("--synthetic-days", "0.2", "--fleet", "lab", "--substitute", "*=h100-sxm-80g",
            "--quiet")
    assert r.exit_code == 0 and "--substitute" not in r.stderr, r.output


def test_failure_options_without_failures_read_well():
    line = one_line_error(sim("--synthetic-days", "0.2", "--failure-scale", "2"))
    assert line == ("error: --failure-scale applies only with --failures; add --failures or "
                    "drop it"), line
    line = one_line_error(sim("--synthetic-days", "0.2", "--failure-scale", "2",
                              "--repair-hours", "1"))
    assert line.startswith("error: --failure-scale and --repair-hours apply only with "
                           "--failures; add --failures or drop them"), line


def test_columns_errors_reach_the_command_line_as_one_line(tmp_path):
    args = _trace(tmp_path)
    k = args.index("--columns")
    for columns, part in (("submit=ts duration=run", "not spaces"),
                          ("submit=ts,duration=run,start=ts,gpus=n", "both give the runtime"),
                          ("submit=ts,duration=nope,gpus=n", "(--columns duration=nope)")):
        line = one_line_error(sim(*args[:k + 1], columns, *args[k + 2:]))
        assert part in line, line
