"""Serving: `gridmap serve` runs worker processes and hands them the port's connections in turn (api.serve)."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from api.serve import listen, worker_pids

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gridmap_serve_runs_its_workers_and_stops_them_on_ctrl_c(db_url, demo_reports, tmp_path):
    port = free_port()
    env = os.environ | {"GRIDMAP_DATABASE_URL": db_url, "GRIDMAP_PHOTO_DIR": str(tmp_path / "photos")}
    gridmap = Path(sys.executable).with_name("gridmap")
    server = subprocess.Popen([gridmap, "serve", "--port", str(port), "--workers", "2"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert server.poll() is None, server.stdout.read()
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        assert len(worker_pids(server.pid)) == 2  # the command became the supervisor of two workers
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole group
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output
    assert f"http://127.0.0.1:{port}" in output and "2 worker processes" in output


def pid_app():
    """An ASGI app (a factory, as api.serve loads apps) that answers every request with its process id."""
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":  # startup, then shutdown
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
    return app


def test_the_connections_are_handed_to_the_workers_in_turn():
    # a client's keep-alive connections (a proxy's pool, the bench's inspectors) are shared evenly, whatever
    # their ports: with a SO_REUSEPORT socket per worker the kernel's hash gave one of 3 workers 48 % of them
    port = free_port()
    code = f"import sys; from api.serve import serve; sys.exit(serve(port={port}, workers=3, app='test_serve:pid_app'))"
    env = os.environ | {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    server = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) for _ in range(30)]
        deadline = time.monotonic() + 60
        while True:  # the port is open once the supervisor listens; the workers answer when started
            try:
                clients[0].get("/")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, server.stdout.read()
                time.sleep(0.2)
        for client in clients[1:]:
            client.get("/")
        first = Counter(client.get("/").text for client in clients)  # each on its own keep-alive connection
        again = Counter(client.get("/").text for client in clients)
        assert sorted(first.values()) == [10, 10, 10], first
        assert again == first  # a connection stays with its worker
        assert set(first) == {str(pid) for pid in worker_pids(server.pid)}
        for client in clients:
            client.close()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output
    assert "3 worker processes" in output


def test_the_port_listens_with_nodelay_for_the_connections_it_accepts():
    listener = listen("127.0.0.1", 0)
    try:
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) and listener.proto == socket.IPPROTO_TCP
        client = socket.create_connection(listener.getsockname())
        connection, _ = listener.accept()
        with client, connection:
            assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # inherited
    finally:
        listener.close()
