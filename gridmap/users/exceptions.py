"""Errors of logging in and of permissions (mapped to 401 / 403 / 422 by the API)."""


class NotAuthenticated(Exception):
    """No valid token, or a wrong name or password."""


class Forbidden(Exception):
    """The user's role (or department, or duty grids) does not allow this."""


class BadUser(ValueError):
    """A user cannot be created as asked (unknown role, missing department, …)."""
