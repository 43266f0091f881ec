"""Inspectors' reports from the street, and their photos."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import StringConstraints, TypeAdapter, ValidationError
from starlette.datastructures import FormData, State, UploadFile as FormFile

from api.deps import SessionDep, SettingsDep, UserDep, bearer_token, given, session_slot
from api.forms import read_form
from gridmap.cases.access import CASE_READERS, require_role
from gridmap.cases.photos import PhotoTooLarge, photo_file
from gridmap.cases.receipts import receipt
from gridmap.cases.reports import KEY_PATTERN, Upload, submit_report, upload_photo
from gridmap.cases.schemas import ReportInput, ReportReceipt
from gridmap.db.engine import reads_and_autocommit

router = APIRouter(tags=["reports"])
KEY_HEADER = "Idempotency-Key"
KEY = TypeAdapter(Annotated[str, StringConstraints(pattern=KEY_PATTERN)])


def _read(files: list[FormFile], limit: int) -> list[Upload]:
    uploads = []
    for n, file in enumerate(files, start=1):
        data = file.file.read(limit + 1)
        if len(data) > limit:
            raise PhotoTooLarge(f"photo {n} ('{file.filename}') is larger than {limit / 2**20:g} MB")
        uploads.append(Upload(file.filename or f"photo {n}", data))
    return uploads


def _documented() -> dict:
    """The OpenAPI description of the report's form, header and token, which the route reads itself."""
    form = ReportInput.model_json_schema()
    form["properties"]["photos"] = {"type": "array", "items": {"type": "string", "format": "binary"},
                                    "description": "JPEG, PNG, WebP or HEIC"}
    key = {"type": "string", "pattern": KEY_PATTERN}
    return {"security": [{"OAuth2PasswordBearer": []}],
            "parameters": [{"name": KEY_HEADER, "in": "header", "required": True, "schema": key,
                            "description": "chosen by the phone per report (a UUID); a retry sends the same key"}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form}}}}


@router.post("/reports", status_code=201, response_model=ReportReceipt, openapi_extra=_documented(), responses={
    200: {"description": "a retry: the case filed before", "model": ReportReceipt},
    422: {"description": "a field or the Idempotency-Key is missing or wrong, or the report cannot be routed "
                         "(the reason in detail)"}})
async def report(request: Request) -> Response:
    """File a report from the street as a case: routed, deduplicated, with photos; safe to retry."""
    # The busiest route reads its form, key and token itself: FastAPI's parameter machinery (dependency
    # solving, form model, response model) cost ≈ 0.5 ms of CPU a report, a tenth of the server's work.
    async with read_form(request) as form:
        report_input, photos, key = _checked(form, request.headers.get(KEY_HEADER))
        state = request.app.state
        # The filing runs right here, on the event loop (the token's check, the filing and its commit): ≈ 2 ms
        # of CPU and two round trips to the database, the city's layers in memory. A trip through the thread
        # pool would let the loop serve others meanwhile, but at a few hundred reports a second the hand-over
        # and the threads' fight over the interpreter lock cost more CPU than the waits they hide (measured
        # with bench/reports.py: 4–5 % of the server's CPU a report at 90 reports/s, 10–20 % at 310, where
        # requests meet more often). The process's other requests wait for a filing (their database work
        # goes on in threads). A report with photos files in a worker thread instead: checking, shrinking and
        # writing (each file synced) a phone's photo takes tens of milliseconds (≈ 60 ms for a 12 MP JPEG,
        # mostly in Pillow and on the disk, which let the interpreter lock go), for which every other request
        # of the process would wait. A report racing another with its key waits at the key for that one's
        # commit, which never needs this loop: the other is filed by another process, by a thread, or was
        # filed here before. The slot first, as for every session: a connection is then free for its reads
        # (a retry's case) without waiting in the pool.
        async with session_slot(state):
            filing = (state, bearer_token(request), report_input, photos, key)
            replayed, answer = await to_thread.run_sync(_file, *filing) if photos else _file(*filing)
    return Response(answer.model_dump_json(), status_code=200 if replayed else 201, media_type="application/json")


def _checked(form: FormData, key: str | None) -> tuple[ReportInput, list[FormFile], str]:
    """The report's fields, photos and key, checked as FastAPI checks parameters declared so (the same 422:
    every error at once, each with its place); an empty field counts as not given, as FastAPI counts it."""
    errors = []
    try:
        fields = ReportInput.model_validate({k: v for k, v in form.items() if isinstance(v, str) and v != ""})
    except ValidationError as error:
        errors += _located("body", error)
    if key is None:
        errors.append({"type": "missing", "loc": ("header", KEY_HEADER), "msg": "Field required", "input": None})
    else:
        try:
            KEY.validate_python(key)
        except ValidationError as error:
            errors += _located("header", error, KEY_HEADER)
    photos = form.getlist("photos")
    if not all(isinstance(p, FormFile) for p in photos):
        errors.append({"type": "value_error", "loc": ("body", "photos"), "msg": "photos must be files", "input": None})
    if errors:
        raise RequestValidationError(errors)
    return fields, [p for p in photos if p.filename or p.size], key  # an empty file input sends neither


def _located(where: str, error: ValidationError, *name: str) -> list[dict]:
    """Pydantic's errors placed as FastAPI places a parameter's (``body`` or ``header`` first)."""
    return [{**e, "loc": (where, *name, *e["loc"])} for e in error.errors(include_url=False)]


def _file(state: State, token: str | None, form: ReportInput, photos: list[FormFile],
          key: str) -> tuple[bool, ReportReceipt]:
    cases = state.settings.cases
    # The filing's statements go on the connection the process holds in autocommit: the second files the case,
    # all or nothing, and is committed before the answer goes out (a client told 201 can count on the case being
    # there); the session serves only the rarer reads (a retry's case). The token is checked with the first.
    with reads_and_autocommit(state.session_factory, state.held) as (session, connection):
        filed = submit_report(session=session, user=given(token), report=form,
                              uploads=_read(photos, cases.photo_max_bytes), key=key, photo_dir=cases.photo_dir,
                              photo_max_bytes=cases.photo_max_bytes, connection=connection)
        return filed.replayed, receipt(session, filed)


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
