"""What the benchmarks share: serving the app in a subprocess on a free loopback port, and dropping a
private database afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# uvicorn --workers N binds its socket with proto 0, so asyncio never sets TCP_NODELAY on accepted
# connections and each keep-alive response after the first waits ~40 ms for the client's delayed ACK
# (Kludex/uvicorn#3149). --tcp-nodelay starts uvicorn through this launcher, whose listener passes
# TCP_NODELAY on to every accepted connection: what a fixed uvicorn (or a proxy in front) would give.
NODELAY_LAUNCHER = """
import socket, sys
import uvicorn.config
from uvicorn.main import main
bind = uvicorn.config.Config.bind_socket
def bind_socket(self):
    sock = bind(self)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
uvicorn.config.Config.bind_socket = bind_socket
if __name__ == "__main__":
    sys.exit(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, env: dict[str, str] | None = None, workers: int = 1,
                 nodelay: bool = False) -> tuple[subprocess.Popen, str]:
    """Start uvicorn with ``workers`` processes (environment ``env`` added to ours) on a free loopback port;
    return it and its URL once /api/v1/health answers."""
    port = free_port()
    argv = [sys.executable, *(["-c", NODELAY_LAUNCHER] if nodelay else ["-m", "uvicorn"]),
            "api.main:app_from_environment", "--factory", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--no-access-log"]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(argv, cwd=ROOT, env=os.environ | (env or {}), stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.returncode}:\n{tail(log_path)}")
        try:
            if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                return server, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"uvicorn did not answer /api/v1/health within 60 s:\n{tail(log_path)}")


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
