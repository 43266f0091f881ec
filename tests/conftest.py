"""Test fixtures: a throwaway PostGIS database, migrated and loaded with the Taipei demo city.

The database is created in the server gridmap is configured for (the embedded cluster, or
GRIDMAP_DATABASE_URL) and dropped at the end. Each test runs in a transaction that is rolled back.
A database that cannot be reached fails the run; a skipped test fails it too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gridmap.config import load_settings
from gridmap.db.cluster import ensure_database
from gridmap.db.engine import database_url
from gridmap.db.migrate import upgrade
from gridmap.demo.service import load_demo
from gridmap.io.report import ImportReport

pytest_plugins = ["tests.browser"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped"):
        reporter.write_line("skipped tests count as failures in gridmap", red=True)
        session.exitstatus = 1


def _admin(url: str) -> psycopg.Connection:
    target = make_url(url)
    return psycopg.connect(host=target.host, port=target.port, user=target.username, password=target.password,
                           dbname="postgres", autocommit=True)


def drop_database(url: str) -> None:
    name = make_url(url).database
    with _admin(url) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def clone_database(url: str, suffix: str) -> str:
    """Create a copy of the database at ``url`` (which must have no open connections); return its URL."""
    source = make_url(url)
    target = source.set(database=f"{source.database}_{suffix}")
    with _admin(url) as conn:
        conn.execute(f'CREATE DATABASE "{target.database}" TEMPLATE "{source.database}"')
    return target.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def db_url() -> Iterator[str]:
    base = database_url(load_settings().database)
    url = make_url(base).set(database=f"gridmap_test_{uuid.uuid4().hex[:10]}").render_as_string(hide_password=False)
    ensure_database(url)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    # No pooled connections survive between tests, so the database can serve as a template.
    engine = create_engine(db_url, poolclass=pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def demo_reports(engine: Engine) -> list[ImportReport]:
    """Load the demo city once, committed, as `make demo` does."""
    with Session(engine) as session:
        reports = load_demo(session=session)
        session.commit()
    return reports


@pytest.fixture(scope="session")
def reader(engine: Engine, demo_reports) -> Iterator[dict[str, str]]:
    """The log-in form of an analyst on the demo city (its reference data is for logged-in users); removed
    at the end, with its tokens."""
    from gridmap.users.service import create_user

    form = {"username": "test-reader", "password": "test-reader-password"}
    with Session(engine) as session:
        create_user(session=session, name=form["username"], role="analyst", password=form["password"])
        session.commit()
    yield form
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM app_user WHERE name = :name"), {"name": form["username"]})


def logged_in(client, form: dict[str, str]) -> dict[str, str]:
    """The bearer header of a log-in with ``form`` through ``client`` (a TestClient); its cookie is dropped,
    so that a request without the header is anonymous."""
    reply = client.post("/api/v1/auth/token", data=form)
    assert reply.status_code == 200, reply.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


@pytest.fixture
def session(engine: Engine, demo_reports) -> Iterator[Session]:
    """A session on the demo city inside a transaction that is rolled back after the test."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def scratch_url(db_url: str, demo_reports) -> Iterator[str]:
    """URL of a private copy of the demo database, for commands that commit (CLI, API writes)."""
    url = clone_database(db_url, uuid.uuid4().hex[:6])
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def history_url(db_url: str, demo_reports, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a copy of the demo database with the demo case history loaded and committed (once per run:
    the 1999 hotline replay and the generated inspector cases, as `gridmap demo history` loads them).

    Read it, or clone it (``clone_database(history_url, …)``) before writing to it: other tests share it."""
    from gridmap.demo.history import load_history

    url = clone_database(db_url, f"history_{uuid.uuid4().hex[:6]}")
    try:
        history_engine = create_engine(url, poolclass=pool.NullPool)
        try:
            with Session(history_engine) as session:
                load_history(session=session, photo_dir=tmp_path_factory.mktemp("history_photos"))
                session.commit()
        finally:
            history_engine.dispose()
        yield url
    finally:
        drop_database(url)
