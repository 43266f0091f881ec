"""Log in (OAuth2 password form) and say who you are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import SESSION_COOKIE, SessionDep, UserDep, bearer_token
from gridmap.users.service import TOKEN_LIFETIME, CurrentUser, issue_token, revoke_token

router = APIRouter(tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    name: str


@router.post("/auth/token")
def log_in(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, request: Request,
           response: Response) -> Token:
    """Exchange a user name and password for a bearer token (also set as the pages' session cookie).

    Too many failed log-ins for a name, or from one address, are answered 429 for a while (Retry-After)."""
    token, user = issue_token(session=session, name=form.username, password=form.password,
                              client=request.client.host if request.client else None)
    lifetime = int(TOKEN_LIFETIME.total_seconds())
    response.set_cookie(SESSION_COOKIE, token, max_age=lifetime, httponly=True, samesite="strict")
    return Token(access_token=token, expires_in=lifetime, role=user.role, name=user.name)


@router.post("/auth/logout", status_code=204)
def log_out(session: SessionDep, user: UserDep, request: Request, response: Response) -> None:
    """End this session: the token stops working and the cookie is cleared."""
    revoke_token(session=session, token=bearer_token(request) or "")
    response.delete_cookie(SESSION_COOKIE)


@router.get("/users/me")
def who_am_i(user: UserDep) -> CurrentUser:
    """The logged-in user: name, role, department."""
    return user
