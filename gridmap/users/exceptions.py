"""Errors of logging in and of permissions (mapped to 401 / 403 / 422 / 429 by the API)."""


class NotAuthenticated(Exception):
    """No valid token, or a wrong name or password."""


class TooManyAttempts(Exception):
    """Too many failed log-ins for a user name or from one address: refused for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(Exception):
    """The user's role (or department, or duty grids) does not allow this."""


class BadUser(ValueError):
    """A user cannot be created as asked (unknown role, missing department, …)."""
