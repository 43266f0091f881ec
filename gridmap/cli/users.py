"""User commands: create users; the demo users."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gridmap.cli.common import console, fail, transaction
from gridmap.users.models import ROLES

user_app = typer.Typer(help="Users and roles.", no_args_is_help=True)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Option(help=f"one of: {', '.join(ROLES)}")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="at least 8 characters (asked for when not given)")],
    department: Annotated[str | None, typer.Option(help="department code (department users only)")] = None,
    inspector: Annotated[str | None, typer.Option(help="inspector code: their duty grids (inspectors only)")] = None,
    display_name: Annotated[str | None, typer.Option(help="name shown in the audit trail")] = None,
    replace: Annotated[bool, typer.Option(help="update the user if the name exists")] = False,
) -> None:
    """Create a user with a role (and a department for department users)."""
    from gridmap.users.exceptions import BadUser
    from gridmap.users.service import create_user

    try:
        with transaction() as session:
            create_user(session=session, name=name, role=role, password=password, department=department,
                        inspector=inspector, display_name=display_name, replace=replace)
    except BadUser as error:
        raise fail(str(error)) from None
    console.print(f"user {name!r} ({role}) {'updated' if replace else 'created'}")


def demo_users_command() -> None:
    """Create (or reset) one demo user per role and print their names and passwords."""
    from gridmap.demo.users import demo_users

    with transaction() as session:
        users = demo_users(session=session)
    table = Table(title="demo users (for trying gridmap only: change or remove them for real use)")
    for column in ("user", "password", "role", "bound to"):
        table.add_column(column)
    for user in users:
        table.add_row(user.name, user.password, user.role, user.bound_to or "")
    console.print(table)
