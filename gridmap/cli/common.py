"""Shared pieces of the ``gridmap`` commands: consoles, errors, the one-transaction session, reports.

Each command opens one transaction: it commits when the command succeeds and rolls back when it fails,
so a failed import leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from gridmap.config import Settings, load_settings
from gridmap.db.cluster import Cluster, ClusterError
from gridmap.db.engine import database_url, make_engine, make_session_factory, unit_of_work
from gridmap.io.report import ImportReport

console = Console()
err = Console(stderr=True)
REJECTS_SHOWN = 30


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def cluster_of(settings: Settings) -> Cluster:
    return Cluster(settings.database.home, settings.database.cluster_account)


@contextmanager
def transaction() -> Iterator[Session]:
    """One session and transaction for a command: commit on success, roll back on any failure."""
    settings = load_settings()
    try:
        engine = make_engine(database_url(settings.database))
    except ClusterError as error:
        raise fail(str(error)) from None
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def shown(path: str) -> str:
    """Return ``path`` relative to the working directory when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def print_notes_and_rejects(notes: list[str], lines: list[str]) -> None:
    """An import's notes, then its first rejected rows (``FILE, row N, field F: reason``)."""
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    for line in lines[:REJECTS_SHOWN]:
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    if len(lines) > REJECTS_SHOWN:
        console.print(f"  … and {len(lines) - REJECTS_SHOWN:,} more (--rejects FILE lists them all)")


def print_report(report: ImportReport, *, file: Path | None = None) -> None:
    console.print(f"[bold]import {report.layer}[/] ← {shown(report.file)}", highlight=False)
    table = Table(show_header=False, box=None, padding=(0, 2))
    for label, value in report.summary().items():
        table.add_row(label, f"{value:,}")
    console.print(table)
    lines = report.lines()
    print_notes_and_rejects(report.notes, lines)
    if file:
        file.write_text("\n".join(lines) + "\n", encoding="utf-8")


def print_summary(reports: list[ImportReport]) -> None:
    """One line per import: what went in and what did not."""
    table = Table("layer", "file", *(label for label in reports[0].summary()), title="imports")
    for report in reports:
        table.add_row(report.layer, Path(report.file).name, *(f"{v:,}" for v in report.summary().values()))
    console.print(table)
