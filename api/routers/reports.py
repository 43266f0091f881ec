"""Inspectors' reports from the street, and their photos."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep, TokenDep, UserDep, authenticate
from gridmap.cases.access import CASE_READERS, require_role
from gridmap.cases.photos import PhotoTooLarge, photo_file
from gridmap.cases.receipts import receipt
from gridmap.cases.reports import KEY_PATTERN, Upload, submit_report, upload_photo
from gridmap.cases.schemas import ReportInput, ReportReceipt
from gridmap.config import CaseSettings

router = APIRouter(tags=["reports"])
KeyHeader = Annotated[str, Header(alias="Idempotency-Key", pattern=KEY_PATTERN,
                                  description="chosen by the phone per report (a UUID); a retry sends the same key")]


def _read(files: list[UploadFile], limit: int) -> list[Upload]:
    uploads = []
    for n, file in enumerate(files, start=1):
        data = file.file.read(limit + 1)
        if len(data) > limit:
            raise PhotoTooLarge(f"photo {n} ('{file.filename}') is larger than {limit / 2**20:g} MB")
        uploads.append(Upload(file.filename or f"photo {n}", data))
    return uploads


@router.post("/reports", status_code=201, responses={200: {"description": "a retry: the case filed before"}})
async def report(form: Annotated[ReportInput, Form()], key: KeyHeader, session: SessionDep, token: TokenDep,
                 settings: SettingsDep, response: Response,
                 photos: Annotated[list[UploadFile], File(description="JPEG, PNG, WebP or HEIC")] = []) -> ReportReceipt:
    """File a report from the street as a case: routed, deduplicated, with photos; safe to retry."""
    # all the work in one trip through the thread pool (the token's check, the filing, the commit): a report
    # waiting on the database (a racing retry waits for the first copy to commit) never blocks the event
    # loop that serves everyone else, and each trip costs CPU the busiest route can spare
    replayed, answer = await run_in_threadpool(_file, session, token, form, photos, key, settings.cases)
    if replayed:
        response.status_code = 200
    return answer


def _file(session: Session, token: str | None, form: ReportInput, photos: list[UploadFile], key: str,
          cases: CaseSettings) -> tuple[bool, ReportReceipt]:
    user = authenticate(session, token)
    filed = submit_report(session=session, user=user, report=form, uploads=_read(photos, cases.photo_max_bytes),
                          key=key, photo_dir=cases.photo_dir, photo_max_bytes=cases.photo_max_bytes)
    answer = receipt(session, filed)
    session.commit()  # before the answer goes out: a client told 201 can count on the case being there
    return filed.replayed, answer


# Plain (not async) routes: they run in the thread pool, so a request waiting on the database never
# blocks the event loop that serves everyone else.
@router.post("/photos", status_code=201)
def add_photo(photo: UploadFile, session: SessionDep, user: UserDep, settings: SettingsDep) -> dict:
    """Upload one photo (for handling or checking a case); refer to it by its sha256 in the action."""
    require_role(user, CASE_READERS, "uploading photos")
    cases = settings.cases
    return upload_photo(session=session, user=user, upload=_read([photo], cases.photo_max_bytes)[0],
                        photo_dir=cases.photo_dir, photo_max_bytes=cases.photo_max_bytes)


@router.get("/photos/{sha256}", response_class=FileResponse)
def get_photo(sha256: str, user: UserDep, settings: SettingsDep, thumbnail: bool = False) -> FileResponse:
    """A stored photo (or its 320 px thumbnail with ?thumbnail=true)."""
    require_role(user, CASE_READERS, "viewing photos")
    path, media_type = photo_file(settings.cases.photo_dir, sha256, thumbnail=thumbnail)
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=31536000, immutable"})
