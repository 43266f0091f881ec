"""The report's form split in one pass (api.forms) reads every form as Starlette's parser reads it, and
leaves every form it is not sure of to that parser."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from api.forms import IN_MEMORY_BYTES, read_form, split

B = "gridmap-7Hq2xZ"
PHOTO = bytes(range(256)) * 40 + b"\r\n--gridmap-7Hq\r\n\r\n"  # binary, with a near-boundary and blank lines inside


def part(name: str, value: bytes, filename: str | None = None, content_type: str | None = None, *,
         extra: bytes = b"", boundary: str = B) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
    if content_type:
        head += f"Content-Type: {content_type}\r\n".encode()
    return head + extra + b"\r\n" + value + b"\r\n"


def body(*parts: bytes, boundary: str = B, end: bytes = b"\r\n") -> bytes:
    return b"".join(parts) + f"--{boundary}--".encode() + end


FIELDS = (part("x", b"121.515123") + part("y", b"25.041234") + part("class_code", b"20102") +
          part("description", "人行道上有一堆垃圾 — by the bins".encode()) + part("accuracy", b""))
PLAIN = {
    "fields": body(FIELDS),
    "fields, no CRLF at the end": body(FIELDS, end=b""),
    "a photo": body(FIELDS, part("photos", PHOTO, "street.jpg", "image/jpeg")),
    "two photos, no content type": body(part("photos", PHOTO, "a.jpg"), part("photos", b"\xff\xd8 tiny", "b.png"),
                                        FIELDS),
    "an empty file input": body(FIELDS, part("photos", b"", "", "application/octet-stream")),
    "a Chinese file name": body(part("photos", PHOTO, "街道.jpg", "image/jpeg")),
    "lower-case header names": body(part("x", b"1").replace(b"Content-Disposition", b"content-disposition")),
    "a field with CRLF inside": body(part("description", b"line one\r\nline two\r\n\r\nthree")),
    "no fields at all": body(),
}
NOT_PLAIN = {
    "a preamble": b"this is a preamble\r\n" + body(FIELDS),
    "an epilogue": body(FIELDS, end=b"\r\nepilogue"),
    "another header": body(part("photos", PHOTO, "a.jpg", extra=b"Content-Transfer-Encoding: binary\r\n")),
    "an escaped quote": body(part('say \\"hi\\"', b"1")),
    "a latin-1 value": body(part("description", "café".encode("latin-1"))),
    "LF line ends": body(FIELDS).replace(b"\r\n", b"\n"),
    "no Content-Disposition": f"--{B}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{B}--\r\n".encode(),
    "two Content-Dispositions": body(part("x", b"1", extra=b'Content-Disposition: form-data; name="y"\r\n')),
    "white space after a delimiter": (f'--{B}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'
                                      f'--{B}  \r\nContent-Disposition: form-data; name="y"\r\n\r\n2\r\n--{B}--\r\n').encode(),
}


def request(payload: bytes, content_type: str = f"multipart/form-data; boundary={B}", length: bool = True) -> Request:
    chunks = [payload[i:i + 1000] for i in range(0, len(payload), 1000)] or [b""]

    async def receive():
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    headers = [(b"content-type", content_type.encode())] + ([(b"content-length", str(len(payload)).encode())]
                                                            if length else [])
    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


async def items(form: FormData) -> list[tuple]:
    """The form's items in full: names, text, and each file's name, headers, size and content."""
    out = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            value = ("file", value.filename, value.headers.raw, value.size, value.content_type, await value.read())
        out.append((name, value))
    return out


def run(coroutine):
    """Run a coroutine to its end in a thread of its own: a browser test's Playwright keeps an event loop
    running in the test thread for the rest of the session, and asyncio.run refuses to start inside it."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def starlette(payload: bytes, content_type: str = f"multipart/form-data; boundary={B}") -> list[tuple]:
    async def parse():
        return await items(await request(payload, content_type).form())
    return run(parse())


@pytest.mark.parametrize("name", PLAIN)
def test_a_plain_form_is_split_as_starlette_parses_it(name):
    payload = PLAIN[name]
    form = split(payload, B.encode())
    assert form is not None, "a form as browsers write it takes the fast path"
    assert run(items(form)) == starlette(payload)


@pytest.mark.parametrize("name", NOT_PLAIN)
def test_any_other_form_is_left_to_starlette(name):
    payload = NOT_PLAIN[name]
    assert split(payload, B.encode()) is None
    try:
        expected = starlette(payload)
    except Exception as error:  # Starlette refuses it: so does the route, with Starlette's own error
        expected = type(error)
    try:
        got = run(_read(request(payload)))
    except Exception as error:
        got = type(error)
    assert got == expected


async def _read(req: Request) -> list[tuple]:
    async with read_form(req) as form:
        return await items(form)


@pytest.mark.parametrize("content_type", [f'multipart/form-data; boundary="{B}"', f"Multipart/Form-Data;boundary={B}",
                                          f"multipart/form-data; boundary={B}; charset=utf-8"])
def test_the_boundary_is_read_as_starlette_reads_it(content_type):
    payload = PLAIN["a photo"]
    assert run(_read(request(payload, content_type))) == starlette(payload, content_type)


def test_a_big_or_unmeasured_body_streams_through_starlette():
    big = body(part("photos", b"\x00" * (IN_MEMORY_BYTES + 1), "big.jpg", "image/jpeg"))
    async def kind(req: Request) -> str:
        async with read_form(req) as form:
            return type(form["photos"].file).__name__

    for req in (request(big), request(PLAIN["a photo"], length=False)):
        assert run(kind(req)) == "SpooledTemporaryFile", "not read by the one-pass split"
