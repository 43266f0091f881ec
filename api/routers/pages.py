"""The web pages people use in the field (static files; they talk to the API from the browser)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.assets import APP_STATIC

router = APIRouter()


@router.get("/report", response_class=FileResponse, include_in_schema=False)
def report_page() -> FileResponse:
    """Serve the inspector's mobile page: locate, describe, photograph, preview and send (queued offline)."""
    # no-cache: a phone must revalidate so that a fixed page reaches it (ETag keeps that cheap)
    return FileResponse(APP_STATIC / "report.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})
