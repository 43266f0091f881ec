"""Serve the app with several worker processes behind one listening socket, whose connections this process
accepts and hands to the workers in turn.

Worker processes that accept from one port themselves share its connections unevenly: on a shared socket
whichever worker wakes first takes every connection waiting, and with a SO_REUSEPORT socket each the kernel
picks a worker by a hash of the connection's addresses, which spreads 32 connections over 3 workers as
unevenly as dice do (measured: one worker with 48 % of them). A client's keep-alive connections (an inspector's
phone, a proxy's pool) carry its requests for minutes, so the worker that got too many is busier than the
others all that time, and its queue sets the latency of everyone on it. Here the supervisor accepts every
connection and passes it (its file descriptor, over a Unix socket pair) to the next worker in turn, as
Node.js's cluster module does: each worker gets its share, whatever the client's ports. The connections get
TCP_NODELAY (an answer on a keep-alive connection otherwise waits ~40 ms for the client's delayed ACK;
uvicorn does not set it, Kludex/uvicorn#3149). uvloop and httptools are used when installed (uvicorn's ``auto``).

Run: ``python -m api.serve [--host 127.0.0.1] [--port 8000] [--workers 2]`` (settings from the GRIDMAP_*
environment, as :func:`api.main.app_from_environment` reads them).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

APP = "api.main:app_from_environment"
#: a worker that exits sooner than this after its start failed to start
STARTUP_S = 15.0
#: how long the supervisor waits for a worker to take a connection before it tries the next worker
HAND_OVER_S = 1.0


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The listening socket (``port`` 0: a free one), with TCP_NODELAY for the connections it accepts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


@dataclass
class Worker:
    process: multiprocessing.process.BaseProcess
    channel: socket.socket  # the supervisor's end of the worker's socket pair
    started: float


def serve(*, host: str = "127.0.0.1", port: int = 8000, workers: int = 2, app: str = APP) -> int:
    """Start ``workers`` processes, hand them the connections to ``host``:``port`` in turn, and keep them
    running until SIGINT or SIGTERM; return the exit status. A worker that dies is restarted, unless it dies
    starting (a bad setting, no database): then all stop."""
    listener = listen(host, port)
    print(f"gridmap on http://{host}:{listener.getsockname()[1]}: {workers} worker processes, connections "
          "handed to each in turn", flush=True)
    stopping = []
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stopping.append(True))
    pool = [_start(app) for _ in range(workers)]
    turns = itertools.cycle(range(workers))
    status = 0
    listener.setblocking(False)
    while not stopping and not status:
        if select.select([listener], [], [], 0.2)[0]:
            _hand_over(listener, pool, turns)
        for n, worker in enumerate(pool):
            if worker.process.is_alive() or stopping:
                continue
            if time.monotonic() - worker.started < STARTUP_S:
                print(f"worker {worker.process.pid} exited with {worker.process.exitcode} while starting: stopping",
                      flush=True)
                status = worker.process.exitcode or 1
                break
            print(f"worker {worker.process.pid} exited with {worker.process.exitcode}: restarting it", flush=True)
            worker.channel.close()
            pool[n] = _start(app)
    listener.close()  # no new connections; those handed over are the workers' to finish
    for worker in pool:
        worker.process.terminate()  # SIGTERM: uvicorn finishes the requests in progress
    for worker in pool:
        worker.process.join(30)
        if worker.process.is_alive():
            worker.process.kill()
        worker.channel.close()
    return status


def _hand_over(listener: socket.socket, pool: list[Worker], turns: itertools.cycle) -> None:
    """Accept the connections waiting and pass each to the next worker that takes it."""
    while True:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionAbortedError:  # reset by its client while it waited: the next one
            continue
        except OSError as error:  # out of file descriptors, say: the connections wait in the backlog meanwhile
            print(f"could not accept a connection: {error}", flush=True)
            time.sleep(0.1)
            return
        with connection:  # with TCP_NODELAY, inherited from the listener
            for _ in range(len(pool)):
                worker = pool[next(turns)]
                try:
                    socket.send_fds(worker.channel, [b"c"], [connection.fileno()])
                    break
                except OSError:  # a worker restarting, or one too busy to take it in time: the next one
                    continue
            # a connection no worker took is closed: the client sees it reset and tries again


def _start(app: str) -> Worker:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.settimeout(HAND_OVER_S)
    process = multiprocessing.get_context("spawn").Process(target=work, args=(theirs, app), name="gridmap-worker")
    process.start()
    theirs.close()
    return Worker(process, ours, time.monotonic())


def work(channel: socket.socket, app: str) -> None:
    """One worker process: uvicorn serving ``app`` (a factory) on the connections handed to it over ``channel``."""
    config = uvicorn.Config(app, factory=True, access_log=False, lifespan="on")
    HandedServer(config, channel).run()


class HandedServer(uvicorn.Server):
    """A uvicorn server without a listening socket of its own: it serves the connections handed to it."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self.arriving: set[asyncio.Task] = set()  # the loop holds its tasks weakly

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's start-up (lifespan); no listener
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._take)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets)

    def _take(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.channel, 1, 16)
            except BlockingIOError:
                return
            if not data and not fds:  # the supervisor is gone: finish what is under way and stop
                loop.remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                task = loop.create_task(self._connect(socket.socket(fileno=fd)))
                self.arriving.add(task)
                task.add_done_callback(self.arriving.discard)

    async def _connect(self, connection: socket.socket) -> None:
        connection.setblocking(False)
        try:
            await asyncio.get_running_loop().connect_accepted_socket(self._protocol, connection)
        except OSError:  # the client has gone meanwhile
            connection.close()

    def _protocol(self) -> asyncio.Protocol:
        config = self.config  # as uvicorn.Server.startup makes its protocols
        return config.http_protocol_class(config=config, server_state=self.server_state,
                                          app_state=self.lifespan.state)


def worker_pids(server_pid: int) -> list[int]:
    """The worker processes of a running :func:`serve` (not multiprocessing's resource tracker), from /proc."""
    children = [int(child) for task in Path(f"/proc/{server_pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    return [child for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    return serve(host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    sys.exit(main())
