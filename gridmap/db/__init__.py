"""Database access: engine and sessions, the embedded cluster, migrations."""

from gridmap.db.base import STORAGE_SRID, Base
from gridmap.db.engine import database_url, make_engine, make_session_factory

__all__ = ["STORAGE_SRID", "Base", "database_url", "make_engine", "make_session_factory"]
