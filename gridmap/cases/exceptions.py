"""Errors of the case loop, mapped to HTTP codes in one place (api/errors.py)."""


class CaseNotFound(LookupError):
    """No case with that number (or none the user may see)."""


class InvalidTransition(Exception):
    """The action is not allowed in the case's current state (409), e.g. closing a case not yet checked."""


class StaleCase(Exception):
    """The case changed since the client loaded it (409): someone else acted first."""


class BadCaseInput(ValueError):
    """A report or an action carries unusable data (422); the message names the field."""


class IdempotencyConflict(Exception):
    """An ``Idempotency-Key`` already used for a different request (422)."""
