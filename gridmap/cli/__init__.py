"""The ``gridmap`` command: thin commands over the library's services."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from gridmap.cli.analysis import analysis_app
from gridmap.cli.bulletin import bulletin_command
from gridmap.cli.cases import cases_app
from gridmap.cli.common import console
from gridmap.cli.data import calendar_app, catalogue_app, data_app, demo_app
from gridmap.cli.db import db_app
from gridmap.cli.demo_history import demo_history_command
from gridmap.cli.evaluation import kpi_command
from gridmap.cli.grids import grids_app
from gridmap.cli.scale import scale_app
from gridmap.cli.users import demo_users_command, user_app
from gridmap.config import load_settings

app = typer.Typer(help="gridmap: grid management and field inspection (数字城管).", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(calendar_app, name="calendar")
app.add_typer(grids_app, name="grids")
app.add_typer(user_app, name="user")
app.add_typer(cases_app, name="cases")
app.add_typer(scale_app, name="scale")
demo_app.command("users")(demo_users_command)
demo_app.command("history")(demo_history_command)
app.registered_commands += data_app.registered_commands
app.registered_commands += analysis_app.registered_commands
app.command("bulletin")(bulletin_command)
app.command("kpi")(kpi_command)


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="server processes (default 3; "
                                                "GRIDMAP_WORKERS)")] = None,
) -> None:
    """Serve the API (OpenAPI page at /docs) with a few worker processes until Ctrl-C."""
    settings = load_settings()
    host, port, workers = host or settings.api.host, port or settings.api.port, workers or settings.api.workers
    console.print(f"gridmap at http://{host}:{port}/  (API docs: http://{host}:{port}/docs; "
                  f"inspector's report page: http://{host}:{port}/report)")
    # The server lives in api/, outside the library: run it as its own program (api.serve) in this process.
    argv = [sys.executable, "-m", "api.serve", "--host", host, "--port", str(port), "--workers", str(workers)]
    sys.stdout.flush()
    os.execv(sys.executable, argv)


if __name__ == "__main__":
    app()
