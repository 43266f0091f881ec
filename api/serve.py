"""Serve the app with several worker processes, each listening on its own socket of one port.

``uvicorn --workers N`` lets all workers accept from one shared socket: whichever wakes first takes every
connection waiting, so a client's keep-alive connections (an inspector's phone, a proxy's pool) often all
land on one worker while the others idle; and it never sets TCP_NODELAY on them, so a keep-alive answer
can wait ~40 ms for the client's delayed ACK (Kludex/uvicorn#3149). Here every worker gets a socket bound
with SO_REUSEPORT (the kernel spreads new connections over the sockets) and TCP_NODELAY (inherited by the
connections it accepts). The sockets are bound before the workers start, so none misses its share while
the others start up. uvloop and httptools are used when installed (uvicorn's ``auto``).

Run: ``python -m api.serve [--host 127.0.0.1] [--port 8000] [--workers 2]`` (settings from the GRIDMAP_*
environment, as :func:`api.main.app_from_environment` reads them).
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import socket
import sys
import time
from pathlib import Path

import uvicorn

APP = "api.main:app_from_environment"


def listen(host: str, port: int, count: int, backlog: int = 2048) -> list[socket.socket]:
    """``count`` listening sockets on one port (``port`` 0: a free one, the same for all)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        port = sock.getsockname()[1]
        sockets.append(sock)
    return sockets


def work(sock: socket.socket, app: str) -> None:
    """One worker process: uvicorn serving ``app`` (a factory) on ``sock``."""
    config = uvicorn.Config(app, factory=True, access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


def serve(*, host: str = "127.0.0.1", port: int = 8000, workers: int = 2, app: str = APP) -> int:
    """Start ``workers`` processes on ``host``:``port`` and keep them running until SIGINT or SIGTERM; return
    the exit status. A worker that dies is restarted, unless it dies starting (a bad setting, no database):
    then all stop."""
    sockets = listen(host, port, workers)
    print(f"gridmap on http://{host}:{sockets[0].getsockname()[1]}: {workers} worker processes, a socket each "
          "(SO_REUSEPORT, TCP_NODELAY)", flush=True)
    stopping = []
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stopping.append(True))
    workers_ = [_start(sock, app) for sock in sockets]
    status = 0
    while not stopping and not status:
        time.sleep(0.2)
        for n, (process, started) in enumerate(workers_):
            if process.is_alive() or stopping:
                continue
            if time.monotonic() - started < STARTUP_S:
                print(f"worker {process.pid} exited with {process.exitcode} while starting: stopping", flush=True)
                status = process.exitcode or 1
                break
            print(f"worker {process.pid} exited with {process.exitcode}: restarting it", flush=True)
            workers_[n] = _start(sockets[n], app)
    for process, _ in workers_:
        process.terminate()  # SIGTERM: uvicorn finishes the requests in progress
    for process, _ in workers_:
        process.join(30)
        if process.is_alive():
            process.kill()
    return status


def worker_pids(server_pid: int) -> list[int]:
    """The worker processes of a running :func:`serve` (not multiprocessing's resource tracker), from /proc."""
    children = [int(child) for task in Path(f"/proc/{server_pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    return [child for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


#: a worker that exits sooner than this after its start failed to start
STARTUP_S = 15.0


def _start(sock: socket.socket, app: str) -> tuple[multiprocessing.process.BaseProcess, float]:
    process = multiprocessing.get_context("spawn").Process(target=work, args=(sock, app), name="gridmap-worker")
    process.start()
    return process, time.monotonic()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    return serve(host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    sys.exit(main())
