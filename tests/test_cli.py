"""The CLI against a real server (uvicorn on a free port) and a real SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from aicc.api.app import create_app
from aicc.cli import app
from aicc.config import Settings
from aicc.store.db import make_engine, session_factory
from aicc.store.models import Job, JobState, User
from api.conftest import World
from live_server import serving_world

runner = CliRunner()


@pytest.fixture
def served(tmp_path: Path, _sqlite_template: Path) -> Iterator[tuple[str, World]]:
    with serving_world(tmp_path, _sqlite_template) as (port, world):
        yield f"http://127.0.0.1:{port}", world


def _run(args: list[str], url: str, token: str | None) -> tuple[int, str]:
    env = {"AICC_URL": url, "COLUMNS": "200"}
    if token is not None:
        env["AICC_TOKEN"] = token
    r = runner.invoke(app, args, env=env)
    return r.exit_code, r.output


def test_submit_list_show_cancel(served: tuple[str, World]) -> None:
    url, w = served
    tok = w.tokens["member_a1"]
    code, out = _run(["jobs", "submit", "--project", "acme-llm", "--type", "h100-sxm-80g",
                      "--per-node", "4", "--time-limit", "600", "--idempotency-key", "k1",
                      "--json"], url, tok)
    assert code == 0, out
    job = json.loads(out)
    assert job["state"] == "pending" and job["project_id"] == w.ids["p_a1"]
    code, out = _run(["jobs", "submit", "-p", str(w.ids["p_a1"]), "-t", "h100-sxm-80g", "-g",
                      "4", "--time-limit", "600", "--idempotency-key", "k1", "--json"], url, tok)
    assert code == 0 and json.loads(out)["id"] == job["id"]
    with session_factory(w.engine)() as s:
        rows = s.scalars(select(Job)).all()
        assert [(r.id, r.state) for r in rows] == [(job["id"], JobState.PENDING)]
    code, out = _run(["jobs", "list"], url, tok)
    assert code == 0 and "pending" in out and "h100-sxm-80g" in out
    code, out = _run(["jobs", "show", str(job["id"])], url, tok)
    assert code == 0 and "acme" not in out and str(job["id"]) in out
    code, out = _run(["projects", "list", "--json"], url, tok)
    assert code == 0 and [p["name"] for p in json.loads(out)["items"]] == ["acme-llm"]
    code, out = _run(["grants", "list"], url, tok)
    assert code == 0 and "10000" in out
    code, out = _run(["jobs", "cancel", str(job["id"])], url, tok)
    assert code == 0 and "cancelled" in out
    code, out = _run(["jobs", "cancel", str(job["id"])], url, tok)
    assert code == 5, out


def test_exit_codes(served: tuple[str, World]) -> None:
    url, w = served
    tok = w.tokens["member_a1"]
    assert _run(["jobs", "show", "999999"], url, tok)[0] == 3
    # Another organization's project is not found, not forbidden.
    assert _run(["jobs", "list", "--project", str(w.ids["p_b1"])], url, tok)[0] == 3
    assert _run(["jobs", "list"], url, "aicc_" + "x" * 40)[0] == 4
    assert _run(["jobs", "list"], url, None)[0] == 2
    assert _run(["jobs", "list", "--limit", "0"], url, tok)[0] == 2
    assert _run(["jobs", "submit", "-p", "acme-llm", "-t", "h100-sxm-80g", "-g", "99",
                 "--time-limit", "60"], url, tok)[0] == 2
    assert _run(["jobs", "list"], "http://127.0.0.1:1", tok)[0] == 7


def test_db_upgrade_and_token_create(tmp_path: Path) -> None:
    env = {"AICC_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "AICC_CONFIG": "",
           "COLUMNS": "200"}
    r = runner.invoke(app, ["db", "upgrade"], env=env)
    assert r.exit_code == 0, r.output
    assert "revision" in r.output
    r = runner.invoke(app, ["token", "create", "--user", "ops"], env=env)
    assert r.exit_code == 3, r.output
    r = runner.invoke(app, ["token", "create", "--user", "ops", "--create-user", "--admin"],
                      env=env)
    assert r.exit_code == 0, r.output
    token = r.output.strip()
    assert token.startswith("aicc_")
    engine = make_engine(env["AICC_DATABASE_URL"])
    with session_factory(engine)() as s:
        user = s.scalar(select(User).where(User.name == "ops"))
        assert user is not None and user.is_admin
    engine.dispose()
    settings = Settings(database_url=env["AICC_DATABASE_URL"])
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings)) as c:
        me = c.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["name"] == "ops" and me["is_admin"]


def test_token_create_validates_the_user_name(tmp_path: Path) -> None:
    env = {"AICC_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "AICC_CONFIG": "",
           "COLUMNS": "200"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    bad_names = ("bad name!", "", "x" * 300)
    for bad in bad_names:
        r = runner.invoke(app, ["token", "create", "--user", bad, "--create-user"], env=env)
        assert r.exit_code == 2, (bad, r.output)
        assert "--user" in r.output
    engine = make_engine(env["AICC_DATABASE_URL"])
    with session_factory(engine)() as s:
        assert s.scalars(select(User.name).where(User.name.in_(bad_names))).all() == []
    engine.dispose()
    r = runner.invoke(app, ["token", "create", "--user", "ops", "--create-user", "--name",
                            "n" * 129], env=env)
    assert r.exit_code == 2 and "error: --name: token name must be at most 128" in r.output


def test_a_refused_submission_names_the_commands_options(served: tuple[str, World]) -> None:
    url, w = served
    code, out = _run(["jobs", "submit", "-p", "acme-llm", "-t", "h100-sxm-80g", "-g", "4",
                      "--time-limit", "0"], url, w.tokens["member_a1"])
    assert code == 2 and "error: --time-limit: " in out and "time_limit_s" not in out, out
    code, out = _run(["jobs", "submit", "-p", "acme-llm", "-t", "h100-sxm-80g", "-g", "9",
                      "--time-limit", "60"], url, w.tokens["member_a1"])
    assert code == 2 and "--per-node" in out and "gang.per_node" not in out, out
    # a listing's refusals name its options too
    code, out = _run(["jobs", "list", "--state", "weird"], url, w.tokens["member_a1"])
    assert code == 2 and "error: --state: " in out, out


def test_bad_url_is_a_usage_error_and_tables_are_not_cut(served: tuple[str, World]) -> None:
    url, w = served
    tok = w.tokens["admin"]
    code, out = _run(["jobs", "list"], "notaurl", tok)
    assert code == 2 and "--url" in out, out
    long_name = "acme-" + "x" * 90
    r = w.client.post("/v1/projects", headers=w.h("admin"),
                      json={"name": long_name[:64], "organization_id": w.ids["org_a"]})
    assert r.status_code == 201, r.text
    r = runner.invoke(app, ["projects", "list"], env={"AICC_URL": url, "AICC_TOKEN": tok,
                                                      "COLUMNS": "80"})
    assert r.exit_code == 0 and long_name[:64] in r.output, r.output


@pytest.mark.parametrize("suffix", ["/v1", "/?x=1", "/portal"])
def test_a_url_that_is_not_the_api_root_is_named(served: tuple[str, World], suffix: str) -> None:
    # the portal's HTML (200) or a 404 of a path under /v1/v1 is not an answer of the API:
    # neither a traceback nor "not found" (exit 3), as if the object were missing
    url, w = served
    code, out = _run(["projects", "list"], url + suffix, w.tokens["admin"])
    assert code == 7, out
    assert f"--url {url + suffix}" in out and "not answered as the aicc API" in out, out
    assert "Traceback" not in out


def test_show_returns_the_script(served: tuple[str, World]) -> None:
    url, w = served
    code, out = _run(["jobs", "submit", "-p", "acme-llm", "-t", "h100-sxm-80g", "-g", "4",
                      "--time-limit", "600", "--script", "echo hi", "--json"], url,
                     w.tokens["member_a1"])
    assert code == 0, out
    job = json.loads(out)
    assert job["script"] == "echo hi"
    code, out = _run(["jobs", "show", str(job["id"])], url, w.tokens["member_a1"])
    assert code == 0 and "echo hi" in out, out


def test_unknown_type_filter_is_exit_2(served: tuple[str, World]) -> None:
    url, w = served
    code, out = _run(["jobs", "list", "-t", "zz"], url, w.tokens["member_a1"])
    assert code == 2 and "accelerator type" in out, out


def test_errors_are_one_line_whatever_the_width(capsys: pytest.CaptureFixture[str]) -> None:
    # an API client command's error, piped: the long message is never wrapped onto two lines
    url = "http://127.0.0.1:1/" + "a" * 120
    r = runner.invoke(app, ["jobs", "forecast", "2", "--url", url, "--token", "x"],
                      env={"COLUMNS": "40"})
    assert r.exit_code == 7, r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert r.output.startswith("error: cannot reach") and "a" * 120 in r.output
    # a server's message with line breaks and brackets: one line, the brackets kept as text
    from aicc.cli import _fail

    with pytest.raises(typer.Exit) as exc:
        _fail("bad value\nfor [bold]field[/bold] " + "x" * 200 + "\r\nend", 2)
    assert exc.value.exit_code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("end\n")
    assert "[bold]field[/bold]" in err and "bad value for" in err


def test_forecast_arrival_options_reach_the_route(served: tuple[str, World]) -> None:
    url, w = served
    tok = w.tokens["member_a1"]
    code, out = _run(["jobs", "submit", "-p", "acme-llm", "-t", "h100-sxm-80g", "-g", "8",
                      "--time-limit", "600", "--json"], url, tok)
    assert code == 0, out
    job = json.loads(out)["id"]
    code, out = _run(["jobs", "forecast", str(job), "--arrivals", "none", "--json"], url, tok)
    assert code == 0, out
    body = json.loads(out)
    assert body["arrivals"] == "none" and body["samples"] == 1
    code, out = _run(["jobs", "forecast", str(job), "--arrivals", "history", "--samples", "3",
                      "--window-days", "2", "--json"], url, tok)
    assert code == 0, out
    body = json.loads(out)
    assert body["arrivals"] == "history" and body["samples"] == 3
    # (a store this young holds too little history to replay: the answer says so, naming
    # the window asked for)
    assert body["window_s"] == 0.0 and "2-day window" in body["basis"], body
    code, out = _run(["jobs", "forecast", str(job), "--arrivals", "poisson"], url, tok)
    assert code == 2 and "arrivals" in out, out
    # the table: the wait in words, the horizon in hours, no raw seconds
    code, out = _run(["jobs", "forecast", str(job), "--horizon-hours", "2"], url, tok)
    assert code == 0, out
    assert "predicted_wait" in out and "2 h" in out and "horizon_s" not in out


def test_token_create_on_a_database_never_upgraded_says_so(tmp_path: Path) -> None:
    env = {"AICC_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}", "AICC_CONFIG": "",
           "COLUMNS": "200"}
    r = runner.invoke(app, ["token", "create", "--user", "ops", "--create-user"], env=env)
    assert r.exit_code == 2, r.output
    assert f"no database at {tmp_path / 'new.db'}; run `aicc db upgrade` first" in r.output
    assert not (tmp_path / "new.db").exists()  # no empty database left behind
    (tmp_path / "empty.db").touch()  # a file that holds no schema
    env["AICC_DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
    r = runner.invoke(app, ["token", "create", "--user", "ops", "--create-user"], env=env)
    assert r.exit_code == 2 and "has no aicc schema; run `aicc db upgrade` first" in r.output
    env["AICC_DATABASE_URL"] = "sqlite://"
    r = runner.invoke(app, ["db", "upgrade"], env=env)
    assert r.exit_code == 2 and "in-memory SQLite database is gone" in r.output, r.output


@pytest.mark.parametrize(("option", "value", "problem"), [
    ("--token", "tok\u00e9n-0123456789abcdef", "holds '\u00e9'"),
    ("--token", "a\r\nb", "holds '\\r'"),
    ("--idempotency-key", "k\u00e9", "holds '\u00e9'"),
    ("--idempotency-key", "", "is empty"),
])
def test_header_values_are_printable_ascii(served: tuple[str, World], option: str, value: str,
                                           problem: str) -> None:
    """A token or key the HTTP client could not send is a usage error naming the option, not
    a traceback nor an unreachable server; nothing is submitted."""
    url, w = served
    token = value if option == "--token" else w.tokens["member_a1"]
    args = ["jobs", "submit", "-p", str(w.ids["p_a1"]), "-t", "h100-sxm-80g", "-g", "1",
            "--time-limit", "60"]
    if option == "--idempotency-key":
        args += [option, value]
    r = runner.invoke(app, args, env={"AICC_URL": url, "AICC_TOKEN": token, "COLUMNS": "200"})
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: {option}: {problem}"), r.output
    with session_factory(w.engine)() as s:
        assert s.scalars(select(Job)).all() == []


@pytest.mark.parametrize("limit", ["nan", "inf", "-inf"])
def test_a_time_limit_that_is_not_finite_is_a_usage_error(served: tuple[str, World],
                                                          limit: str) -> None:
    url, w = served
    code, out = _run(["jobs", "submit", "-p", str(w.ids["p_a1"]), "-t", "h100-sxm-80g", "-g",
                      "1", "--time-limit", limit], url, w.tokens["member_a1"])
    assert code == 2 and out.startswith("error: --time-limit: expected a finite number"), out


def test_control_characters_of_stored_text_are_escaped_in_tables(
        served: tuple[str, World]) -> None:
    url, w = served
    tok = w.tokens["member_a1"]
    code, out = _run(["jobs", "submit", "-p", str(w.ids["p_a1"]), "-t", "h100-sxm-80g", "-g",
                      "1", "--time-limit", "60", "--name", "a\x1b[31mred"], url, tok)
    assert code == 0, out
    code, out = _run(["jobs", "list"], url, tok)
    assert code == 0 and "\x1b" not in out and "a\\x1b[31mred" in out, out


def test_admin_without_create_user_is_refused(tmp_path: Path) -> None:
    """--admin makes a created user an admin: given for an existing user it would be ignored,
    so it is refused and the user keeps its role."""
    env = {"AICC_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "AICC_CONFIG": "",
           "COLUMNS": "200"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(app, ["token", "create", "--user", "bob", "--create-user"],
                         env=env).exit_code == 0
    r = runner.invoke(app, ["token", "create", "--user", "bob", "--admin"], env=env)
    assert r.exit_code == 2 and "--admin applies only with --create-user" in r.output, r.output
    r = runner.invoke(app, ["token", "create", "--user", "bob", "--create-user", "--admin"],
                      env=env)
    assert r.exit_code == 2 and "exists and is not a center admin" in r.output, r.output
    engine = make_engine(env["AICC_DATABASE_URL"])
    with session_factory(engine)() as s:
        assert s.scalar(select(User.is_admin).where(User.name == "bob")) is False
    engine.dispose()


def test_serve_refuses_an_in_memory_database_and_clients_a_port_out_of_range() -> None:
    r = runner.invoke(app, ["serve"], env={"AICC_DATABASE_URL": "sqlite://", "AICC_CONFIG": ""})
    assert r.exit_code == 2 and "in-memory SQLite database" in r.output, r.output
    r = runner.invoke(app, ["jobs", "list", "--url", "http://127.0.0.1:99999", "--token",
                            "x" * 20])
    assert r.exit_code == 2 and "--url: port 99999 is out of range" in r.output, r.output


@pytest.mark.parametrize(("url", "says"), [
    ("sqlite:////dev/zero", "database_url: /dev/zero is not a regular file"),
    ("sqlite:///file:m?mode=memory&uri=true", "in-memory SQLite database is gone"),
    ("postgresql+psycopg://", "names no database"),
    ("postgresql+psycopg://u@127.0.0.1:0/db", "port 0 is out of range (1-65535)"),
])
def test_a_database_url_that_cannot_hold_the_store_is_refused(url: str, says: str) -> None:
    # (a device as the file: SQLite failed with a disk I/O error and left /dev/zero-journal)
    r = runner.invoke(app, ["db", "upgrade"], env={"AICC_DATABASE_URL": url, "AICC_CONFIG": ""})
    assert r.exit_code == 2 and says in r.output, r.output
    assert not Path("/dev/zero-journal").exists()


def test_db_upgrade_refuses_a_schema_it_does_not_know(tmp_path: Path) -> None:
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'a.db'}"
    env = {"AICC_DATABASE_URL": url, "AICC_CONFIG": ""}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    engine = make_engine(url)
    with engine.begin() as conn:  # as a newer aicc would leave it
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    r = runner.invoke(app, ["db", "upgrade"], env=env)
    assert r.exit_code == 2 and "at schema 9999, which this aicc does not know" in r.output
    with engine.begin() as conn:  # aicc's tables, but no record of their schema
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    r = runner.invoke(app, ["db", "upgrade"], env=env)
    assert r.exit_code == 2 and "holds aicc tables" in r.output and "no schema record" in \
        r.output, r.output

