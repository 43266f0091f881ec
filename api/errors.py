"""Domain exceptions → HTTP responses with a reason a person can act on, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gridmap.calendar.service import CalendarError
from gridmap.io.exceptions import ExportFailed, ImportFailed
from gridmap.routing.exceptions import BadReport, OutsideServiceArea

STATUS = {ExportFailed: 404, ImportFailed: 422, CalendarError: 422, BadReport: 422, OutsideServiceArea: 422}


def install_error_handlers(app: FastAPI) -> None:
    for exception, status in STATUS.items():
        app.add_exception_handler(exception, _handler(status))


def _handler(status: int):
    async def handle(_request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": str(error)})

    return handle
