"""Serving: `gridmap serve` runs worker processes, each on its own socket of the port (api.serve)."""

import os
import signal
import socket
import subprocess
import sys
import time
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


def test_each_worker_gets_its_own_socket_on_the_port_with_nodelay():
    sockets = listen("127.0.0.1", 0, 3)
    try:
        ports = {s.getsockname()[1] for s in sockets}
        assert len(ports) == 1 and len(sockets) == 3
        port = ports.pop()
        for s in sockets:
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) and s.proto == socket.IPPROTO_TCP
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(24)]
        accepted = []
        for s in sockets:  # the kernel has spread the connections over the sockets
            s.setblocking(False)
            while True:
                try:
                    connection, _ = s.accept()
                except BlockingIOError:
                    break
                accepted.append((s, connection))
        assert len(accepted) == 24 and len({id(s) for s, _ in accepted}) > 1
        assert all(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for _, c in accepted)  # inherited
        for _, c in accepted:
            c.close()
        for c in clients:
            c.close()
    finally:
        for s in sockets:
            s.close()
