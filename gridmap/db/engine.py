"""Engine and session factory, built once from settings by whoever owns the process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from gridmap.config import DatabaseSettings
from gridmap.db.cluster import Cluster


def database_url(settings: DatabaseSettings) -> str:
    """Return the URL in use: ``GRIDMAP_DATABASE_URL`` if set, else the embedded cluster's."""
    if settings.database_url:
        return settings.database_url
    return Cluster(settings.home, settings.cluster_account).url()


def make_engine(url: str, connections: int = 5) -> Engine:
    """An engine keeping up to ``connections`` open: opening one costs the server a process and a SCRAM
    handshake, far more than a query, so a busy service should not open and close them per request."""
    return create_engine(url, pool_pre_ping=True, pool_size=connections, max_overflow=2)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session and transaction: committed when the block succeeds, rolled back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
