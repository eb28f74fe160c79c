"""``/v1/admin/dead-letters``: jobs that failed their last attempt, and replaying them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from bookings.db import ReadSession, WriteSession
from bookings.errors import problem_responses
from bookings.identity import AdminCaller
from bookings.jobs.schemas import DeadLetterOut, RetriedOut
from bookings.jobs.service import DeadLetterNotFound, DeadLetters
from bookings.kit.pagination import CURSOR_EXAMPLE, LINK, Page, Paging, link_next

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
    responses={200: {"headers": LINK}, **problem_responses(400, 401, 403, 422, 503, examples=[CURSOR_EXAMPLE])},
)
async def list_dead_letters(
    _caller: AdminCaller, session: ReadSession, service: DeadLettersDep, paging: Paging, response: Response
) -> Page[DeadLetterOut]:
    page = await service.list(session, paging)
    link_next(response, paging, page)
    return page


@router.post(
    "/{jobId}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="retryDeadLetter",
    summary="Queue a dead job again, due now, with a fresh set of attempts",
    responses=problem_responses(401, 403, 404, 422, 503, examples=[DeadLetterNotFound("No dead letter with this id.")]),
)
async def retry(job_id: JobId, _caller: AdminCaller, session: WriteSession, service: DeadLettersDep) -> RetriedOut:
    return await service.retry(session, job_id)
