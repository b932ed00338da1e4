"""``GET /v1/usage``: ledger totals by project, organization or sector over a period."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from aicc.api.auth import CurrentPrincipal
from aicc.api.schemas import ZonedTime
from aicc.store.db import transaction
from aicc.web.usage import GroupBy, usage_report
from aicc.workload.jobs import iso_time

router = APIRouter(tags=["usage"])


@router.get("/v1/usage")
async def get_usage(
    request: Request,
    principal: CurrentPrincipal,
    group_by: Annotated[GroupBy, Query(description="project, organization or sector")] = "project",
    start: Annotated[ZonedTime | None,
                     Query(description="period start, ISO 8601 with a time zone")] = None,
    end: Annotated[ZonedTime | None,
                   Query(description="period end, exclusive, ISO 8601 with a time zone")] = None,
    accelerator_type: Annotated[str | None, Query(min_length=1, max_length=48)] = None,
) -> dict[str, Any]:
    """Usage the caller may see: a member sees its projects, an org admin its organizations'
    projects, the center admin everything. An entry counts in the period holding its end."""

    def run() -> list[dict[str, Any]]:
        with transaction(request.app.state.session_factory) as session:
            rows = usage_report(session=session, principal=principal, group_by=group_by,
                                start=start, end=end, accelerator_type=accelerator_type)
            return [r.to_dict() for r in rows]

    rows = await run_in_threadpool(run)
    return {
        "group_by": group_by,
        "start": iso_time(start),
        "end": iso_time(end),
        "accelerator_type": accelerator_type,
        "rows": rows,
        "total_accelerator_hours": sum(r["accelerator_hours"] for r in rows),
    }
