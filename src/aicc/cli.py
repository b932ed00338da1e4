"""The ``aicc`` command line: operator commands on the database, and client commands on the API.

Exit codes (errors are mapped here, at the edge, and nowhere else):

    0 ok · 1 other error · 2 usage or invalid input · 3 not found · 4 authentication or
    permission · 5 conflict (illegal transition, duplicate) · 6 server or engine error ·
    7 server unreachable
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table

from aicc.config import Settings, load_settings
from aicc.errors import EXIT_CODE, AiccError, lookup

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="aicc: operations platform of a national AI computing center.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema and reference data.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
jobs_app = typer.Typer(no_args_is_help=True, help="Submit, list, show, cancel and forecast jobs.")
projects_app = typer.Typer(no_args_is_help=True, help="Projects you can see.")
grants_app = typer.Typer(no_args_is_help=True, help="Grants of the projects you can see.")

out = Console()
err = Console(stderr=True)

EXIT_UNREACHABLE = 7
EXIT_SERVER = 6
# HTTP status of an API error → exit code (the same classes as ``errors.EXIT_CODE``).
HTTP_EXIT = {400: 2, 401: 4, 403: 4, 404: 3, 409: 5, 413: 2, 415: 2, 422: 2}

UrlOpt = Annotated[str, typer.Option("--url", envvar="AICC_URL", help="API base URL")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="AICC_TOKEN",
                                              help="bearer API token")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
DEFAULT_URL = "http://127.0.0.1:8000"


def _escaped(text: str) -> str:
    """Control characters as their escapes (``\\x1b``): text shown on a terminal never drives it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _fail(message: str, code: int) -> NoReturn:
    """``error: MESSAGE`` on one line of stderr, whatever the terminal's width or the message:
    never wrapped (a pipe or a log gets the message whole), line breaks of a server's answer
    turned into spaces and other control characters escaped, brackets printed as they are
    (not read as markup)."""
    _say_error(message)
    raise typer.Exit(code)


def _say_error(message: str) -> None:
    """The ``error:`` line of :func:`_fail`, for callers outside a command (:func:`main`)."""
    one = _escaped(str(message).replace("\r\n", " ").replace("\n", " "))
    err.print("[red]error:[/red] ", end="", highlight=False)
    err.print(one, highlight=False, markup=False, soft_wrap=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except AiccError as exc:
        _fail(exc.message, lookup(EXIT_CODE, exc))


# --- operator commands (direct database access) -------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    seed: Annotated[bool, typer.Option(help="seed the catalog and the default sectors")] = True,
) -> None:
    """Bring the database to the newest schema (and seed reference data)."""
    from aicc.store.db import open_database, session_factory, sqlite_file, transaction
    from aicc.store.migrate import current, upgrade
    from aicc.store.seed import seed_catalog, seed_default_sectors

    settings = _settings()
    if sqlite_file(settings.database_url) == "":
        _fail("database_url: an in-memory SQLite database is gone when this command ends; give "
              "a file (sqlite:///var/aicc.db) or a server", 2)
    try:
        engine = open_database(settings.database_url)
    except AiccError as exc:
        _fail(exc.message, lookup(EXIT_CODE, exc))
    try:
        try:
            upgrade(engine)
        except AiccError as exc:  # a schema this code does not know
            _fail(exc.message, lookup(EXIT_CODE, exc))
        if seed:
            with transaction(session_factory(engine)) as session:
                seed_catalog(session)
                seed_default_sectors(session)
        out.print(f"database at revision {current(engine)} ({engine.url.get_backend_name()})")
    finally:
        engine.dispose()


def open_store(url: str) -> Engine:
    """The database at the schema this code reads, else one line naming ``database_url`` and
    exit 2 (an unreachable server, or a database ``aicc db upgrade`` has not prepared)."""
    from alembic.script import ScriptDirectory

    from aicc.store.db import open_database, sqlite_file
    from aicc.store.migrate import alembic_config, current

    path = sqlite_file(url)
    if path is not None and (path == "" or not Path(path).exists()):
        # (connecting would create an empty file, or a database gone at exit)
        where = "an in-memory database" if path == "" else f"no database at {path}"
        _fail(f"database_url: {where}; run `aicc db upgrade` first", 2)
    try:
        db = open_database(url)
    except AiccError as exc:
        _fail(exc.message, lookup(EXIT_CODE, exc))
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    at = current(db)
    if at != head:
        db.dispose()
        state = "has no aicc schema" if at is None else f"is at schema {at}, not {head}"
        _fail(f"database_url: the database {state}; run `aicc db upgrade` first", 2)
    return db


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="user name")],
    name: Annotated[str, typer.Option("--name", help="label of the token")] = "",
    create_user: Annotated[bool, typer.Option("--create-user",
                                              help="create the user if missing")] = False,
    admin: Annotated[bool, typer.Option("--admin", help="a created user is a center admin")]
    = False,
) -> None:
    """Mint an API token for a user (printed once; only its hash is stored)."""
    from pydantic import ValidationError

    from aicc.api.schemas import UserIn
    from aicc.api.tokens import create_token

    if admin and not create_user:
        _fail("--admin applies only with --create-user (it makes a created user a center "
              "admin; an existing user keeps its role): add --create-user or drop --admin", 2)
    try:  # the user name rule of POST /v1/users
        UserIn(name=user, is_admin=admin)
    except ValidationError as exc:
        _fail(f"--user: {exc.errors()[0]['msg']}", 2)
    from aicc.store.db import session_factory, transaction
    from aicc.tenancy import service

    engine = open_store(_settings().database_url)
    try:
        with transaction(session_factory(engine)) as session:
            try:
                u = service.get_user_by_name(session=session, name=user)
            except AiccError:
                if not create_user:
                    raise
                u = service.create_user(session=session, name=user, is_admin=admin)
            else:
                if admin and not u.is_admin:
                    _fail(f"--admin: user {user!r} exists and is not a center admin; an existing "
                          "user keeps its role (drop --admin, or name a new user)", 2)
            try:
                token = create_token(session=session, user_id=u.id, name=name)
            except AiccError as exc:  # (its field "name" is the token's: --name)
                raise type(exc)(f"--name: {exc.message}", field="name") from None
    except AiccError as exc:
        _fail(exc.message, lookup(EXIT_CODE, exc))
    finally:
        engine.dispose()
    out.print(token, highlight=False)


@app.command("serve")
def serve(
    demo: Annotated[bool, typer.Option("--demo", help="seed demo tenants and a workload")]
    = False,
    reset: Annotated[bool, typer.Option("--reset", help="start from an empty database")]
    = False,
    host: Annotated[str | None, typer.Option("--host")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
) -> None:
    """Run the control plane and the API (http://127.0.0.1:8000 by default)."""
    from aicc.store.db import sqlite_file

    settings = _settings()
    if sqlite_file(settings.database_url) == "":
        _fail("database_url: an in-memory SQLite database is not shared by the control plane "
              "and the API, nor kept; give a file (sqlite:///var/aicc.db) or a server", 2)
    if host is not None or port is not None:
        server = settings.server.model_copy(update={
            k: v for k, v in (("host", host), ("port", port)) if v is not None})
        settings = settings.model_copy(update={"server": server})
    try:
        from aicc.service.serve import serve as run_service
    except ImportError:
        run_service = None
    if run_service is not None:
        try:
            run_service(settings, demo=demo, reset=reset)
        except AiccError as exc:  # bad address, database or fleet: one line, exit 2
            _fail(exc.message, lookup(EXIT_CODE, exc))
        return
    # Without the control plane: the API alone, on a migrated database.
    import uvicorn

    from aicc.api.app import create_app
    from aicc.store.db import make_engine
    from aicc.store.migrate import upgrade

    upgrade(make_engine(settings.database_url))
    uvicorn.run(create_app(settings), host=settings.server.host, port=settings.server.port)


# --- client commands (through the API) ----------------------------------------------------


class Client:
    """A small synchronous API client that turns error answers into exit codes."""

    def __init__(self, url: str, token: str | None) -> None:
        if not token:
            _fail("no API token: pass --token or set AICC_TOKEN", 2)
        _header_value("--token", token)
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, UnicodeError) as exc:
            _fail(f"--url: not a URL ({exc})", 2)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            _fail(f"--url: {url!r} is not an http(s) URL such as {DEFAULT_URL}", 2)
        if parsed.port is not None and not 1 <= parsed.port <= 65535:
            _fail(f"--url: port {parsed.port} is out of range (1-65535)", 2)
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, *, options: dict[str, str] | None = None,
             **kw: Any) -> Any:
        """The answer of ``method path``; an error answer exits, its field named as the
        command's option where ``options`` (API field → option) has it."""
        headers = self.headers | kw.pop("headers", {})
        try:
            with httpx.Client(base_url=self.url, timeout=30.0, headers=headers) as http:
                r = http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            _fail(f"cannot reach {self.url}: {exc}", EXIT_UNREACHABLE)
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.status_code < 400:
            if not isinstance(data, dict):  # every answer of the API is a JSON object
                self._not_the_api(method, path, r)
            return data
        error = data.get("error") if isinstance(data, dict) else None
        if (not isinstance(error, dict) or not isinstance(error.get("message"), str)
                or error.get("code") == "unknown_route"):
            if r.status_code >= 500:
                _fail(f"server error {r.status_code}: {r.reason_phrase}", EXIT_SERVER)
            self._not_the_api(method, path, r)  # e.g. a 404 page of another server
        message = error["message"]
        option = (options or {}).get(str(error.get("field")))
        if option is not None:
            field = str(error["field"])
            named = message.startswith(field) and not (message[len(field):len(field) + 1]
                                                       .replace("_", "a").isalnum())
            message = option + message.removeprefix(field) if named else f"{option}: {message}"
        for field, opt in (options or {}).items():  # other fields the message names
            if "_" in field or "." in field:  # (an identifier, never a plain word)
                message = re.sub(rf"(?<![\w.-]){re.escape(field)}(?![\w.-])", opt, message)
        if r.status_code >= 500:
            _fail(f"server error {r.status_code}: {message}", EXIT_SERVER)
        _fail(f"{message} (HTTP {r.status_code})", HTTP_EXIT.get(r.status_code, 1))

    def _not_the_api(self, method: str, path: str, r: httpx.Response) -> NoReturn:
        kind = r.headers.get("content-type", "no content type").split(";")[0]
        _fail(f"--url {self.url}: {method} {path} is not answered as the aicc API answers "
              f"(HTTP {r.status_code}, {kind}); check --url (the server's root, such as "
              f"{DEFAULT_URL})", EXIT_UNREACHABLE)


def _emit(data: Any, as_json: bool, columns: list[str], title: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    rows = data["items"] if isinstance(data, dict) and "items" in data else data
    if isinstance(rows, dict):  # one object: field / value
        t = Table(show_header=False, title=title)
        for k, v in rows.items():
            t.add_row(k, _cell(v))
        _print_table(t)
        return
    t = Table(title=title)
    for c in columns:
        t.add_column(c, no_wrap=True)
    for row in rows:
        t.add_row(*[_cell(_get(row, c)) for c in columns])
    _print_table(t)
    if isinstance(data, dict) and data.get("next_after"):
        out.print(f"more: --after {data['next_after']}", style="dim")


def _print_table(t: Table) -> None:
    """On a terminal, as wide as the terminal; piped or redirected, as wide as the content, so
    that names a user must type again are never cut."""
    if out.is_terminal:
        out.print(t)
    else:
        Console(width=100_000).print(t)


def _get(row: dict, column: str) -> Any:
    if column == "shape":
        g = row.get("gang", {})
        return f"{g.get('nodes')}×{g.get('per_node')}"
    return row.get(column)


def _header_value(option: str, value: str) -> None:
    """A value sent in an HTTP header (a token, an idempotency key) is printable ASCII: any
    other character is refused naming the option (a token pasted with a line break or an
    accent), rather than failing in the HTTP client or passing for an unreachable server."""
    bad = [c for c in value if not (c.isascii() and c.isprintable())]
    if bad or not value.strip():
        what = f"holds {bad[0]!r}" if bad else "is empty"
        _fail(f"{option}: {what}; only printable ASCII characters are allowed", 2)


def _cell(v: Any) -> str:
    """A table cell: control characters of stored text (a job's name, a reason) are escaped,
    so that one user's text cannot drive another user's terminal."""
    if v is None:
        return "-"
    if isinstance(v, dict):
        text = ", ".join(f"{k}={x}" for k, x in v.items())
    elif isinstance(v, list):
        text = ", ".join(str(x) for x in v)
    else:
        text = str(v)
    return _escaped(text)


def _project_id(client: Client, ref: str) -> int:
    """A project by id, or by name among the projects the caller can see."""
    if ref.isascii() and ref.isdigit():
        return int(ref)  # (an id out of range is refused by the API, naming the parameter)
    after = 0
    while True:
        data = client.call("GET", "/v1/projects", params={"limit": 1000, "after": after})
        for p in data["items"]:
            if p["name"] == ref:
                return int(p["id"])
        if not data.get("next_after"):
            _fail(f"no project named {ref!r}", 3)
        after = data["next_after"]


JOB_COLUMNS = ["id", "name", "project_id", "accelerator_type", "shape", "job_class", "state",
               "reason", "submitted_at"]


# the fields of a submission, as jobs submit's options name them in an error
SUBMIT_OPTIONS = {"project_id": "--project", "accelerator_type": "--type",
                  "gang.per_node": "--per-node", "gang.nodes": "--nodes",
                  "time_limit_s": "--time-limit", "job_class": "--class",
                  "preemptible": "--preemptible", "name": "--name", "grant_id": "--grant",
                  "script": "--script", "Idempotency-Key": "--idempotency-key"}


# the query parameters of a job listing, as jobs list's options name them in an error
LIST_OPTIONS = {"project_id": "--project", "state": "--state", "accelerator_type": "--type",
                "limit": "--limit", "after": "--after"}


@jobs_app.command("submit")
def jobs_submit(
    project: Annotated[str, typer.Option("--project", "-p", help="project id or name")],
    accelerator_type: Annotated[str, typer.Option("--type", "-t", help="accelerator type")],
    per_node: Annotated[int, typer.Option("--per-node", "-g",
                                          help="accelerators per node (or the count of a job "
                                               "below one node)")],
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds")],
    nodes: Annotated[int, typer.Option("--nodes", "-N")] = 1,
    job_class: Annotated[str, typer.Option("--class", help="interactive, batch or flexible")]
    = "batch",
    preemptible: Annotated[bool, typer.Option("--preemptible")] = False,
    name: Annotated[str, typer.Option("--name")] = "",
    grant: Annotated[int | None, typer.Option("--grant")] = None,
    script: Annotated[str | None, typer.Option("--script", help="command to run")] = None,
    idempotency_key: Annotated[str | None, typer.Option(
        "--idempotency-key", help="retrying with the same key never submits twice")] = None,
    url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Submit a job; it is stored as pending before this returns."""
    if not math.isfinite(time_limit):
        _fail(f"--time-limit: expected a finite number of seconds, got {time_limit}", 2)
    if idempotency_key is not None:
        _header_value("--idempotency-key", idempotency_key)
    client = Client(url, token)
    body: dict[str, Any] = {
        "project_id": _project_id(client, project), "accelerator_type": accelerator_type,
        "gang": {"nodes": nodes, "per_node": per_node}, "time_limit_s": time_limit,
        "job_class": job_class, "preemptible": preemptible, "name": name,
    }
    if grant is not None:
        body["grant_id"] = grant
    if script is not None:
        body["script"] = script
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    job = client.call("POST", "/v1/jobs", json=body, headers=headers, options=SUBMIT_OPTIONS)
    _emit(job, as_json, JOB_COLUMNS, title=f"job {job['id']}")


@jobs_app.command("list")
def jobs_list(
    project: Annotated[str | None, typer.Option("--project", "-p")] = None,
    state: Annotated[str | None, typer.Option("--state")] = None,
    accelerator_type: Annotated[str | None, typer.Option("--type", "-t")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    after: Annotated[int, typer.Option("--after", min=0)] = 0,
    url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Jobs of the projects you can see, oldest first."""
    client = Client(url, token)
    params: dict[str, Any] = {"limit": limit, "after": after}
    if project is not None:
        params["project_id"] = _project_id(client, project)
    if state is not None:
        params["state"] = state
    if accelerator_type is not None:
        params["accelerator_type"] = accelerator_type
    _emit(client.call("GET", "/v1/jobs", params=params, options=LIST_OPTIONS), as_json,
          JOB_COLUMNS, title="jobs")


@jobs_app.command("show")
def jobs_show(job_id: Annotated[int, typer.Argument(min=1)], url: UrlOpt = DEFAULT_URL,
              token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """One job with its state, reason and timestamps."""
    client = Client(url, token)
    _emit(client.call("GET", f"/v1/jobs/{job_id}"), as_json, [], title=f"job {job_id}")


@jobs_app.command("cancel")
def jobs_cancel(job_id: Annotated[int, typer.Argument(min=1)],
                reason: Annotated[str, typer.Option("--reason")] = "",
                url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, as_json: JsonOpt = False
                ) -> None:
    """Cancel a pending or running job."""
    client = Client(url, token)
    job = client.call("POST", f"/v1/jobs/{job_id}/cancel", json={"reason": reason},
                      options={"reason": "--reason"})
    _emit(job, as_json, [], title=f"job {job_id}")


@projects_app.command("list")
def projects_list(limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
                  after: Annotated[int, typer.Option("--after", min=0)] = 0,
                  url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, as_json: JsonOpt = False
                  ) -> None:
    """Projects you can see."""
    client = Client(url, token)
    data = client.call("GET", "/v1/projects", params={"limit": limit, "after": after})
    _emit(data, as_json, ["id", "name", "title", "organization_id", "weight"], title="projects")


@grants_app.command("list")
def grants_list(project: Annotated[str | None, typer.Option("--project", "-p")] = None,
                limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
                after: Annotated[int, typer.Option("--after", min=0)] = 0,
                url: UrlOpt = DEFAULT_URL, token: TokenOpt = None, as_json: JsonOpt = False
                ) -> None:
    """Grants of the projects you can see."""
    client = Client(url, token)
    params: dict[str, Any] = {"limit": limit, "after": after}
    if project is not None:
        params["project_id"] = _project_id(client, project)
    data = client.call("GET", "/v1/grants", params=params)
    _emit(data, as_json, ["id", "project_id", "accelerator_type", "accelerator_hours", "start",
                          "end", "state"], title="grants")


# --- command groups: one add_typer line each (further groups and commands go here) ---------
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(jobs_app, name="jobs")
app.add_typer(projects_app, name="projects")
app.add_typer(grants_app, name="grants")
from aicc.cli_center import fleet_app, lending, usage  # noqa: E402  (uses the helpers above)

app.add_typer(fleet_app, name="fleet")
app.command("usage")(usage)
app.command("lending")(lending)
from aicc.sim.cli import jobs_forecast, simulate  # noqa: E402

app.command("simulate")(simulate)
jobs_app.command("forecast")(jobs_forecast)
from aicc.engines.slurm.cli import slurm_app  # noqa: E402

app.add_typer(slurm_app, name="slurm")
# --- end of command groups -----------------------------------------------------------------


def _not_text(value: str) -> bool:
    """Bytes that are not UTF-8 reach Python as surrogates, which nothing can send or print."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_input_text(argv: list[str], environ: dict[str, str]) -> None:
    """Arguments and ``AICC_*`` variables are text: one that is not UTF-8 is refused, naming
    the option (or variable) it came from, before a command could fail on it half-way."""
    for i, arg in enumerate(argv):
        if _not_text(arg):
            if arg.startswith("-") and "=" in arg:
                where = arg.split("=", 1)[0]
            elif i and argv[i - 1].startswith("-") and not _not_text(argv[i - 1]):
                where = argv[i - 1]
            else:
                where = f"argument {i + 1}"
            _fail(f"{_escaped(where)}: not valid UTF-8 text", 2)
    for name, value in sorted(environ.items()):
        if name.startswith("AICC_") and _not_text(value):
            _fail(f"{name}: not valid UTF-8 text", 2)


# errors of writing the output itself (a full disk, /dev/full, a failed device)
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT}


def main(argv: list[str] | None = None) -> None:
    """The ``aicc`` command: the application, with the checks no single command can make."""
    args = sys.argv[1:] if argv is None else argv
    try:
        check_input_text(args, dict(os.environ))
        code = app(args=args, prog_name="aicc", standalone_mode=False)
    except typer.TyperException as exc:  # the parser's refusals (usage errors, exit 2)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group alone: its help
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "aicc"
        message = exc.format_message().replace(": Value error, ", ": ")  # type: ignore[attr-defined]
        _say_error(f"{message} (see {where} --help)")  # one line, as every refusal
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:  # (an end of input where a prompt waited; Ctrl-C exits 130 itself)
        err.print("aborted", highlight=False)
        sys.exit(1)
    except typer.Exit as exc:  # (raised outside the application by check_input_text)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.errno != errno.EPIPE and exc.errno not in _OUTPUT_ERRNOS:
            raise
        # the output cannot be written: let nothing retry the write at exit (Python flushes
        # stdout then, and would report the same error again); a reader that went away
        # (| head) is told nothing, a full disk once, on stderr
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if exc.errno != errno.EPIPE:
            _say_error(f"cannot write the output ({exc.strerror or exc})")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("COLUMNS", "160")
    main()
