"""Request dependencies: one session per request (committed when the request succeeds) and the user
behind the bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from anyio import CancelScope, CapacityLimiter, Semaphore, to_thread
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.db.engine import unit_of_work
from gridmap.users.exceptions import NotAuthenticated
from gridmap.users.service import BearerToken, CurrentUser, user_for_token

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_session(request: Request) -> AsyncIterator[Session]:
    # A request holds its connection from its first query to the commit, across several trips through the
    # thread pool (user, route, response): were more requests to hold connections than there are threads,
    # each side would wait for the other until the pool times out. A slot per session, taken on the event
    # loop before any of that and as many as the threads, keeps them from waiting on each other.
    state = request.app.state
    async with session_slot(state):
        work = unit_of_work(state.session_factory)
        session = work.__enter__()  # no I/O yet (the connection is taken at the first query): no thread needed
        try:
            yield session
        except BaseException as error:
            with CancelScope(shield=True):
                await to_thread.run_sync(work.__exit__, type(error), error, error.__traceback__,
                                         limiter=state.session_ends)
            raise
        if session.in_transaction() or session.new or session.dirty or session.deleted:
            with CancelScope(shield=True):
                await to_thread.run_sync(work.__exit__, None, None, None, limiter=state.session_ends)  # commit
        else:  # committed by the route (in its own trip through the thread pool), or never used: no I/O left
            work.__exit__(None, None, None)


def session_slot(state) -> Semaphore:
    """The slot a request takes before it first uses a session (see :func:`get_session`)."""
    if getattr(state, "session_slots", None) is None:
        # taken without a trip through the event loop when one is free (anyio's default yields to the loop at
        # each acquire: for a report, ≈ 2 % of the server's CPU)
        state.session_slots = Semaphore(state.settings.api.concurrency, fast_acquire=True)
        state.session_ends = CapacityLimiter(state.settings.api.concurrency)  # never waits for a route's thread
    return state.session_slots


#: committed before the response goes out: a client told 201 can count on the case being there
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_settings(request: Request) -> Settings:  # async: no trip through the thread pool for this
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


#: the browser pages' session cookie (set at log-in): it authenticates reads only (GET), so that map tiles
#: and photos load in <img>/fetch without headers, while every change needs the bearer token — a forged
#: cross-site form cannot act with the cookie alone
SESSION_COOKIE = "gridmap_session"


def get_user(request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2)]) -> CurrentUser:
    if not token and request.method in ("GET", "HEAD"):
        token = request.cookies.get(SESSION_COOKIE)
    return authenticate(session, token)


def bearer_token(request: Request) -> str | None:
    """The request's bearer token (``Authorization: Bearer …``), as the ``oauth2`` dependency reads it."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    return token if scheme.lower() == "bearer" else None


def authenticate(session: Session, token: str | None) -> CurrentUser:
    """The user of a bearer token (a database query: call it in a worker thread)."""
    return user_for_token(session=session, token=given(token).token)


def given(token: str | None) -> BearerToken:
    """A bearer token that was sent, for a service that checks it itself (with its own first statements)."""
    if not token:
        raise NotAuthenticated("log in first: POST /api/v1/auth/token, then send 'Authorization: Bearer <token>'")
    return BearerToken(token)


UserDep = Annotated[CurrentUser, Depends(get_user)]


def get_page_user(request: Request, session: SessionDep) -> CurrentUser | None:
    """The user of a page request's session cookie, or None (pages show a log-in screen instead of a 401)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return user_for_token(session=session, token=token)
    except NotAuthenticated:
        return None


PageUserDep = Annotated[CurrentUser | None, Depends(get_page_user)]
