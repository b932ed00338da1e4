"""Small shared pieces of the routers: the transaction, paging parameters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from sqlalchemy.orm import Session

from aicc.errors import UnknownAcceleratorType
from aicc.store.db import transaction
from aicc.store.models import AcceleratorTypeRow

MAX_ID = 2**31 - 1


def path_id() -> Any:
    """An id in the path: a positive 32-bit integer (a fresh declaration per parameter)."""
    return Path(ge=1, le=MAX_ID)


Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
After = Annotated[int, Query(ge=0, le=2**31 - 1, description="return ids after this one")]


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
