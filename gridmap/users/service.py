"""Users: create them, check passwords, issue and resolve bearer tokens.

Passwords are hashed with scrypt (standard library, memory-hard); tokens are 32 random bytes handed
to the client once and stored as their SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from gridmap.db.engine import driver_connection
from gridmap.departments.models import Department
from gridmap.territory.models import Inspector
from gridmap.users.exceptions import BadUser, LoginFailed, NotAuthenticated, TooManyAttempts
from gridmap.users.models import ROLES, ApiToken, AppUser, LoginFailure

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
TOKEN_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 8
#: failed log-ins allowed within the window, per user name and per client address (a shared office
#: address sees the mistakes of many people)
FAILURE_WINDOW, FAILURES_PER_NAME, FAILURES_PER_CLIENT = timedelta(minutes=15), 5, 30


@dataclass(frozen=True)
class CurrentUser:
    """The logged-in user as the services need them."""

    id: int
    name: str
    role: str
    department_id: int | None = None
    department: str | None = None  # its code
    inspector_id: int | None = None


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return "scrypt${n}${r}${p}$".format(**SCRYPT) + "$".join(base64.b64encode(v).decode() for v in (salt, digest))


def password_matches(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def create_user(*, session: Session, name: str, role: str, password: str, department: str | None = None,
                inspector: str | None = None, display_name: str | None = None, replace: bool = False) -> AppUser:
    """Create (or with ``replace``, update) the user ``name``.

    A ``department`` user is bound to the department with that code; an ``inspector`` user may be bound
    to the inspector with that code (their duty grids are what they see). Raises :class:`BadUser`.
    """
    if role not in ROLES:
        raise BadUser(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise BadUser(f"the password must have at least {MIN_PASSWORD} characters")
    if (role == "department") != (department is not None):
        raise BadUser("a department user needs --department CODE" if role == "department"
                      else "only department users are bound to a department")
    if inspector is not None and role != "inspector":
        raise BadUser("only inspector users are bound to an inspector")
    department_id = _id_of(session, Department, department, "department") if department else None
    inspector_id = _id_of(session, Inspector, inspector, "inspector") if inspector else None
    user = session.scalar(select(AppUser).where(AppUser.name == name))
    if user is not None and not replace:
        raise BadUser(f"user {name!r} exists already")
    user = user or AppUser(name=name)
    user.role, user.department_id, user.inspector_id = role, department_id, inspector_id
    user.display_name, user.password_hash, user.active = display_name, hash_password(password), True
    session.add(user)
    session.flush()
    return user


def _id_of(session: Session, model, code: str, what: str) -> int:
    found = session.scalar(select(model.id).where(model.code == code))
    if found is None:
        raise BadUser(f"no {what} with code {code!r}")
    return found


def issue_token(*, session: Session, name: str, password: str, client: str | None = None) -> tuple[str, AppUser]:
    """Check ``name``/``password`` and return a new bearer token with the user.

    Guessing is slowed down: after :data:`FAILURES_PER_NAME` failed log-ins for a user name (or
    :data:`FAILURES_PER_CLIENT` from one ``client`` address) within :data:`FAILURE_WINDOW`, further attempts
    are refused (:class:`TooManyAttempts`, saying when to try again) without looking at the password,
    until the oldest of them is that old. A failure is raised as :class:`LoginFailed`, which the unit of
    work commits all the same, so that it counts; a success forgets the name's failures."""
    now = datetime.now(timezone.utc)
    _check_attempts(session, name, client, now)
    user = session.scalar(select(AppUser).where(AppUser.name == name, AppUser.active))
    # hash even for an unknown name, so the answer takes as long either way
    stored = user.password_hash if user is not None else hash_password("not a real password")
    if not password_matches(password, stored) or user is None:
        session.add(LoginFailure(user_name=name, client=client, at=now))
        raise LoginFailed("wrong user name or password")  # the unit of work keeps the failure
    # the name's failures are forgotten, and everyone's that no longer count (the table stays small)
    session.execute(delete(LoginFailure).where((LoginFailure.user_name == name)
                                               | (LoginFailure.at <= now - FAILURE_WINDOW)))
    token = secrets.token_urlsafe(32)
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id, ApiToken.expires_at < now))
    session.add(ApiToken(token_hash=_digest(token), user_id=user.id, expires_at=now + TOKEN_LIFETIME))
    session.flush()
    return token, user


def _check_attempts(session: Session, name: str, client: str | None, now: datetime) -> None:
    """Refuse a log-in while the name, or the client address, has too many recent failures."""
    since = now - FAILURE_WINDOW
    for column, value, limit, what in ((LoginFailure.user_name, name, FAILURES_PER_NAME, f"user {name!r}"),
                                       (LoginFailure.client, client, FAILURES_PER_CLIENT, f"address {client}")):
        if value is None:
            continue
        recent = session.scalars(select(LoginFailure.at).where(column == value, LoginFailure.at > since)
                                 .order_by(LoginFailure.at.desc()).limit(limit)).all()
        if len(recent) >= limit:  # free again once the limit-th most recent failure has left the window
            wait = max(1, math.ceil((recent[-1] + FAILURE_WINDOW - now).total_seconds()))
            raise TooManyAttempts(f"too many failed log-ins for {what}: try again in {math.ceil(wait / 60)} "
                                  f"minute(s), or ask an administrator to check the account", wait)


# The user as the services need them (CurrentUser's fields, in order). Every request asks this by token:
# plain SQL built once costs a third of building the ORM query each time, and given to the driver
# (driver_connection) a third of what SQLAlchemy's execution adds to it.
_CURRENT = """SELECT u.id, u.name, u.role, u.department_id, d.code, u.inspector_id
FROM app_user u LEFT JOIN department d ON d.id = u.department_id"""
#: the user a bearer token stands for (parameters ``token_hash`` and ``now``, see :func:`token_query`); a
#: statement acting for the token's user in the same round trip builds on it (as the reports' claim does)
BY_TOKEN = _CURRENT + """ JOIN api_token t ON t.user_id = u.id
WHERE t.token_hash = %(token_hash)s AND t.expires_at > %(now)s AND u.active"""
USER_COLUMNS = len(fields(CurrentUser))  # the columns of a BY_TOKEN row, which a statement built on it may extend
BY_NAME = text(_CURRENT + " WHERE u.name = :name AND u.active")


@dataclass(frozen=True)
class BearerToken:
    """A bearer token not yet resolved to its user: for a service that checks it in the same round trip as its
    own first statements (:func:`token_query`, :func:`token_user`), as the busiest request does."""

    token: str


def user_for_token(*, session: Session, token: str) -> CurrentUser:
    """The user a bearer token belongs to; raises :class:`NotAuthenticated` if unknown or expired."""
    sql, params = token_query(token)
    return token_user(driver_connection(session).execute(sql, params).fetchall())


def token_query(token: str) -> tuple[str, dict]:
    """The statement (driver SQL and parameters: ``token_hash``, ``now``) that reads a token's user."""
    return BY_TOKEN, {"token_hash": _digest(token), "now": datetime.now(timezone.utc)}


def token_user(rows: list[tuple]) -> CurrentUser:
    """The user from the rows of :func:`token_query` (or of a statement whose rows begin with the same
    :data:`USER_COLUMNS`); raises :class:`NotAuthenticated` if there is none."""
    if not rows:
        raise NotAuthenticated("the token is unknown or expired: log in again")
    return CurrentUser(*rows[0][:USER_COLUMNS])


def revoke_token(*, session: Session, token: str) -> None:
    """Make ``token`` stop working (log-out)."""
    session.execute(delete(ApiToken).where(ApiToken.token_hash == _digest(token)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def current_user(*, session: Session, name: str) -> CurrentUser:
    """The user ``name`` as the services need them (for commands and scripts acting as a known user)."""
    row = session.connection().execute(BY_NAME, {"name": name}).one_or_none()
    if row is None:
        raise NotAuthenticated(f"no active user {name!r}")
    return CurrentUser(*row)
