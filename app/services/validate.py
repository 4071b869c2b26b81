"""Checks on user text. Text is stored exactly as typed (markup included; templates escape it), within limits.

NUL is refused everywhere because PostgreSQL text cannot hold it; other control characters are kept in labels
and comments but refused in usernames, where they would make look-alike names.
"""

from __future__ import annotations

import re

from app.errors import Invalid

MAX_LABEL = 1000
MAX_DESCRIPTION = 20_000
MAX_COMMENT = 10_000
MAX_LIST_NAME = 200
MAX_NOTES = 20_000
MAX_TAGS, MAX_TAG = 20, 50
MAX_USERNAME = 64
METHOD_RE = re.compile(r"^(human|auto:[A-Za-z0-9_.:/-]{1,60})$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def text_field(value: str | None, field: str, max_len: int, required: bool = False) -> str:
    value = value or ""
    if "\x00" in value:
        raise Invalid(f"{field} contains a NUL character (\\x00), which cannot be stored; remove it.")
    if len(value) > max_len:
        raise Invalid(f"{field} is {len(value)} characters long; at most {max_len} are accepted.")
    if required and not value.strip():
        raise Invalid(f"{field} is empty; type at least one visible character.")
    return value


def tags_field(value) -> list[str]:
    """Tags from a list or a comma-separated string: trimmed, de-duplicated in order, each 1..50 characters."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    tags: list[str] = []
    for raw in items:
        if not isinstance(raw, str):
            raise Invalid(f"tag {raw!r} is not a string.")
        tag = text_field(raw, "tag", MAX_TAG).strip()
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise Invalid(f"{len(tags)} tags given; at most {MAX_TAGS} are accepted.")
    return tags


def method_field(value: str | None) -> str:
    value = value or "human"
    if not METHOD_RE.match(value):
        raise Invalid(f"method {value[:80]!r} is not 'human' or 'auto:<name>' (name: letters, digits, _ . : / -).")
    return value


def username_field(value: str | None) -> str:
    value = value or ""
    if not value or len(value) > MAX_USERNAME:
        raise Invalid(f"username must be 1 to {MAX_USERNAME} characters (got {len(value)}).")
    if CONTROL_RE.search(value):
        raise Invalid("username contains control characters; use visible characters only.")
    if value != value.strip():
        raise Invalid(f"username {value!r} starts or ends with spaces; remove them.")
    return value


MIN_PASSWORD, MAX_PASSWORD = 8, 1024
# Stated on the registration and password forms; password_field enforces exactly this.
PASSWORD_POLICY = (f"{MIN_PASSWORD} to {MAX_PASSWORD} characters, not all spaces, not your username, and not one "
                   "character repeated.")


def password_field(value: str | None, username: str | None = None) -> str:
    value = value or ""
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise Invalid(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long (got {len(value)}).")
    if not value.strip():
        raise Invalid("password is only spaces; the policy is: " + PASSWORD_POLICY)
    if username and value.casefold() == username.casefold():
        raise Invalid("password is the same as the username; the policy is: " + PASSWORD_POLICY)
    if len(set(value)) == 1:
        raise Invalid("password is one character repeated; the policy is: " + PASSWORD_POLICY)
    return value


def vote_field(value) -> int:
    try:
        vote = int(value)
    except (TypeError, ValueError):
        vote = None
    if vote not in (-1, 0, 1):
        raise Invalid(f"vote {value!r} is not 1 (up), -1 (down) or 0 (clear).")
    return vote
