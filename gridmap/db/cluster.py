"""The project's own private PostGIS cluster under ``.gridmap/``.

It listens on 127.0.0.1 only, on a port chosen free at creation and kept in ``.gridmap/cluster.json``
together with a generated password (file mode 600). PostgreSQL refuses to run as root, so when invoked
as root the cluster's files belong to, and its server runs as, an unprivileged account
(``GRIDMAP_CLUSTER_ACCOUNT``, default ``postgres``, the account Debian's packages create).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

DATABASE = "gridmap"
ROLE = "gridmap"
FIRST_PORT = 54329


class ClusterError(RuntimeError):
    """The embedded cluster cannot be created, started or reached; the message says what to do."""


def postgres_bindir() -> Path:
    """Return the newest installed PostgreSQL server's ``bin`` folder that has PostGIS beside it."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise ClusterError(
            "PostgreSQL server not found. Install it with:\n"
            "  sudo apt-get install -y postgresql postgresql-postgis\n"
            "or point gridmap at an existing PostGIS with GRIDMAP_DATABASE_URL."
        )
    for server in reversed(versions):
        major = server.parts[-3]
        if Path(f"/usr/share/postgresql/{major}/extension/postgis.control").exists():
            return server.parent
    major = versions[-1].parts[-3]
    raise ClusterError(
        f"PostGIS is not installed for PostgreSQL {major}. Install it with:\n"
        f"  sudo apt-get install -y postgresql-{major}-postgis-3\n"
        "or point gridmap at an existing PostGIS with GRIDMAP_DATABASE_URL."
    )


def _free_port(start: int) -> int:
    for port in range(start, start + 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise ClusterError(f"no free TCP port on 127.0.0.1 between {start} and {start + 199}")


@dataclass(frozen=True)
class Cluster:
    """Control of the embedded cluster rooted at ``home`` (``.gridmap/``)."""

    home: Path
    account: str = "postgres"

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).resolve())

    @property
    def data_dir(self) -> Path:
        return self.home / "pg"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def state_file(self) -> Path:
        return self.home / "cluster.json"

    # -- state -------------------------------------------------------------------------------
    def state(self) -> dict:
        if not self.state_file.exists():
            raise ClusterError(f"no embedded cluster at {self.home}: run `gridmap db up` (or `make setup`) first")
        return json.loads(self.state_file.read_text())

    def url(self, database: str = DATABASE) -> str:
        state = self.state()
        return f"postgresql+psycopg://{ROLE}:{state['password']}@127.0.0.1:{state['port']}/{database}"

    def status(self) -> str:
        """Return ``absent``, ``stopped`` or ``running``."""
        if not (self.data_dir / "PG_VERSION").exists():
            return "absent"
        result = self._run([str(postgres_bindir() / "pg_ctl"), "-D", str(self.data_dir), "status"], check=False)
        return "running" if result.returncode == 0 else "stopped"

    # -- running as the unprivileged account ----------------------------------------------------
    def _as_account(self) -> bool:
        return os.geteuid() == 0

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        if self._as_account():
            argv = ["runuser", "-u", self.account, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, cwd="/")
        if check and result.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}".rstrip())
        return result

    def _give_to_account(self, *paths: Path) -> None:
        if not self._as_account():
            return
        try:
            entry = pwd.getpwnam(self.account)
        except KeyError:
            raise ClusterError(
                f"running as root, but the account {self.account!r} that should run PostgreSQL does not exist; "
                "install PostgreSQL (it creates 'postgres') or set GRIDMAP_CLUSTER_ACCOUNT"
            ) from None
        for path in paths:
            for root, _dirs, files in os.walk(path):
                os.chown(root, entry.pw_uid, entry.pw_gid)
                for name in files:
                    os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        self._check_reachable()

    def _check_reachable(self) -> None:
        if not self._as_account():
            return
        probe = subprocess.run(["runuser", "-u", self.account, "--", "test", "-w", str(self.home)])
        if probe.returncode != 0:
            raise ClusterError(
                f"the account {self.account!r} cannot reach {self.home}: make its parent folders traversable "
                f"(e.g. chmod o+x on each) or set GRIDMAP_HOME to a folder it can reach"
            )

    # -- life cycle -------------------------------------------------------------------------------
    def init(self) -> None:
        """Create the cluster (once): initdb, a generated password, loopback-only configuration."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        bindir = postgres_bindir()
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.data_dir.exists():  # a half-made cluster from an interrupted run
            shutil.rmtree(self.data_dir)
        password = secrets.token_urlsafe(18)
        pwfile = self.home / "initdb.pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        self.data_dir.mkdir(mode=0o700)
        self._give_to_account(self.home)
        try:
            self._run(
                [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", ROLE, f"--pwfile={pwfile}",
                 "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        port = _free_port(FIRST_PORT)
        conf = (
            "\n# gridmap embedded cluster\n"
            f"port = {port}\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "shared_buffers = 256MB\n"
            "work_mem = 32MB\n"
            "maintenance_work_mem = 256MB\n"
            "max_connections = 100\n"
            "jit = off\n"
        )
        with open(self.data_dir / "postgresql.conf", "a") as handle:
            handle.write(conf)
        self.state_file.write_text(json.dumps({"port": port, "password": password}, indent=2))
        self.state_file.chmod(0o600)

    def start(self) -> None:
        if self.status() == "running":
            return
        port = self.state()["port"]
        if _free_port(port) != port:
            raise ClusterError(
                f"port {port} of the embedded cluster is taken by another program; stop it, or remove "
                f"{self.home} to create a new cluster on a free port"
            )
        self._check_reachable()
        # a commit returns only once its WAL is on disk (PostgreSQL's default): a report the API has
        # acknowledged survives a crash of the machine. Given on the command line because clusters made
        # before this line turned it off in their postgresql.conf.
        self._run(
            [str(postgres_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
             "-o", "-c synchronous_commit=on", "-w", "-t", "60", "start"]
        )

    def stop(self) -> None:
        if self.status() != "running":
            return
        self._run([str(postgres_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])

    def up(self) -> str:
        """Create if needed, start, make sure the ``gridmap`` database with PostGIS exists; return its URL."""
        self.init()
        self.start()
        ensure_database(self.url())
        return self.url()


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` (and its PostGIS extension) if missing."""
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(url)
    params = dict(host=target.host, port=target.port, user=target.username, password=target.password)
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{target.database}"')
    with psycopg.connect(dbname=target.database, autocommit=True, **params) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
