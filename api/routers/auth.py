"""Log in (OAuth2 password form) and say who you are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import SessionDep, UserDep
from gridmap.users.service import TOKEN_LIFETIME, CurrentUser, issue_token

router = APIRouter(tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str
    name: str


@router.post("/auth/token")
def log_in(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep) -> Token:
    """Exchange a user name and password for a bearer token."""
    token, user = issue_token(session=session, name=form.username, password=form.password)
    return Token(access_token=token, expires_in=int(TOKEN_LIFETIME.total_seconds()), role=user.role, name=user.name)


@router.get("/users/me")
def who_am_i(user: UserDep) -> CurrentUser:
    """The logged-in user: name, role, department."""
    return user
