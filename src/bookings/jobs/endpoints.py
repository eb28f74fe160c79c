"""``/v1/admin/dead-letters``: jobs that failed their last attempt, and replaying them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from bookings.auth.dependencies import AdminCaller
from bookings.db import ReadSession, WriteSession
from bookings.errors import problem_responses
from bookings.jobs.schemas import DeadLetterOut, RetriedOut
from bookings.jobs.service import DeadLetterNotFound, DeadLetters
from bookings.kit.pagination import Page, Paging

router = APIRouter(prefix="/v1/admin/dead-letters", tags=["admin"])


async def _dead_letters(request: Request) -> DeadLetters:
    service: DeadLetters = request.app.state.dead_letters
    return service


DeadLettersDep = Annotated[DeadLetters, Depends(_dead_letters)]
JobId = Annotated[int, Path(alias="jobId", ge=1, le=2**62, description="The dead job's id.")]


@router.get(
    "",
    operation_id="listDeadLetters",
    summary="Jobs that failed their last attempt, newest first, with their last error",
    responses=problem_responses(401, 403, 422, 503),
)
async def list_dead_letters(
    _caller: AdminCaller, session: ReadSession, service: DeadLettersDep, paging: Paging
) -> Page[DeadLetterOut]:
    return await service.list(session, paging)


@router.post(
    "/{jobId}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="retryDeadLetter",
    summary="Queue a dead job again, due now, with a fresh set of attempts",
    responses=problem_responses(401, 403, 404, 422, 503, examples=[DeadLetterNotFound("No dead letter with this id.")]),
)
async def retry(job_id: JobId, _caller: AdminCaller, session: WriteSession, service: DeadLettersDep) -> RetriedOut:
    return await service.retry(session, job_id)
