"""Request dependencies: one session per request (committed when the request succeeds) and the user
behind the bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.db.engine import unit_of_work
from gridmap.users.exceptions import NotAuthenticated
from gridmap.users.service import CurrentUser, user_for_token

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_session(request: Request) -> Iterator[Session]:
    with unit_of_work(request.app.state.session_factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


#: the browser pages' session cookie (set at log-in): it authenticates reads only (GET), so that map tiles
#: and photos load in <img>/fetch without headers, while every change needs the bearer token — a forged
#: cross-site form cannot act with the cookie alone
SESSION_COOKIE = "gridmap_session"


def get_user(request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2)]) -> CurrentUser:
    if not token and request.method in ("GET", "HEAD"):
        token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated("log in first: POST /api/v1/auth/token, then send 'Authorization: Bearer <token>'")
    return user_for_token(session=session, token=token)


UserDep = Annotated[CurrentUser, Depends(get_user)]
