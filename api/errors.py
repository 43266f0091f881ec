"""Domain exceptions → HTTP responses with a reason a person can act on, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gridmap.calendar.service import CalendarError
from gridmap.cases.exceptions import BadCaseInput, CaseNotFound, IdempotencyConflict, InvalidTransition, StaleCase
from gridmap.cases.photos import PhotoNotFound, PhotoRejected
from gridmap.evaluation.definitions import EvaluationError
from gridmap.io.exceptions import ExportFailed, ImportFailed
from gridmap.maps.tiles import BadTile, UnknownLayer
from gridmap.routing.exceptions import BadReport, OutsideServiceArea
from gridmap.users.exceptions import BadUser, Forbidden, NotAuthenticated, TooManyAttempts

STATUS = {ExportFailed: 404, ImportFailed: 422, CalendarError: 422, BadReport: 422, OutsideServiceArea: 422,
          NotAuthenticated: 401, Forbidden: 403, BadUser: 422, CaseNotFound: 404, InvalidTransition: 409,
          StaleCase: 409, BadCaseInput: 422, IdempotencyConflict: 422, PhotoNotFound: 404,
          UnknownLayer: 404, BadTile: 422, EvaluationError: 422}


def install_error_handlers(app: FastAPI) -> None:
    for exception, status in STATUS.items():
        app.add_exception_handler(exception, _handler(status))
    app.add_exception_handler(PhotoRejected, _photo_rejected)
    app.add_exception_handler(TooManyAttempts, _too_many_attempts)


def _handler(status: int):
    async def handle(_request: Request, error: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(status_code=status, content={"detail": str(error)}, headers=headers)

    return handle


async def _photo_rejected(_request: Request, error: PhotoRejected) -> JSONResponse:
    return JSONResponse(status_code=error.status, content={"detail": str(error)})


async def _too_many_attempts(_request: Request, error: TooManyAttempts) -> JSONResponse:
    return JSONResponse(status_code=429, content={"detail": str(error)},
                        headers={"Retry-After": str(error.retry_after)})
