"""``gridmap db``: the embedded PostGIS cluster, or the database named by GRIDMAP_DATABASE_URL."""

from __future__ import annotations

import typer

from gridmap.cli.common import cluster_of, console, fail, transaction
from gridmap.config import load_settings
from gridmap.db.cluster import ClusterError, ensure_database
from gridmap.db.engine import database_url

db_app = typer.Typer(help="The database: the embedded PostGIS cluster or GRIDMAP_DATABASE_URL.", no_args_is_help=True)


@db_app.command("up")
def db_up() -> None:
    """Create (once) and start the embedded PostGIS cluster under .gridmap/."""
    settings = load_settings()
    try:
        if settings.database.database_url:
            ensure_database(settings.database.database_url)
            console.print("GRIDMAP_DATABASE_URL is set: using that PostGIS, no embedded cluster started.")
            return
        cluster = cluster_of(settings)
        with console.status("starting the embedded PostGIS cluster …"):
            cluster.up()
        console.print(f"embedded PostGIS running on 127.0.0.1:{cluster.state()['port']} ({cluster.home})")
    except ClusterError as error:
        raise fail(str(error)) from None


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster (its data stays in .gridmap/)."""
    settings = load_settings()
    if settings.database.database_url:
        console.print("GRIDMAP_DATABASE_URL is set: there is no embedded cluster to stop.")
        return
    try:
        cluster_of(settings).stop()
    except ClusterError as error:
        raise fail(str(error)) from None
    console.print("embedded PostGIS stopped")


@db_app.command("status")
def db_status() -> None:
    """Say where the database is, whether it runs, its schema revision and what it holds."""
    from gridmap.db.migrate import current
    from gridmap.territory.service import layer_counts

    settings = load_settings()
    if not settings.database.database_url:
        try:
            state = cluster_of(settings).status()
        except ClusterError as error:
            raise fail(str(error)) from None
        console.print(f"embedded cluster at {settings.database.home}: {state}")
        if state != "running":
            raise typer.Exit(1)
    url = database_url(settings.database)
    console.print(f"schema revision: {current(url) or 'none (run gridmap db migrate)'}")
    if current(url):
        with transaction() as session:
            for layer, count in layer_counts(session=session).items():
                console.print(f"  {layer:<12} {count:>8,}")


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring the schema up to date (Alembic)."""
    from gridmap.db.migrate import upgrade

    try:
        url = database_url(load_settings().database)
    except ClusterError as error:
        raise fail(str(error)) from None
    upgrade(url)
    console.print("schema up to date")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use."""
    try:
        typer.echo(database_url(load_settings().database))
    except ClusterError as error:
        raise fail(str(error)) from None
