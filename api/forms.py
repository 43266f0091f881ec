"""A multipart form read in one pass over its bytes: the report's form as phones and browsers send it.

Starlette parses a form with python-multipart, a byte-by-byte state machine in Python with a callback
for each header and chunk: ≈0.2 ms of CPU for a report's seven short fields, the largest single cost
of the busiest route's HTTP side. A form as every browser and phone library writes it (no preamble,
each part a Content-Disposition with a quoted name and maybe a filename, maybe a Content-Type, UTF-8
text) is split at its delimiter lines instead, in a few tens of microseconds. Anything else (another
header in a part, an escaped quote in a name, a charset other than UTF-8, an epilogue, a body too big
to hold in memory) goes to Starlette's parser over the same bytes, so what the route accepts and how
it reads it does not change.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import FormData, Headers, UploadFile
from starlette.requests import Request

#: bodies up to this size (by their Content-Length) are read whole and split; larger ones (several
#: full-size photos) stream through Starlette's parser, which spools files to disk
IN_MEMORY_BYTES = 4 * 2**20

_MULTIPART = re.compile(r"multipart/form-data; ?boundary=(?:\"([0-9A-Za-z'()+_,./:=? -]{1,70})\"|([0-9A-Za-z'+_.-]{1,70}))",
                        re.IGNORECASE)
_DISPOSITION = re.compile(rb'form-data; name="([^"\\\r\n]*)"(?:; filename="([^"\\\r\n]*)")?', re.IGNORECASE)
_HEADER = re.compile(rb"([A-Za-z-]+):[ \t]*([^\r\n]*)")


@asynccontextmanager
async def read_form(request: Request) -> AsyncIterator[FormData]:
    """The request's form, as ``async with request.form()`` gives it (its files closed after)."""
    found = _MULTIPART.fullmatch(request.headers.get("content-type", ""))
    length = request.headers.get("content-length", "")
    if found and length.isdigit() and int(length) <= IN_MEMORY_BYTES:
        form = split(await request.body(), (found.group(1) or found.group(2)).encode())
        if form is not None:
            yield form  # its files are bytes in memory: nothing to close (Starlette would close each in a thread)
            return
    async with request.form() as form:  # reads the body already read, if it was
        yield form


def split(body: bytes, boundary: bytes) -> FormData | None:
    """The fields and files of a plain multipart ``body``; None if it is anything but plain."""
    start = b"--" + boundary
    if not body.startswith(start):
        return None
    *parts, end = body[len(start):].split(b"\r\n" + start)  # each part begins with its own CRLF
    if end not in (b"--", b"--\r\n"):
        return None
    items: list[tuple[str, str | UploadFile]] = []
    for piece in parts:
        item = _part(piece)
        if item is None:
            return None
        items.append(item)
    return FormData(items)


def _part(piece: bytes) -> tuple[str, str | UploadFile] | None:
    """One part (``\\r\\n`` headers ``\\r\\n\\r\\n`` content) as (name, text) or (name, file); None if not plain."""
    head, separator, content = piece.partition(b"\r\n\r\n")
    if not separator or not head.startswith(b"\r\n"):
        return None
    headers = []
    for line in head[2:].split(b"\r\n"):
        header = _HEADER.fullmatch(line)
        if header is None:
            return None
        name = header.group(1).lower()
        if name not in (b"content-disposition", b"content-type"):
            return None
        headers.append((name, header.group(2)))
    disposition = next((value for name, value in headers if name == b"content-disposition"), None)
    found = _DISPOSITION.fullmatch(disposition) if disposition is not None else None
    if found is None or sum(name == b"content-disposition" for name, _ in headers) != 1:
        return None
    try:
        name = found.group(1).decode()
        if found.group(2) is None:
            return name, content.decode()
        filename = found.group(2).decode()
    except UnicodeDecodeError:
        return None
    return name, UploadFile(io.BytesIO(content), size=len(content), filename=filename, headers=Headers(raw=headers))
