"""Engine and session factory, built once from settings by whoever owns the process."""

from __future__ import annotations

import functools
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import Connection, pq
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from gridmap.config import DatabaseSettings
from gridmap.db.cluster import Cluster


def database_url(settings: DatabaseSettings) -> str:
    """Return the URL in use: ``GRIDMAP_DATABASE_URL`` if set, else the embedded cluster's."""
    if settings.database_url:
        return settings.database_url
    return Cluster(settings.home, settings.cluster_account).url()


def make_engine(url: str, connections: int = 5) -> Engine:
    """An engine keeping up to ``connections`` open: opening one costs the server a process and a SCRAM
    handshake, far more than a query, so a busy service should not open and close them per request.

    A pooled connection the server has dropped (a restart, a terminated backend) is replaced when it is
    taken from the pool, as ``pool_pre_ping`` would, but without a round trip for every healthy one:
    see :func:`_check_alive`. The pool hands out the connection given back last: a worker filing reports one
    after another keeps one warm backend busy rather than taking turns with cold ones (in two paired runs of
    bench/reports.py, 0.10 and 0.12 ms less of PostgreSQL's CPU a report than in turns)."""
    engine = create_engine(url, pool_size=connections, max_overflow=2, pool_use_lifo=True)
    event.listen(engine, "checkin", _on_checkin)
    event.listen(engine, "checkout", functools.partial(_check_alive, engine.dialect))
    return engine


#: a connection idle for longer than this is pinged when taken from the pool, whatever its socket says
PING_AFTER_IDLE_S = 60.0


def _on_checkin(dbapi_connection, record: ConnectionPoolEntry) -> None:
    """A connection back in the pool (rolled back by it, if a transaction was open): out of the autocommit
    that :func:`_begin_with` may have put it in, and noted idle from now."""
    if dbapi_connection is not None and dbapi_connection.autocommit and not dbapi_connection.closed:
        dbapi_connection.autocommit = False
    record.info["idle_since"] = time.monotonic()


def _check_alive(dialect, dbapi_connection, record: ConnectionPoolEntry, _proxy) -> None:
    """Ping a connection taken from the pool only when it may be dead; raise DisconnectionError (the pool then
    opens a new one) if it is (see :func:`_gone`)."""
    gone = _gone(dialect, dbapi_connection, time.monotonic() - record.info.get("idle_since", time.monotonic()))
    if gone is not None:
        raise exc.DisconnectionError(f"pooled connection is gone: {gone}")


def _gone(dialect, dbapi_connection, idle: float) -> str | None:
    """Why a connection idle for ``idle`` seconds is dead (None if it is alive), pinging it only when it may be.

    An idle connection has nothing to read unless the server has closed it (restart, terminated backend:
    the socket reads as the end or as a FATAL message) or sent a notice; so a socket with nothing waiting
    (one ``select`` call, no round trip) is alive. One idle for long is pinged anyway (a peer gone silently)."""
    try:
        suspect = dbapi_connection.closed or bool(select.select([dbapi_connection.fileno()], [], [], 0)[0])
    except (OSError, ValueError):
        suspect = True
    if not (suspect or idle > PING_AFTER_IDLE_S):
        return None
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as error:
        return str(error) or type(error).__name__
    return None


def driver_connection(session: Session):
    """The psycopg connection beneath ``session``, in the session's transaction (begun if need be).

    For the few statements a busy path runs hundreds of times a second (an inspector's report: the key's
    claim, the layers near the fix, the case's insert): SQLAlchemy's execution layer (parameters, result
    metadata, events) costs 50–150 µs of CPU a statement on top of the driver's 25 µs. Their SQL is the
    driver's (``%(name)s`` parameters) and their rows are tuples."""
    return session.connection().connection.driver_connection


def database_key(session: Session) -> tuple:
    """Which database ``session`` works in (server and name), for caches of what is read from it: a URL
    renders itself to text each time it is hashed, which a report would pay twice."""
    url = session.get_bind().engine.url
    return url.host, url.port, url.query.get("host"), url.database


def fetch_together(session: Session, statements: list[tuple[str, dict]]) -> list[list[tuple]]:
    """Run ``statements`` (the driver's SQL and parameters, see :func:`driver_connection`; each returns rows) in
    the session's transaction in one round trip, in order, and return each one's rows.

    psycopg's pipeline mode sends them all before reading any answer: the request waits for the database once,
    not once per statement (on loopback a fraction of a millisecond each, more when PostgreSQL is on another
    host). Where they are the transaction's first, its ``BEGIN`` goes in the same round trip (see
    :func:`_begin_with`). A statement that fails raises here, as it would alone, and the ones after it are
    not run."""
    bound = session.connection()
    connection = bound.connection.driver_connection
    begin = _begin_with(bound.engine, connection)
    with connection.pipeline():
        if begin:
            connection.execute(b"BEGIN", prepare=False)
        cursors = [connection.execute(sql, params) for sql, params in statements]
    return [cursor.fetchall() for cursor in cursors]


def _begin_with(engine: Engine, connection) -> bool:
    """Whether the caller is to send ``BEGIN`` itself, together with its first statements.

    psycopg begins a transaction by sending ``BEGIN`` and waiting for its answer before the first statement,
    even in pipeline mode: a round trip of its own, which for the busiest request (a report) was one of four.
    For a connection whose transaction has not begun (and with the default isolation and access modes, which
    a plain ``BEGIN`` keeps), this switches psycopg to autocommit, in which it sends no ``BEGIN``: the caller
    sends it. Nothing else changes: the transaction is the server's, so the session's later statements run
    in it, and its commit or rollback ends it (psycopg sends ``COMMIT``/``ROLLBACK`` whenever a transaction
    is open, autocommit or not). The connection leaves autocommit when it goes back to the pool
    (:func:`_on_checkin`), before anyone else uses it: only for an engine of :func:`make_engine`, whose pool
    does that (another engine's connection is left as psycopg runs it)."""
    if (connection.autocommit or connection.pgconn.transaction_status != pq.TransactionStatus.IDLE
            or (connection.isolation_level, connection.read_only, connection.deferrable) != (None, None, None)
            or not event.contains(engine, "checkin", _on_checkin)):
        return False
    connection.autocommit = True
    return True


@contextmanager
def autocommit_connection(engine: Engine) -> Iterator[Connection]:
    """A psycopg connection from ``engine``'s pool in autocommit, in which each statement is its own transaction,
    committed when its answer arrives (the pool takes it back out of autocommit: :func:`_on_checkin`).

    For the busiest request, a report, whose writes all go in one statement: without a session and its
    transaction, no ``BEGIN`` nor ``COMMIT`` goes to the database, and SQLAlchemy's session, transaction and
    connection objects (≈0.2 ms of CPU a report, a twentieth of the server's work) are not built."""
    pooled = engine.raw_connection()
    try:
        connection = pooled.driver_connection
        connection.autocommit = True
        yield connection
    finally:
        pooled.close()


class HeldConnection:
    """A connection in autocommit that a server process keeps for its busiest statements, an inspector's
    report's, instead of taking one from the pool for each.

    Checking a connection out of the pool and back in (its queue, events, reset and liveness check) was
    ≈ 5 % of the server's CPU a report. Held, the connection also keeps the statements psycopg has prepared on
    it: no rollback ever reaches it (see :func:`reads_and_autocommit`). It is checked as a pooled one is
    before each use (:func:`_gone`): one the server has dropped (a restart, a terminated backend) is
    replaced, as is one an error left broken. It is the engine's own, detached from the pool, so it does not
    count towards the pool's size: a process opens one connection more than its pool.

    One thread uses it at a time (the report route files on the event loop, one report after another, and
    a report with photos in a worker thread); a thread that finds it in use takes a connection from the pool
    (:func:`autocommit_connection`)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._held = None  # the pool's connection, detached from it, and its psycopg connection
        self._idle_since = time.monotonic()
        self._lock = threading.Lock()

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """The held psycopg connection, in autocommit (opened or replaced if need be), for the block."""
        if not self._lock.acquire(blocking=False):
            with autocommit_connection(self.engine) as connection:
                yield connection
            return
        try:
            yield self._connection()  # one an error broke is replaced at the next use
        finally:
            self._idle_since = time.monotonic()
            self._lock.release()

    def close(self) -> None:
        """Close the held connection (a later use opens another)."""
        with self._lock:
            self._drop()

    def _connection(self) -> Connection:
        if self._held is not None:
            if _gone(self.engine.dialect, self._held[1], time.monotonic() - self._idle_since) is None:
                return self._held[1]
            self._drop()
        pooled = self.engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # closed, not given back, when it is dropped
        connection.autocommit = True
        self._held = pooled, connection
        return connection

    def _drop(self) -> None:
        if self._held is not None:
            (pooled, _), self._held = self._held, None
            try:
                pooled.close()
            except Exception:  # a connection already broken may fail to close: it is gone either way
                pass


@contextmanager
def reads_and_autocommit(factory: sessionmaker[Session], held: HeldConnection) -> Iterator[tuple[Session, Connection]]:
    """A session that only reads and the process's held connection in autocommit (:class:`HeldConnection`)
    for the writes, as a server files a report. When the block succeeds, the session's transaction, if it
    began one (a retry reads its case), is ended by a commit rather than the rollback that closing it sends.

    For a transaction without writes, both end it in the same way, but psycopg forgets all of a connection's
    prepared statements at a rollback (and sends ``DEALLOCATE ALL``): the next statements on that connection
    are parsed and planned again, five times each before psycopg prepares them again. While reports were
    filed on connections from the pool, the connection a retry's session had rolled back was the one the
    pool handed out next: a fifth of the reports' statements were planned again in bench/reports.py (2 %
    retries; 0.25 ms of PostgreSQL's CPU a report)."""
    with factory() as session, held.autocommit() as connection:
        yield session, connection
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("reads_and_autocommit: the session has changes to write, which it never commits")
        if session.in_transaction():
            session.commit()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class KeepsWork(Exception):
    """Mixed into an error that refuses a request whose work must be kept all the same (a failed log-in
    counts towards the lock-out): :func:`unit_of_work` commits before passing it on."""


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session and transaction: committed when the block succeeds, rolled back when it raises (committed
    when what it raises is :class:`KeepsWork`)."""
    session = factory()
    try:
        yield session
        session.commit()
    except KeepsWork:
        session.commit()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
