"""Inspectors' report intake under load: the API on a real PostGIS, driven over loopback by N simulated
inspectors from a separate process, then checked case by case in the database.

Run: ``.venv/bin/python bench/reports.py [--seconds 20] [--inspectors 32] [--workers 3]`` after ``make setup``.
It creates a private database with the demo city and its case history, as ``make demo`` has them (2–5 min: a
city in service has its cases, see :func:`prepare_database`; ``--no-history``: the city alone, ≈30 s; ``--keep``
keeps the database and ``--database-url`` reuses it), serves the app as deployed (``python -m api.serve
--workers N``: uvicorn processes handed the connections in turn, TCP_NODELAY) on a free port, and lets each
inspector log in with an account of their own (``bench-inspector-NNN``, made in the bench database;
``--shared-account``: all as one user, whose repeats then merge and whose row every filing's foreign keys lock)
and send reports back to back over a keep-alive connection of their own; ``--rate R`` paces them to R requests/s
in all instead, with latency counted from the scheduled send so that a server falling behind is not hidden. Back
to back, mean latency is inspectors / throughput (Little's law): 32 inspectors meet p99 ≤ 50 ms only above ≈640
reports/s, so a steady rate is the direct test of the target: ``--rate 310`` (requests, 2 % of them retries:
≈304 new reports/s).

The load generator shares the machine's cores with the server and PostgreSQL, so it is lean: prepared
request bytes on asyncio streams (uvloop when installed), answers read by status line, Content-Length
and JSON body (``common.KeepAlive``) — a tenth of httpx's CPU per request. Every answer is still checked.

A share of reports carries a photo (a ≈30 KB JPEG made unique per report), a share are retries of
acknowledged reports (same key and body: must answer 200, ``replayed``, the same case). After the
warm-up it measures sustained reports/s (201s per second), p50/p95/p99 latency and where the CPU went
(server workers, PostgreSQL, load generator, the rest; read from /proc), resends once what got no answer
(as a phone's offline queue would), and checks in SQL that every acknowledged case exists exactly once
and nothing else was filed. Target: ≥ 300 reports/s with p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import orjson
from api.main import CITY_LOADED
from api.serve import worker_pids
from gridmap.config import ApiSettings
from common import HttpError, KeepAlive, drop_database, start_server, stop_server, tail

TARGET_RATE, TARGET_P99_MS = 300.0, 50.0
CENTRAL_TAIPEI = (121.505, 25.030, 121.525, 25.050)  # lon/lat box well inside the demo city's grids
EVENT_CLASSES = ("20102", "20104", "20103")
ACCOUNT_PASSWORD = "bench-inspector-password"
REQUEST_TIMEOUT = 30.0
IN_DOUBT = 0  # status recorded for a request that got no HTTP answer
SLICE_S = 2.0  # the measured window's latency is also printed by slices this long


def account(n: int) -> str:
    """The user name simulated inspector ``n`` logs in with: each has their own, as inspectors in the street do."""
    return f"bench-inspector-{n:03d}"


# --------------------------------------------------------------------------- load generator (child process)

@dataclass(frozen=True)
class Plan:
    base_url: str
    run_id: str
    inspectors: int
    warmup: float
    seconds: float
    photo_share: float
    retry_share: float
    rate: float  # requests/s in all; 0 = back to back
    seed: int
    watched: tuple[int, ...] = ()  # the server's worker processes, whose CPU time is counted
    shared_account: bool = False  # every simulated inspector logs in as the same user


@dataclass
class Sent:
    key: str
    description: str
    body: bytes
    content_type: str
    inspector: int  # who sent it: a retry or resend goes with their log-in (keys are per user)
    number: str | None = None


@dataclass
class Load:
    plan: Plan
    photo: bytes
    rng: random.Random
    t0: float = 0.0
    records: list[tuple] = field(default_factory=list)  # kind, began, done, latency, status, key, number, ...
    acked: list[Sent] = field(default_factory=list)
    acked_by: dict[int, list[Sent]] = field(default_factory=lambda: defaultdict(list))  # inspector → theirs
    in_doubt: list[Sent] = field(default_factory=list)
    samples: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))


def make_photo(target: int = 30_000) -> bytes:
    """A JPEG of about ``target`` bytes: a gradient with noise, as a phone photo of a street is busy."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    base = np.stack([x * 255 / 640, y * 255 / 480, (x + y) * 255 / 1120], axis=-1)
    image = Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8))
    for quality in range(90, 10, -5):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        if buffer.tell() <= target:
            break
    return buffer.getvalue()


def stamped(photo: bytes, text: str) -> bytes:
    """The photo with a JPEG comment after its SOI marker: same picture, new bytes (so a new stored photo)."""
    comment = text.encode()
    return photo[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + photo[2:]


def multipart(fields: dict[str, str], photo: bytes | None) -> tuple[bytes, str]:
    """Encode the form as a phone does (multipart even without a photo), byte-identical on a retry."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    if photo is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; filename="street.jpg"\r\n'
                     'Content-Type: image/jpeg\r\n\r\n'.encode() + photo + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def new_report(load: Load, inspector: int, seq: int) -> Sent:
    rng, (x0, y0, x1, y1) = load.rng, CENTRAL_TAIPEI
    description = f"bench-{load.plan.run_id} i{inspector:03d}-{seq:06d}"
    fields = {"x": f"{rng.uniform(x0, x1):.6f}", "y": f"{rng.uniform(y0, y1):.6f}", "crs": "wgs84",
              "accuracy": f"{rng.uniform(5, 20):.1f}", "class_code": rng.choice(EVENT_CLASSES),
              "description": description}
    photo = stamped(load.photo, description) if rng.random() < load.plan.photo_share else None
    body, content_type = multipart(fields, photo)
    return Sent(str(uuid.uuid4()), description, body, content_type, inspector)


async def send(client: KeepAlive, load: Load, sent: Sent, token: str, kind: str, scheduled: float) -> None:
    """Send one report request and record what came back."""
    head = client.head("POST", "/api/v1/reports", {"Authorization": f"Bearer {token}", "Content-Type": sent.content_type,
                                                   "Idempotency-Key": sent.key}, len(sent.body))
    began = time.perf_counter()
    number, replayed, status_text = None, None, None
    try:
        status, body = await client.request(head, sent.body)
        if status in (200, 201):
            answer = orjson.loads(body)
            number, replayed, status_text = answer["number"], answer["replayed"], answer["status"]
        elif len(load.samples[status]) < 3:
            load.samples[status].append(body[:600].decode(errors="replace"))
    except HttpError as error:
        status = IN_DOUBT
        if len(load.samples[status]) < 3:
            load.samples[status].append(str(error))
    done = time.perf_counter()
    expected = sent.number if kind == "retry" else None
    load.records.append((kind, began - load.t0, done - load.t0, done - scheduled, status, sent.key, number,
                         replayed, status_text, expected))
    if kind != "retry" and status in (200, 201):
        sent.number = number
        load.acked.append(sent)
        load.acked_by[sent.inspector].append(sent)
    elif kind == "report" and (status == IN_DOUBT or status >= 500):
        load.in_doubt.append(sent)


async def inspector(client: KeepAlive, load: Load, n: int, token: str, end: float) -> None:
    """One inspector (with a connection of their own): reports, and now and then a retry of one of their
    acknowledged reports, until ``end``."""
    plan, seq, mine = load.plan, 0, load.acked_by[n]
    interval = plan.inspectors / plan.rate if plan.rate else 0.0
    next_at = load.t0 + n * interval / plan.inspectors
    while (now := time.perf_counter()) < end:
        if interval:
            if next_at >= end:
                break
            await asyncio.sleep(max(0.0, next_at - now))
            scheduled, next_at = next_at, next_at + interval
        else:
            scheduled = now
        if mine and load.rng.random() < plan.retry_share:
            await send(client, load, load.rng.choice(mine), token, "retry", scheduled)
        else:
            await send(client, load, new_report(load, n, seq), token, "report", scheduled)
            seq += 1


async def log_in(client: KeepAlive, name: str) -> str:
    body = urlencode({"username": name, "password": ACCOUNT_PASSWORD}).encode()
    status, answer = await client.request(client.head(
        "POST", "/api/v1/auth/token", {"Content-Type": "application/x-www-form-urlencoded"}, len(body)), body)
    if status != 200:
        raise RuntimeError(f"log-in failed with {status}: {answer[:300]!r}")
    return orjson.loads(answer)["access_token"]


async def run_load(plan: Plan) -> dict:
    load = Load(plan, make_photo(), random.Random(plan.seed))
    clients = [KeepAlive.to(plan.base_url, REQUEST_TIMEOUT) for _ in range(plan.inspectors)]
    names = [account(0 if plan.shared_account else n) for n in range(plan.inspectors)]
    tokens = await asyncio.gather(*map(log_in, clients, names))
    load.t0 = time.perf_counter()
    end = load.t0 + plan.warmup + plan.seconds
    window: dict = {}  # the CPU every process spends in the measured window, read from /proc at its ends
    loop = asyncio.get_running_loop()
    loop.call_at(loop.time() + plan.warmup, lambda: window.update(start=cpu_times(plan.watched)))
    loop.call_at(loop.time() + plan.warmup + plan.seconds, lambda: window.update(end=cpu_times(plan.watched)))
    await asyncio.wait_for(asyncio.gather(*(inspector(c, load, n, t, end) for n, (c, t) in enumerate(zip(clients, tokens)))),
                           timeout=plan.warmup + plan.seconds + 2 * REQUEST_TIMEOUT)
    for sent in load.in_doubt:  # the phone's offline queue: same key, same body, once
        await send(clients[sent.inspector], load, sent, tokens[sent.inspector], "resend", time.perf_counter())
    for client in clients:
        client.close()
    return {"records": load.records, "samples": dict(load.samples), "photo_bytes": len(load.photo),
            "acked": [(s.key, s.description, s.number) for s in load.acked],
            "cpu": {"start": window.get("start"), "end": window.get("end")}}


def drive(plan: Plan) -> dict:
    """Entry point of the load-generator process (on uvloop, when installed: less CPU for the same load)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_load(plan))
    return uvloop.run(run_load(plan))


def cpu_times(workers: tuple[int, ...]) -> dict:
    """CPU seconds used so far (from /proc) by every process (pid → command, seconds), with the server's
    ``workers`` and this load generator named as such, and by the machine (busy and stolen, all CPUs)."""
    tick, mine = os.sysconf("SC_CLK_TCK"), os.getpid()
    processes = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            head, _, rest = Path(f"/proc/{pid}/stat").read_text().rpartition(")")
        except OSError:
            continue  # gone meanwhile
        fields, name = rest.split(), head.partition("(")[2]
        name = ("server worker" if int(pid) in workers else "load generator" if int(pid) == mine
                else "postgres" if name in ("postgres", "postmaster") else name)
        processes[pid] = (name, (int(fields[11]) + int(fields[12])) / tick)
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return {"processes": processes, "busy": (user + nice + system + irq + softirq) / tick, "steal": steal / tick,
            "all": (user + nice + system + idle + iowait + irq + softirq + steal) / tick}


# --------------------------------------------------------------------------- database and server (parent)

def prepare_database(args: argparse.Namespace, photo_dir: Path) -> tuple[str, bool]:
    """Return the bench database's URL and whether this run created it (a fresh copy with the demo city and,
    unless ``--no-history``, its case history)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import Session

    from gridmap.config import load_settings
    from gridmap.db.cluster import ensure_database
    from gridmap.db.engine import database_url
    from gridmap.db.migrate import upgrade
    from gridmap.demo.history import load_history
    from gridmap.demo.service import load_demo
    from gridmap.demo.users import DEMO_INSPECTOR, demo_users
    from gridmap.users.service import create_user

    created = args.database_url is None
    if created:
        base = make_url(database_url(load_settings().database))
        url = base.set(database=f"gridmap_bench_{uuid.uuid4().hex[:8]}").render_as_string(hide_password=False)
        started = time.perf_counter()
        print(f"creating {make_url(url).database} and loading the demo city (≈30 s)"
              f"{'' if args.no_history else ' and its case history (2–5 min)'} …", flush=True)
        ensure_database(url)
        upgrade(url)
    else:
        url = args.database_url
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            if created:
                load_demo(session=session)
            if created and not args.no_history:
                # a city in service has its cases: PostgreSQL plans the foreign keys' checks against case_file
                # (each report's event, its key) once per connection, by the table's size then, so an empty
                # table would have them scan the whole table for every report, growing all through the run
                load_history(session=session, photo_dir=photo_dir)
            demo_users(session=session)
            for n in range(args.inspectors):
                create_user(session=session, name=account(n), role="inspector", password=ACCOUNT_PASSWORD,
                            inspector=DEMO_INSPECTOR, display_name=f"bench inspector {n}", replace=True)
            session.commit()
        if created:  # as a database in service would be: planner statistics and visibility maps made, so that
            # autovacuum does not do it in the measured window (its CPU counts as PostgreSQL's)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE)")
    finally:
        engine.dispose()
    if created:
        print(f"  ready in {time.perf_counter() - started:.0f} s", flush=True)
    return url, created


# --------------------------------------------------------------------------- figures and verification

def summarise(result: dict, args: argparse.Namespace) -> bool:
    """Print throughput, latency and errors of the measured window; return whether the target is met."""
    start, end = args.warmup, args.warmup + args.seconds
    records = result["records"]
    window = [r for r in records if start <= r[2] < end]
    reports = [r for r in window if r[0] == "report"]
    acked = sum(r[4] == 201 for r in reports)
    rate = acked / args.seconds
    latency = np.array([r[3] for r in reports]) * 1000
    p50, p95, p99 = np.percentile(latency, [50, 95, 99]) if latency.size else (np.nan,) * 3
    retries = np.array([r[3] for r in window if r[0] == "retry"]) * 1000
    print(f"\nrequests sent           : {len(records):,} ({sum(r[0] == 'report' for r in records):,} reports, "
          f"{sum(r[0] == 'retry' for r in records):,} retries, {sum(r[0] == 'resend' for r in records):,} "
          f"resends of unanswered; warm-up included)")
    print(f"measured window         : {args.seconds:g} s after {args.warmup:g} s warm-up: {len(reports):,} reports, "
          f"{acked:,} acknowledged (201), {sum(r[8] == 'merged' for r in reports):,} of them auto-merged")
    print(f"sustained reports/s     : {rate:,.1f}")
    print(f"latency (reports, ms)   : p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  max {latency.max(initial=0):.1f}")
    # a backlog shows as a run of slow slices (a stall, the start), a server short of CPU as slow slices throughout
    slices = [np.array([r[3] for r in reports if start + k <= r[2] < start + k + SLICE_S]) * 1000
              for k in np.arange(0, args.seconds, SLICE_S)]
    print(f"{f'p99 by {SLICE_S:g} s (ms)':<24}: "
          + "  ".join(f"{np.percentile(s, 99):.0f}" if s.size else "-" for s in slices))
    if retries.size:
        print(f"latency (retries, ms)   : p50 {np.percentile(retries, 50):.1f}  p99 {np.percentile(retries, 99):.1f}")
    errors = Counter(r[4] for r in records if not 200 <= r[4] < 300)
    print("errors                  : " + (", ".join(f"{'no answer' if s == IN_DOUBT else s}: {n}"
                                                   for s, n in sorted(errors.items())) or "none"))
    for status, bodies in sorted(result["samples"].items()):
        for body in bodies:
            print(f"  sample {status}: {body}")
    cpu_report(result["cpu"], len(window), args.seconds)
    met = rate >= TARGET_RATE and p99 <= TARGET_P99_MS
    print(f"target (≥ {TARGET_RATE:.0f}/s, p99 ≤ {TARGET_P99_MS:.0f} ms): {'met' if met else 'NOT met'} "
          f"({rate / TARGET_RATE:.2f} × the rate, p99 {p99 / TARGET_P99_MS:.2f} × the limit)")
    return met


def cpu_report(cpu: dict, answered: int, seconds: float) -> None:
    """Where the machine's CPU went in the measured window, per request answered in it: the server's
    workers, PostgreSQL, the load generator, and whatever else ran (the kernel's own work included)."""
    start, end = cpu["start"], cpu["end"]
    if not (start and end and answered):
        return
    used: dict[str, float] = defaultdict(float)
    workers = []
    for pid, (name, seconds_used) in end["processes"].items():
        spent = seconds_used - start["processes"].get(pid, (name, 0.0))[1]  # a process started meanwhile: all of it
        used[name] += spent
        if name == "server worker":
            workers.append(spent)
    busy, steal, capacity = (end[k] - start[k] for k in ("busy", "steal", "all"))
    named = sum(used.values())
    others = sorted(((v, k) for k, v in used.items() if k not in ("server worker", "postgres", "load generator")),
                    reverse=True)

    def ms(value: float) -> str:
        return f"{1000 * value / answered:.2f}"
    print(f"CPU (measured window)   : {busy / seconds:.2f} of {capacity / seconds:.1f} CPUs busy, {steal / seconds:.2f} "
          f"stolen; ms per answered request: server {ms(used['server worker'])} (workers "
          f"{' + '.join(ms(w) for w in workers)}), postgres {ms(used['postgres'])}, load generator "
          f"{ms(used['load generator'])}, other processes {ms(sum(v for v, _ in others))}"
          + "".join(f" ({k} {ms(v)})" for v, k in others[:3] if 1000 * v / answered >= 0.05)
          + f", rest (kernel, processes gone meanwhile, rounding) {ms(busy - named)}")


def verify(url: str, result: dict, run_id: str) -> list[str]:
    """Check in SQL that every acknowledged report is one case, retries made none, and answered alike."""
    from sqlalchemy import create_engine, text

    problems = []
    acked = {key: (description, number) for key, description, number in result["acked"]}
    if len(acked) != len(result["acked"]):
        problems.append(f"{len(result['acked']) - len(acked)} keys were acknowledged as new (201) more than once")
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT number, count(*) FROM case_file WHERE number = ANY(:n) "
                                        "GROUP BY number"), {"n": [n for _, n in acked.values()]}).all())
        filed = dict(conn.execute(text("SELECT description, number FROM case_file WHERE description LIKE :p"),
                                  {"p": f"bench-{run_id} %"}).all())
    engine.dispose()
    missing = [n for _, n in acked.values() if n not in counts]
    doubled = {n: c for n, c in counts.items() if c != 1}
    if missing:
        problems.append(f"{len(missing)} acknowledged case numbers are not in case_file, e.g. {missing[:5]}")
    if doubled:
        problems.append(f"case numbers found more than once: {list(doubled.items())[:5]}")
    if len(filed) != len(acked):
        problems.append(f"{len(filed)} cases carry this run's descriptions, but {len(acked)} distinct keys were "
                        "acknowledged")
    wrong = [d for d, n in acked.values() if filed.get(d) != n]
    if wrong:
        problems.append(f"{len(wrong)} acknowledged reports are filed under another number, e.g. {wrong[:3]}")
    retries = [r for r in result["records"] if r[0] == "retry"]
    bad = [r for r in retries if r[4] != 200 or r[7] is not True or r[6] != r[9]]
    if bad:
        problems.append(f"{len(bad)} of {len(retries)} retries did not replay the original case, e.g. "
                        + "; ".join(f"status {r[4]}, replayed {r[7]}, {r[6]} vs {r[9]}" for r in bad[:3]))
    print(f"\nverification            : {len(acked):,} acknowledged reports, {len(filed):,} bench cases in "
          f"case_file, {len(retries):,} retries -> " + ("OK" if not problems else "FAILED"))
    for problem in problems:
        print(f"  - {problem}")
    return problems


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"nproc {usable} ({os.cpu_count()} CPUs, {model}); Python {platform.python_version()}; "
            f"speed {speed():.0f} ms (a fixed Python loop, best of 5: on a shared VM it drifts; compare runs by it)")


def speed() -> float:
    """Milliseconds of CPU for a fixed loop of Python arithmetic (lower is faster)."""
    def once() -> float:
        started, total = time.thread_time(), 0
        for i in range(1_000_000):
            total += i * i
        return time.thread_time() - started
    return 1000 * min(once() for _ in range(5))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inspectors", type=int, default=32, help="simulated inspectors (1..512)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window (1..600)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds sent first and not counted")
    parser.add_argument("--workers", type=int, default=ApiSettings.model_fields["workers"].default,
                        help="server worker processes (default: as gridmap serve)")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s in all, retries included (0: back to back)")
    parser.add_argument("--photo-share", type=float, default=0.1)
    parser.add_argument("--retry-share", type=float, default=0.02)
    parser.add_argument("--shared-account", action="store_true",
                        help="every simulated inspector logs in as the same user (one account on many phones)")
    parser.add_argument("--seed", type=int, help="of the points, classes and photos (default: random)")
    parser.add_argument("--database-url", help="a database with the demo city loaded (default: a fresh copy)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database and the server's log")
    parser.add_argument("--no-history", action="store_true",
                        help="a new database without the demo case history: quicker to make, less like a city in "
                             "service (its first reports' plans scan the case table, see prepare_database)")
    args = parser.parse_args()
    if not (1 <= args.inspectors <= 512 and 1 <= args.seconds <= 600 and 0 <= args.warmup <= 60):
        parser.error("--inspectors must be within 1..512, --seconds within 1..600 and --warmup within 0..60")
    return args


def server_stack() -> str:
    """The event loop and HTTP parser uvicorn picks (``auto``): uvloop and httptools if installed."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"{loop} + {'httptools' if importlib.util.find_spec('httptools') else 'h11'}"


def describe(args: argparse.Namespace, run_id: str) -> str:
    pace = f"{args.rate:g} requests/s" if args.rate else "back to back"
    return (f"server  : python -m api.serve --workers {args.workers} (uvicorn, {server_stack()}, connections "
            f"handed to each in turn, TCP_NODELAY); load: "
            f"{args.inspectors} inspectors, {pace}, {args.seconds:g} s measured after {args.warmup:g} s warm-up; "
            f"photos {args.photo_share:.0%}, retries {args.retry_share:.0%}; run {run_id}")


def bench(args: argparse.Namespace, url: str, tmp: Path, run_id: str) -> bool:
    """Serve, load, summarise and verify; return whether the verification passed."""
    log_path = tmp / "server.log"
    seed = args.seed if args.seed is not None else int(run_id, 16)  # new places each run: no merges into old runs
    # the load begins once every worker holds the city's layers (its steady state; a server starts once)
    server, base_url = start_server(log_path, {"GRIDMAP_DATABASE_URL": url, "GRIDMAP_PHOTO_DIR": str(tmp / "photos")},
                                    args.workers, CITY_LOADED if ApiSettings().city_in_memory else None)
    try:
        plan = Plan(base_url, run_id, args.inspectors, args.warmup, args.seconds, args.photo_share,
                    args.retry_share, args.rate, seed, tuple(worker_pids(server.pid)), args.shared_account)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            result = pool.submit(drive, plan).result()
    except BaseException:
        print(f"server log ({log_path}), last lines:\n{tail(log_path)}")
        raise
    finally:
        stop_server(server)
    print(f"photo   : {result['photo_bytes'] / 1000:.0f} KB JPEG")
    summarise(result, args)
    problems = verify(url, result, run_id)
    unanswered = any(r[4] >= 500 or r[4] == IN_DOUBT for r in result["records"])
    if unanswered or problems or "Traceback" in log_path.read_text(errors="replace"):
        print(f"\nserver log ({log_path}), last lines:\n{tail(log_path)}")
    return not problems


def main() -> int:
    args = arguments()
    run_id = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="gridmap_bench_reports_"))
    print(f"machine : {machine()}")
    print(describe(args, run_id))
    url, created = prepare_database(args, tmp / "photos")
    passed = False
    try:
        passed = bench(args, url, tmp, run_id)
    finally:
        if created and not args.keep:
            drop_database(url)
        elif created:
            print(f"kept the database: --database-url '{url}'")
        if args.keep or not passed:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
