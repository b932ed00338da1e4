"""Routes for jobs: submit (idempotent, group-committed), list, get, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from aicc.api.auth import CurrentPrincipal
from aicc.api.deps import (
    After,
    FilterId,
    Limit,
    center_now,
    known_accelerator_type,
    path_id,
    single_header,
    tx,
)
from aicc.api.schemas import CancelIn, JobOut, Page
from aicc.api.submitter import GroupCommitter
from aicc.store.models import JobClassName, JobState
from aicc.workload import jobs as service
from aicc.workload.jobs import MAX_IDEMPOTENCY_KEY, JobSubmission, SubmitRequest

router = APIRouter(prefix="/v1", tags=["jobs"])
# Checked by the submission itself (``workload.jobs``), as on the fast path, so both answer a
# bad key alike; the bound is only documented here.
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", json_schema_extra={"maxLength": MAX_IDEMPOTENCY_KEY},
           description="up to 128 printable ASCII characters, sent once; the same key (per "
           "user) always returns the same job, never a second"),
]


@router.post("/jobs", response_model=JobOut, status_code=201,
             responses={200: {"description": "an earlier submission with this Idempotency-Key",
                              "model": JobOut}})
async def submit_job(request: Request, principal: CurrentPrincipal, body: JobSubmission,
                     idempotency_key: IdempotencyKey = None) -> JSONResponse:
    """Store a pending job; answered after it is committed. 201 when created, 200 when the
    Idempotency-Key names an earlier submission (which is returned unchanged). (The header
    is read from the request, where a repeated one can be seen; the parameter documents it.)"""
    del idempotency_key
    committer: GroupCommitter = request.app.state.committer
    key = single_header("Idempotency-Key", request.headers.getlist("idempotency-key"))
    job, created = await committer.submit_async(SubmitRequest(principal, body, key))
    return JSONResponse(job, status_code=201 if created else 200)


@router.get("/jobs", response_model=Page[JobOut])
def list_jobs(request: Request, principal: CurrentPrincipal, limit: Limit = 100,
              after: After = 0, project_id: FilterId = None, state: JobState | None = None,
              accelerator_type: str | None = None, job_class: JobClassName | None = None
              ) -> dict:
    with tx(request) as s:
        known_accelerator_type(s, accelerator_type)
        items = service.list_jobs(session=s, principal=principal, project_id=project_id,
                                  state=state, accelerator_type=accelerator_type,
                                  job_class=job_class, limit=limit, after_id=after)
        return {"items": [service.job_to_dict(j) for j in items],
                "next_after": items[-1].id if len(items) == limit else None}


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(request: Request, principal: CurrentPrincipal, job_id: int = path_id()) -> dict:
    with tx(request) as s:
        return service.job_to_dict(service.get_job(session=s, principal=principal,
                                                   job_id=job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(request: Request, principal: CurrentPrincipal, job_id: int = path_id(),
               body: CancelIn | None = None) -> dict:
    with tx(request) as s:
        job = service.cancel_job(session=s, principal=principal, job_id=job_id,
                                 at=center_now(request), reason=body.reason if body else "")
        return service.job_to_dict(job)
