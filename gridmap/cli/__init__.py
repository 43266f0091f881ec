"""The ``gridmap`` command: thin commands over the library's services."""

from __future__ import annotations

from typing import Annotated

import typer

from gridmap.cli.common import console
from gridmap.cli.data import calendar_app, catalogue_app, data_app, demo_app
from gridmap.cli.db import db_app
from gridmap.cli.grids import grids_app
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
demo_app.command("users")(demo_users_command)
app.registered_commands += data_app.registered_commands


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
) -> None:
    """Serve the API (OpenAPI page at /docs)."""
    import uvicorn

    settings = load_settings()
    host, port = host or settings.api.host, port or settings.api.port
    console.print(f"gridmap at http://{host}:{port}/  (API docs: http://{host}:{port}/docs; "
                  f"inspector's report page: http://{host}:{port}/report)")
    # The app lives in api/, outside the library: uvicorn imports it by name.
    uvicorn.run("api.main:app_from_environment", factory=True, host=host, port=port)


if __name__ == "__main__":
    app()
