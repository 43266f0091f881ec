"""Errors of logging in and of permissions (mapped to 401 / 403 / 422 / 429 by the API)."""

from gridmap.db.engine import KeepsWork


class NotAuthenticated(Exception):
    """No valid token, or a wrong name or password."""


class LoginFailed(NotAuthenticated, KeepsWork):
    """A wrong name or password: refused, and the failure recorded all the same (it counts towards the
    lock-out, see :func:`gridmap.users.service.issue_token`)."""


class TooManyAttempts(Exception):
    """Too many failed log-ins for a user name or from one address: refused for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(Exception):
    """The user's role (or department, or duty grids) does not allow this."""


class BadUser(ValueError):
    """A user cannot be created as asked (unknown role, missing department, …)."""
