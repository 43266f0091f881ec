"""Settings, read from ``GRIDMAP_*`` environment variables (pydantic-settings only)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    """Return the project's ``.gridmap/`` folder: beside ``pyproject.toml`` in a checkout, else in the cwd."""
    checkout = Path(__file__).resolve().parents[1]
    base = checkout if (checkout / "pyproject.toml").exists() else Path.cwd()
    return base / ".gridmap"


class DatabaseSettings(BaseSettings):
    """Where the database is: an existing PostGIS (``GRIDMAP_DATABASE_URL``) or the embedded cluster."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of an existing PostGIS; unset = the embedded cluster"
    )
    home: Path = Field(default_factory=default_home, description="folder of the embedded cluster")
    cluster_account: str = Field(
        default="postgres", description="unprivileged account that runs the embedded cluster when invoked as root"
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("GRIDMAP_DATABASE_URL must be a PostgreSQL URL (postgresql://user:pass@host:port/db)")
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value


class ApiSettings(BaseSettings):
    """How the API is served."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    # Python runs one request at a time per process: a few small processes keep both cores busy where two
    # big ones leave one idle whenever it holds the busier connections (the supervisor hands connections
    # to the workers in turn, api/serve.py, but a connection's load is whatever its client sends). More
    # threads than that only fight over the interpreter lock. Measured with bench/reports.py on 2 cores:
    # 2 workers × 12 answered 165 reports/s back to back, 2 × 4 ≈ 270; at a steady 250/s, 2 × 4 fell
    # behind (one worker saturated, the other idle half the time), 4 × 2 kept up. Since reports are filed
    # on the event loop (one at a time per process, api/routers/reports.py), every process more is only
    # more switching: at 310 requests/s, 3 workers spent 3.1–3.5 ms of server CPU a report where 4 spent
    # 3.9 in the runs beside them (with the connections handed in turn, 7 runs each: 3.0–4.7 ms against
    # 3.4–4.2; the target met in 2 runs against 3, median p99 148 ms against 514: no clear gain from a 4th).
    # 2 workers spend ≈ 0.3 ms less a report than 3 but answer no sooner: a report waits more often behind
    # another on its worker (10 paired runs: median p99 ≈ 90 ms against ≈ 80, the target met in 2 against 3).
    workers: int = Field(default=3, ge=1, le=64, description="server processes (the connections are handed "
                         "to each in turn)")
    concurrency: int = Field(default=2, ge=1, le=64, description="requests worked on at once per process "
                             "(threads, and database connections kept open); more wait their turn")
    city_in_memory: bool = Field(default=True, description="each process holds the city's grids, roads and "
                                 "components in memory (the demo city: ≈ 60 MB) and decides reports from them "
                                 "instead of searching the database for each")


class CaseSettings(BaseSettings):
    """Where reports' photos are kept (outside the web root) and how big they may be."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore")

    photo_dir: Path = Field(default_factory=lambda: default_home() / "photos",
                            description="folder of the photo store (content-addressed)")
    photo_max_mb: float = Field(default=10.0, gt=0, le=100, description="largest photo accepted, MB")

    @property
    def photo_max_bytes(self) -> int:
        return int(self.photo_max_mb * 2**20)


class MapSettings(BaseSettings):
    """The dashboard map's base layer: a raster tile URL (none: a plain background under the city's own layers)."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore")

    tiles: str | None = Field(default=None, description="base map tile URL template, e.g. "
                              "https://tile.openstreetmap.org/{z}/{x}/{y}.png; unset = no base map")
    tiles_attribution: str | None = Field(default=None, description="the base map's attribution (required by "
                                          "most tile services' terms)")

    @field_validator("tiles", "tiles_attribution")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class Settings(BaseSettings):
    """All settings, grouped by concern."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", extra="ignore")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    cases: CaseSettings = Field(default_factory=CaseSettings)
    maps: MapSettings = Field(default_factory=MapSettings)


def load_settings() -> Settings:
    """Read the settings from the environment."""
    return Settings()
