"""Small shared pieces of the routers: the transaction, paging parameters, the refusal of
query parameters a route does not declare."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from aicc.errors import InvalidInput, UnknownAcceleratorType
from aicc.store.db import transaction
from aicc.store.models import AcceleratorTypeRow

MAX_ID = 2**31 - 1


def path_id() -> Any:
    """An id in the path: a positive 32-bit integer (a fresh declaration per parameter)."""
    return Path(ge=1, le=MAX_ID)


Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
After = Annotated[int, Query(ge=0, le=2**31 - 1, description="return ids after this one")]
# A filter by id: a positive 32-bit integer, as in a path (0, a negative or a huge id is invalid
# input naming the parameter, never an empty page nor a database error).
FilterId = Annotated[int | None, Query(ge=1, le=MAX_ID, description="only rows of this id")]


def center_now(request: Request) -> datetime:
    """Now on the center's clock (``app.state.clock``): the control plane's when the API runs
    beside one (an accelerated demo clock runs hours ahead of the wall), else the wall."""
    return datetime.fromtimestamp(request.app.state.clock.now(), UTC)


def known_accelerator_type(session: Session, name: str | None) -> None:
    """A filter naming a type outside the catalog is invalid input (422), as it is in a
    submission or a grant, not an empty page."""
    if name is not None and session.get(AcceleratorTypeRow, name[:48]) is None:
        raise UnknownAcceleratorType(f"unknown accelerator type {name!r}",
                                     field="accelerator_type")


@contextmanager
def tx(request: Request) -> Iterator[Session]:
    """One transaction, committed before the route returns (so before the client hears back)."""
    with transaction(request.app.state.session_factory) as session:
        yield session


API_PREFIX = "/v1/"
_DECLARED = "_aicc_declared_query"  # the answer of declared_query, kept on the route


def declared_query(route: APIRoute) -> tuple[str, ...]:
    """The query parameters ``route`` takes, its dependencies' included, as sent on the wire."""
    names: tuple[str, ...] | None = getattr(route, _DECLARED, None)
    if names is None:
        found: dict[str, None] = {}
        stack: list[Dependant] = [route.dependant]
        while stack:
            dep = stack.pop()
            found.update(dict.fromkeys(f.alias for f in dep.query_params))
            stack.extend(reversed(dep.dependencies))
        names = tuple(found)
        setattr(route, _DECLARED, names)
    return names


def unknown_query_errors(sent: Iterable[str], accepted: tuple[str, ...]) -> list[dict[str, Any]]:
    """One validation error per parameter ``sent`` that is not ``accepted``, and one per
    parameter sent more than once (no route takes a list; the last value would win silently).
    None: all known, each once."""
    hint = (f"accepted: {', '.join(accepted)}" if accepted
            else "this route takes no query parameters")
    names = list(sent)
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    return [{"loc": ("query", name), "type": "unknown_query_parameter", "input": name,
             "msg": f"unknown query parameter; {hint}"}
            for name in seen if name not in accepted] + [
            {"loc": ("query", name), "type": "repeated_query_parameter", "input": name,
             "msg": f"given {n} times; give it once"}
            for name, n in seen.items() if n > 1 and name in accepted]


async def reject_unknown_query(request: Request) -> None:
    """A query parameter a ``/v1`` route does not declare is 422, not silently ignored: a typo
    (``?by=sector`` for ``?group_by=sector``) would otherwise answer with the defaults as if it
    were understood. Installed once for the whole application; the portal, docs, metrics and
    health pages outside ``/v1`` keep tolerating extra parameters (cache busters, probe tags)."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.path.startswith(API_PREFIX):
        return
    errors = unknown_query_errors((k for k, _ in request.query_params.multi_items()),
                                  declared_query(route))
    if errors:
        raise RequestValidationError(errors)


def single_header(name: str, values: list[str]) -> str | None:
    """The one value of header ``name`` (None when absent); a header sent more than once is
    refused rather than one of its values silently chosen."""
    if len(values) > 1:
        raise InvalidInput(f"{name} is given {len(values)} times; give it once", field=name)
    return values[0] if values else None
