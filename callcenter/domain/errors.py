"""Errors the core raises, each with an HTTP status and a translatable message.

The message itself lives in the catalogs (``errors.<code>`` in
``callcenter/i18n/*.json``); an error carries only its code and parameters, so
that the API can answer in the caller's language.
"""

from __future__ import annotations

from typing import Any


class HotlineError(Exception):
    """Base of every error a person may be shown."""

    status = 400
    default_code = "bad_request"

    def __init__(self, code: str | None = None, /, **params: Any) -> None:
        self.code = code or self.default_code
        self.params = params
        super().__init__(f"{self.code}: {params}" if params else self.code)


class InvalidInput(HotlineError):
    """The request is malformed or a value is out of range (400)."""

    status = 400
    default_code = "invalid_input"


class Unauthenticated(HotlineError):
    """No valid credentials (401)."""

    status = 401
    default_code = "unauthenticated"


class Forbidden(HotlineError):
    """The actor may not do this (403)."""

    status = 403
    default_code = "forbidden"


class NotFound(HotlineError):
    """No such thing, or not visible to this actor (404)."""

    status = 404
    default_code = "not_found"


class Conflict(HotlineError):
    """The request is valid but clashes with the current state (409)."""

    status = 409
    default_code = "conflict"


class IllegalStep(Conflict):
    """A workflow step that the ticket's current state does not allow."""

    default_code = "illegal_step"

    def __init__(self, *, state: str, step: str) -> None:
        super().__init__("illegal_step", state=state, step=step)


class VersionConflict(Conflict):
    """Someone else changed the ticket since the caller read it."""

    default_code = "version_conflict"

    def __init__(self, *, expected: int, actual: int) -> None:
        super().__init__("version_conflict", expected=expected, actual=actual)


class RateLimited(HotlineError):
    """Too many attempts in a short time (429); the answer says when to try again."""

    status = 429
    default_code = "rate_limited"


class PayloadTooLarge(HotlineError):
    """The request's body is over the endpoint's limit (413); nothing of it was used."""

    status = 413
    default_code = "body_too_large"


class RequestTimeout(HotlineError):
    """The request's body did not arrive in time (408); nothing of it was used."""

    status = 408
    default_code = "body_timeout"
