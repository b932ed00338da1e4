"""Request and response bodies of the API (pydantic). Inputs forbid unknown fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    field_validator,
)
from pydantic_core import PydanticCustomError

from aicc.store.models import GrantState, NodeState, Role

MAX_ID = 2**31 - 1
# Strict numbers and booleans: JSON ``true`` is no count, ``"13"`` no id and ``"yes"`` no flag.
Id = Annotated[int, Strict(), Field(ge=1, le=MAX_ID)]


def _no_nul(v: str) -> str:
    if "\x00" in v:
        raise ValueError("must not contain NUL characters")
    return v


Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                            description="letters, digits, '.', '_' and '-', up to 64")]
Text = Annotated[str, Field(max_length=256), AfterValidator(_no_nul)]
Share = Annotated[float, Strict(), Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Weight = Annotated[float, Strict(), Field(gt=0.0, le=1e6, allow_inf_nan=False)]
Hours = Annotated[float, Strict(), Field(gt=0, le=1e12, allow_inf_nan=False)]


# A time in a request: an ISO 8601 string with a zone, never a number (pydantic would read
# 1700000000 as seconds since the epoch) nor a naive time (whose zone would be a guess).
_ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                    r"([Zz]|[+-]\d{2}:?\d{2})$")
ZONED_MESSAGE = "must be an ISO 8601 time with a time zone, e.g. 2028-01-01T00:00:00Z"


def _zoned(v: Any) -> Any:
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v  # from Python callers, already a time
    if not isinstance(v, str) or not _ZONED.match(v):
        raise PydanticCustomError("zoned_datetime", ZONED_MESSAGE)
    return v


def _utc(v: datetime) -> datetime:
    """In UTC, as the store keeps times and every answer writes them (with ``Z``)."""
    try:
        return v.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("datetime_range", "is out of range") from None


ZonedTime = Annotated[AwareDatetime, BeforeValidator(_zoned), AfterValidator(_utc),
                      Field(description="ISO 8601 with a time zone, e.g. 2028-01-01T00:00:00Z")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _refuse_null(v: Any) -> Any:
    if v is None:
        raise ValueError("must not be null: leave the field out to keep its value")
    return v


class _Patch(_In):
    """A partial change: a field left out stays as it is. An explicit null is refused, naming
    the field: it would read as "clear this", which none of these fields can be, and a 200
    that changed nothing would hide the mistake."""

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        return _refuse_null(v)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_after: int | None = Field(
        None, description="pass as ?after= for the next page; null on the last page")


def page(items: list, limit: int, model: type[BaseModel]) -> dict:
    out = [model.model_validate(i).model_dump(mode="json") for i in items]
    return {"items": out, "next_after": items[-1].id if len(items) == limit and items else None}


# --- tenancy -------------------------------------------------------------------------------


class SectorIn(_In):
    name: Name
    description: Text = ""
    lend_limit: Share = 1.0
    shares: dict[str, Share] = Field(default_factory=dict,
                                     description="entitlement share by accelerator type")


class SectorPatch(_Patch):
    description: Text | None = None
    lend_limit: Share | None = None
    shares: dict[str, Share] | None = None


class EntitlementOut(_Out):
    accelerator_type: str
    share: float


class SectorOut(_Out):
    id: int
    name: str
    description: str
    lend_limit: float
    entitlements: list[EntitlementOut]


class OrganizationIn(_In):
    name: Name
    sector_id: Id
    region: Annotated[str, Field(max_length=64), AfterValidator(_no_nul)] = ""
    weight: Weight = 1.0


class OrganizationPatch(_Patch):
    sector_id: Id | None = None
    region: Annotated[str, Field(max_length=64), AfterValidator(_no_nul)] | None = None
    weight: Weight | None = None


class OrganizationOut(_Out):
    id: int
    name: str
    sector_id: int
    region: str
    weight: float
    created_at: datetime


class ProjectIn(_In):
    name: Name
    organization_id: Id
    title: Text = ""
    weight: Weight = 1.0


class ProjectPatch(_Patch):
    title: Text | None = None
    weight: Weight | None = None


class ProjectOut(_Out):
    id: int
    name: str
    title: str
    organization_id: int
    weight: float
    created_at: datetime


class UserIn(_In):
    name: Name
    email: Text = ""
    is_admin: StrictBool = False


class UserOut(_Out):
    id: int
    name: str
    email: str
    is_admin: bool


class MeOut(BaseModel):
    user_id: int
    name: str
    is_admin: bool
    project_ids: list[int]
    org_ids: list[int]


class TokenIn(_In):
    name: Text = ""


class TokenOut(BaseModel):
    token: str = Field(description="shown once; only its SHA-256 is stored")
    user_id: int


class MembershipIn(_In):
    user_id: Id
    role: Role
    project_id: Id | None = None
    organization_id: Id | None = None


class MembershipPatch(_In):
    """A partial change: the role, the scope, or both. A membership keeps its user (a
    ``user_id`` here is refused as an unknown field). When either scope field is sent, the
    scope becomes exactly what was sent; when neither is, it stays."""

    role: Role | None = None
    project_id: Id | None = None
    organization_id: Id | None = None

    @field_validator("role", mode="before")  # (the scope fields may be null: see above)
    @classmethod
    def _role_not_null(cls, v: Any) -> Any:
        return _refuse_null(v)


class MembershipOut(_Out):
    id: int
    user_id: int
    role: Role
    project_id: int | None
    organization_id: int | None
    created_at: datetime


# --- grants --------------------------------------------------------------------------------


class GrantIn(_In):
    project_id: Id
    accelerator_type: Annotated[str, Field(min_length=1, max_length=48)]
    accelerator_hours: Hours
    start: ZonedTime
    end: ZonedTime
    note: Annotated[str, Field(max_length=512), AfterValidator(_no_nul)] = ""


class GrantPatch(_Patch):
    accelerator_hours: Hours | None = None
    start: ZonedTime | None = None
    end: ZonedTime | None = None
    state: GrantState | None = None
    note: Annotated[str, Field(max_length=512), AfterValidator(_no_nul)] | None = None


class GrantOut(_Out):
    id: int
    project_id: int
    accelerator_type: str
    accelerator_hours: float
    start: datetime
    end: datetime
    state: GrantState
    note: str
    created_at: datetime


# --- nodes ---------------------------------------------------------------------------------


class NodeOut(_Out):
    id: int
    name: str
    accelerator_type: str
    accelerators: int
    state: NodeState
    state_reason: str
    drained: bool
    drain_reason: str
    leaf: str
    pod_id: int
    updated_at: datetime


class DrainIn(_In):
    reason: Text = ""


# --- jobs ----------------------------------------------------------------------------------


class GangOut(BaseModel):
    nodes: int
    per_node: int


class JobOut(BaseModel):
    id: int
    name: str
    project_id: int
    grant_id: int | None
    grant_named: bool = Field(description=(
        "true: the submission named grant_id, which stays the job's; false: grant_id is the "
        "one the control loop chose at the job's latest start (null before its first, or where "
        "none was live), chosen again at each start, so a requeued job is charged to the grant "
        "live then"))
    submitted_by: int | None
    accelerator_type: str
    gang: GangOut
    accelerators: int
    time_limit_s: float
    job_class: str
    preemptible: bool
    runtime_s: float | None
    script: str | None
    state: str
    reason: str
    submitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    placement: list[str] | None
    attempts: int


class CancelIn(_In):
    reason: Text = ""


# --- errors and the forecast (documented in OpenAPI; the answers are built by hand) --------


class Problem(BaseModel):
    field: str
    message: str
    type: str


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. invalid_input, unknown_job, busy")
    message: str = Field(description="what is wrong, naming the field")
    field: str | None = Field(None, description="the input at fault (a dotted path), if any")
    problems: list[Problem] | None = Field(
        None, description="invalid input: every problem found (up to 20)")


class ErrorOut(BaseModel):
    error: ErrorDetail


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# every route may answer these (docs/api.md, "Errors")
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _err("no valid bearer token"),
    403: _err("the caller's role does not allow it"),
    404: _err("unknown, or not visible to the caller"),
    409: _err("conflicts with the stored state"),
    422: _err("invalid input, naming the field"),
}


class ForecastOut(BaseModel):
    """``GET /v1/jobs/{id}/forecast`` (docs/api.md). A running job's answer has the fields up
    to ``predicted_start_high`` and ``basis: "running"``."""

    job_id: int
    state: str
    policy: str
    sector_queueing: str
    require_grant: bool
    now: str
    predicted_start: str | None = Field(description="median over the samples; null beyond "
                                                    "the horizon")
    predicted_wait_s: float | None
    predicted_start_low: str | None
    predicted_start_high: str | None
    horizon_s: float | None = None
    arrivals: str | None = None
    samples: int | None = None
    window_s: float | None = Field(None, description="seconds of past submissions replayed")
    future_jobs: int | None = None
    running_jobs: int | None = None
    pending_jobs: int | None = None
    wall_s: float | None = None
    held_for: str | None = Field(None, description="beyond the horizon: the hold reason there")
    held_message: str | None = None
    basis: str
