"""One error family for everything a user can cause.

Code in any layer raises a :class:`FeatureboardError` subclass with a human message that names the bad value
and what would be accepted. One handler (app/http/errors.py) turns it into ``error.html`` (or, when the error
carries the page the user was on, that page with the message, so a typed text is never lost) or JSON
``{"detail": ...}``; the CLI (app/cli) prints the message and exits 2. Nothing translates errors by hand.
"""

from __future__ import annotations

from typing import Any


class FeatureboardError(Exception):
    """``status`` is the HTTP status; ``detail`` replaces the message in JSON when a client needs structure;
    ``page`` is the data of the page to show again with the message (a form keeps what was typed);
    ``extra`` adds keys beside ``detail`` in JSON; ``headers`` go on the HTTP response."""

    status = 400
    title = "Bad request"

    def __init__(self, message: str, *, detail: Any = None, page: Any = None, extra: dict | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.page = page
        self.extra = extra or {}
        self.headers = dict(headers or {})

    def json_body(self) -> dict:
        return {"detail": self.detail if self.detail is not None else self.message, **self.extra}


class Invalid(FeatureboardError):
    """A value that cannot be used (422). ``errors`` lists FastAPI-style ``{"loc", "msg", "type"}`` per field."""

    status = 422
    title = "Cannot use that input"

    def __init__(self, message: str, *, errors: list[dict] | None = None, **kw):
        super().__init__(message, **kw)
        self.errors = errors or []
        if self.errors and self.detail is None:
            self.detail = self.errors

    def by_field(self) -> dict[str, str]:
        """{"prompt": msg, "features.0.strength": msg} for a form (the first message per field)."""
        out: dict[str, str] = {}
        for e in self.errors:
            key = ".".join(str(p) for p in e["loc"] if p != "body") or "request"
            out.setdefault(key, e["msg"])
        return out


class BadRequest(Invalid):
    """A query parameter outside what a page accepts (400)."""

    status = 400
    title = "Bad request"


class TooLarge(Invalid):
    """A text or request over a size limit (413); the message names the limit and its setting."""

    status = 413
    title = "Too large"


class NotFound(FeatureboardError):
    status = 404
    title = "Not found"


class LoginRequired(FeatureboardError):
    """No account (401): browsers are sent to the login page, JSON clients are told how to authenticate."""

    status = 401
    title = "Log in first"

    def __init__(self, message: str = "Log in first.", **kw):
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class WrongCredentials(FeatureboardError):
    """A login that failed (401); the same message whether or not the account exists."""

    status = 401
    title = "Wrong username or password"


class Forbidden(FeatureboardError):
    status = 403
    title = "Not allowed"


class Conflict(FeatureboardError):
    """A stale edit (409): carries the record as it is now and what the user sent, so nothing typed is lost."""

    status = 409
    title = "Someone saved first"

    def __init__(self, message: str, current: dict, yours: dict, **kw):
        super().__init__(message, extra={"current": current, "yours": yours}, **kw)
        self.current = current
        self.yours = yours


class Unavailable(FeatureboardError):
    """A capability that is off on this server (503), e.g. no model loaded for live work."""

    status = 503
    title = "Not available on this server"


class Busy(Unavailable):
    """The model stayed busy past the deadline (503 + Retry-After)."""

    title = "Busy"

    def __init__(self, message: str, retry_after: int, **kw):
        super().__init__(message, **kw)
        self.retry_after = max(1, int(retry_after))
        self.headers.setdefault("Retry-After", str(self.retry_after))


class RateLimited(FeatureboardError):
    status = 429
    title = "Too many requests"

    def __init__(self, message: str, retry_after: float, **kw):
        super().__init__(message, **kw)
        self.retry_after = max(1, round(retry_after))
        self.headers.setdefault("Retry-After", str(self.retry_after))
