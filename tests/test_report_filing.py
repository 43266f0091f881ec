"""How a report reaches the database: the round trips it takes, in a session's transaction and on a server's
connection in autocommit, and what a copy racing it finds."""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from psycopg.pq import Trace
from sqlalchemy import text

from gridmap.cases.exceptions import BadCaseInput, IdempotencyConflict
from gridmap.cases.reports import submit_report
from gridmap.cases.schemas import ReportInput
from gridmap.db.engine import (
    HeldConnection,
    driver_connection,
    make_engine,
    make_session_factory,
    reads_and_autocommit,
    unit_of_work,
)
from gridmap.demo.users import demo_users
from gridmap.users.exceptions import Forbidden, NotAuthenticated
from gridmap.users.service import BearerToken, current_user, issue_token
from tests.test_cases import STATION, THURSDAY

FIELDS = ReportInput(x=STATION[0], y=STATION[1], class_code="20102", description="暴露垃圾", accuracy=5.0)


ROUND_TRIP_ENDS = ("Sync", "Query")  # a round trip ends with a Sync (extended protocol, pipelines) or is a Query


@contextmanager
def sent_to(pgconn):
    """The messages the client sends on ``pgconn`` within the block, from libpq's trace: each as its fields
    (direction, length, type, …), filled in when the block ends."""
    sent = []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield sent
        finally:
            pgconn.untrace()
        trace.seek(0)
        sent += [line.split("\t") for line in trace.read().splitlines() if line.startswith("F\t")]


def test_a_report_with_its_token_is_filed_in_two_round_trips(session, tmp_path):
    """The token's check, the key's lookup and the searches around the fix (features, open cases) are one
    statement; then the key's claim with the case and its event (the commit, the caller's, is a third)."""
    demo_users(session=session)
    inspector = current_user(session=session, name="demo-inspector")
    token = issue_token(session=session, name="demo-inspector", password="inspector-demo")[0]

    def file(user, key="trips-1"):
        return submit_report(session=session, user=user, report=FIELDS, uploads=[], key=key, photo_dir=tmp_path,
                             photo_max_bytes=10_000_000, now=THURSDAY)

    first = file(inspector, key="trips-0")  # the rules and the calendar cached, as in a running server
    with sent_to(driver_connection(session).pgconn) as sent:
        filed = file(BearerToken(token))
    trips = sum(1 for line in sent if line[2] in ROUND_TRIP_ENDS)
    assert trips == 2 and not filed.replayed and filed.case.proposed_department == "HW"
    # the same inspector's repeat, found by the search that went with the rest, is merged
    assert filed.case.reporter_id == inspector.id and filed.merged_into == first.case.number
    assert file(BearerToken(token)).case.id == filed.case.id  # the retry, by its key
    with pytest.raises(NotAuthenticated):
        file(BearerToken("not-a-token"), key="trips-2")
    analyst = issue_token(session=session, name="demo-analyst", password="analyst-demo")[0]
    with pytest.raises(Forbidden):
        file(BearerToken(analyst), key="trips-3")
    # neither refused report claimed its key, even in a transaction that goes on
    assert session.scalar(text("SELECT count(*) FROM idempotency_key WHERE key IN ('trips-2', 'trips-3')")) == 0


@contextmanager
def city_for_reports(scratch_url: str, connections: int):
    """An engine of make_engine on a private copy of the demo city, its session factory, an inspector's token
    and the connection a server process holds for its reports; all connections closed at the end."""
    engine = make_engine(scratch_url, connections=connections)
    sessions = make_session_factory(engine)
    held = HeldConnection(engine)
    try:
        with unit_of_work(sessions) as session:
            demo_users(session=session)
            token = BearerToken(issue_token(session=session, name="demo-inspector", password="inspector-demo")[0])
        yield engine, sessions, token, held
    finally:
        held.close()
        engine.dispose()


def file_in_autocommit(held, sessions, token, key, tmp_path, report=FIELDS, now=THURSDAY):
    """File as the server does: the statements on the held connection in autocommit, a session for the rest."""
    with reads_and_autocommit(sessions, held) as (session, connection):
        return submit_report(session=session, user=token, report=report, uploads=[], key=key, photo_dir=tmp_path,
                             photo_max_bytes=10_000_000, now=now, connection=connection)


def test_a_report_begins_its_transaction_in_its_first_round_trip(scratch_url, tmp_path):
    """In a server's session (an engine of make_engine), the transaction's BEGIN goes with the report's first
    statement: three round trips with the commit. The transaction is no less one for it (a failure after the
    BEGIN leaves nothing), and the connection goes back to the pool as psycopg runs it, out of autocommit."""
    with city_for_reports(scratch_url, connections=1) as (engine, sessions, token, _):
        def file(session, key):
            return submit_report(session=session, user=token, report=FIELDS, uploads=[], key=key,
                                 photo_dir=tmp_path, photo_max_bytes=10_000_000, now=THURSDAY)

        with unit_of_work(sessions) as session:
            file(session, "begin-0")  # the rules and the calendar cached, as in a running server
        with engine.connect() as connection:  # the pool's one connection, which the next session takes
            pgconn = connection.connection.driver_connection.pgconn
        with sent_to(pgconn) as sent, unit_of_work(sessions) as session:
            filed = file(session, "begin-1")
        trips = [n for n, line in enumerate(sent) if line[2] in ROUND_TRIP_ENDS]
        begins = [n for n, line in enumerate(sent) if "BEGIN" in line[-1]]
        assert len(trips) == 3 and len(begins) == 1 and begins[0] < trips[0], sent
        assert "COMMIT" in sent[trips[2]][-1] and not filed.replayed
        with engine.connect() as connection:
            assert connection.connection.driver_connection.autocommit is False
        with pytest.raises(RuntimeError):  # a failure after the report's statements: nothing of it is kept
            with unit_of_work(sessions) as session:
                lost = file(session, "begin-2").case.number
                raise RuntimeError("after the filing")
        with unit_of_work(sessions) as session:
            kept = session.execute(text("SELECT (SELECT count(*) FROM idempotency_key WHERE key LIKE 'begin-%'), "
                                        "(SELECT count(*) FROM case_file WHERE number = :lost)"), {"lost": lost}).one()
            assert tuple(kept) == (2, 0)
            assert session.connection().connection.driver_connection.autocommit is False


def test_a_server_files_a_report_in_two_statements_and_no_transaction_of_its_own(scratch_url, tmp_path):
    """On the connection a server process holds in autocommit (HeldConnection, as the report route uses it) a
    report is two statements and no BEGIN nor COMMIT: the second files the case, committed when it answers.
    A report refused after the first leaves nothing."""
    with city_for_reports(scratch_url, connections=1) as (engine, sessions, token, held):
        file_in_autocommit(held, sessions, token, "auto-0", tmp_path)  # the rules and the calendar cached
        with held.autocommit() as connection:
            pgconn = connection.pgconn
        with sent_to(pgconn) as sent:
            filed = file_in_autocommit(held, sessions, token, "auto-1", tmp_path)
        trips = [line for line in sent if line[2] in ROUND_TRIP_ENDS]
        assert len(trips) == 2 and not filed.replayed, sent
        assert not any(word in line[-1] for line in sent for word in ("BEGIN", "COMMIT")), sent
        with psycopg.connect(scratch_url.replace("+psycopg", "")) as other:  # committed: seen from elsewhere
            assert other.execute("SELECT count(*) FROM case_file WHERE number = %s", [filed.case.number]).fetchone() \
                == (1,)
        retry = file_in_autocommit(held, sessions, token, "auto-1", tmp_path)
        assert retry.replayed and retry.case.number == filed.case.number
        future = FIELDS.model_copy(update={"captured_at": THURSDAY + timedelta(days=1)})
        with pytest.raises(BadCaseInput, match="future"):
            file_in_autocommit(held, sessions, token, "auto-2", tmp_path, report=future)
        with unit_of_work(sessions) as session:
            assert session.scalar(text("SELECT count(*) FROM idempotency_key WHERE key = 'auto-2'")) == 0


def test_a_retry_ends_its_reads_by_a_commit_and_the_prepared_statements_stay(scratch_url, tmp_path):
    """The filing's statements, prepared by psycopg on the held connection after a few reports, stay prepared.
    A retry reads its case through the session, the one report that does, and ends that transaction by a
    commit: at a rollback psycopg forgets every statement prepared on the connection (DEALLOCATE ALL)."""
    with city_for_reports(scratch_url, connections=1) as (engine, sessions, token, held):
        for n in range(8):  # psycopg prepares a statement at its sixth execution
            file_in_autocommit(held, sessions, token, f"kept-{n}", tmp_path)
        with engine.connect() as pooled, held.autocommit() as connection:  # the session's, with one prepared too
            session_side = pooled.connection.driver_connection
            session_side.execute("SELECT 1", prepare=True)
            session_side.commit()  # not rolled back by the pool either

            def prepared(on) -> int:
                return on.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]

            before = prepared(connection), prepared(session_side)
            session_side.commit()
        assert before[0] >= 2 and before[1] == 1, before
        with sent_to(connection.pgconn) as held_sent, sent_to(session_side.pgconn) as session_sent:
            retry = file_in_autocommit(held, sessions, token, "kept-7", tmp_path)
        assert retry.replayed and any("COMMIT" in line[-1] for line in session_sent), session_sent
        sent = [line[-1] for line in held_sent + session_sent]
        assert not any("ROLLBACK" in line or "DEALLOCATE" in line for line in sent), sent
        with engine.connect() as pooled, held.autocommit() as again:
            assert again is connection and pooled.connection.driver_connection is session_side
            assert (prepared(connection), prepared(session_side)) == before


def test_a_copy_racing_a_report_in_flight_waits_for_it_and_answers_with_its_case(scratch_url, tmp_path):
    """A copy whose first statement finds the key free while the report that claims it has not committed yet
    waits at the key for that commit, then files nothing and answers with the report's case; a different
    report with the key is refused. Either way one case."""
    with city_for_reports(scratch_url, connections=2) as (engine, sessions, token, held):
        file_in_autocommit(held, sessions, token, "race-0", tmp_path)  # the rules and the calendar cached
        other = FIELDS.model_copy(update={"description": "another report"})
        for key, copy, replayed in (("race-1", FIELDS, True), ("race-2", other, False)):
            with ThreadPoolExecutor(1) as pool:
                with unit_of_work(sessions) as session:  # the report in flight, committed at the block's end
                    first = submit_report(session=session, user=token, report=FIELDS, uploads=[], key=key,
                                          photo_dir=tmp_path, photo_max_bytes=10_000_000, now=THURSDAY)
                    racing = pool.submit(file_in_autocommit, held, sessions, token, key, tmp_path, report=copy)
                    waiting_for_a_lock(scratch_url, until=racing)
            if replayed:
                assert racing.result().replayed and racing.result().case.number == first.case.number
            else:
                with pytest.raises(IdempotencyConflict):
                    racing.result()
        with unit_of_work(sessions) as session:
            filed = session.execute(text("SELECT (SELECT count(*) FROM idempotency_key WHERE key LIKE 'race-%'), "
                                         "(SELECT count(*) FROM case_file WHERE reporter_id = "
                                         "(SELECT id FROM app_user WHERE name = 'demo-inspector'))")).one()
            assert tuple(filed) == (3, 3)


def waiting_for_a_lock(url: str, *, until, timeout: float = 10.0) -> None:
    """Return once a session of the database at ``url`` waits for a lock (or ``until``, a future, is done)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as watcher:
        while not until.done() and time.monotonic() < deadline:
            if watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                               "AND datname = current_database()").fetchone()[0]:
                return
            time.sleep(0.02)
