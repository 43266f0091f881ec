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


def make_engine(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True)


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
