"""What the benchmarks share: serving the app in a subprocess on a free loopback port, a lean HTTP/1.1
client to load it with, and dropping a private database afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, env: dict[str, str] | None = None, workers: int = 1,
                 ready_line: str | None = None) -> tuple[subprocess.Popen, str]:
    """Serve the app as it is deployed (:mod:`api.serve`: ``workers`` uvicorn processes, handed the
    connections in turn, TCP_NODELAY) with environment ``env`` added to ours, on a free loopback port; return
    the server and its URL once /api/v1/health answers (and every worker has logged ``ready_line``, if given)."""
    port = free_port()
    argv = [sys.executable, "-m", "api.serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(argv, cwd=ROOT, env=os.environ | (env or {}), stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}:\n{tail(log_path)}")
        try:
            # every worker started (each has its share of the connections waiting for it), and said
            # ``ready_line`` if asked to, and answering
            log = log_path.read_text(errors="replace")
            started = all(log.count(line) >= workers for line in ("Application startup complete", ready_line) if line)
            if started and httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                return server, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"the server did not start {workers} workers answering /api/v1/health within 60 s"
                       f"{f' and saying {ready_line!r}' if ready_line else ''}:\n"
                       f"{tail(log_path)}")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # its own session: only the processes this run started
            server.wait()


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def drop_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(url)
    with psycopg.connect(host=target.host, port=target.port, user=target.username, password=target.password,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (target.database,))
        conn.execute(f'DROP DATABASE IF EXISTS "{target.database}"')


class HttpError(Exception):
    """No usable HTTP answer: the connection failed, closed, timed out or sent something unreadable."""


class KeepAlive:
    """One HTTP/1.1 keep-alive connection, a request at a time, as lean as a load generator must be: on the
    same cores as the server, a full client (httpx: ≈ 2 ms of CPU a request) would take much of the CPU
    the server is measured on. Requests go out as prepared bytes; answers are read by their status line,
    ``Content-Length`` (or chunks) and body. A connection that failed is opened again for the next request."""

    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    @classmethod
    def to(cls, base_url: str, timeout: float) -> KeepAlive:
        host, port = base_url.removeprefix("http://").split(":")
        return cls(host, int(port), timeout)

    def head(self, method: str, path: str, headers: dict[str, str], length: int) -> bytes:
        """The request line and headers, ready to send before a body of ``length`` bytes."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", *(f"{k}: {v}" for k, v in headers.items()),
                 f"Content-Length: {length}", "", ""]
        return "\r\n".join(lines).encode("latin-1")

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        """Send a request (:meth:`head` and ``body``); return the answer's status and body."""
        try:
            return await asyncio.wait_for(self._exchange(head + body), self.timeout)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                ValueError, HttpError) as error:
            self.close()
            raise HttpError(f"{type(error).__name__}: {error}") from None

    async def _exchange(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, fields = head.partition(b"\r\n")
        if not status_line.startswith(b"HTTP/1.1 "):
            raise HttpError(f"not an HTTP/1.1 answer: {status_line[:80]!r}")
        status = int(status_line[9:12])
        headers = dict(line.split(b":", 1) for line in fields.lower().split(b"\r\n") if b":" in line)
        if headers.get(b"transfer-encoding", b"").strip() == b"chunked":
            body = await self._chunks()
        else:
            body = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").strip() == b"close":
            self.close()
        return status, body

    async def _chunks(self) -> bytes:
        parts = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
        await self.reader.readuntil(b"\r\n")  # no trailers are expected: the empty line
        return b"".join(parts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
