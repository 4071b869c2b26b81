"""Errors the label logic raises; app/labels/http.py maps them to HTTP statuses and messages."""

from __future__ import annotations


class LabelError(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Invalid(LabelError):
    status = 422


class NotFound(LabelError):
    status = 404


class Forbidden(LabelError):
    status = 403


class Conflict(LabelError):
    """A stale edit: carries the label as it is now and the text the user sent, so nothing typed is lost."""

    status = 409

    def __init__(self, message: str, current: dict, yours: dict):
        super().__init__(message)
        self.current = current
        self.yours = yours
