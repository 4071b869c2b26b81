"""Signed session cookies and CSRF tokens (HMAC-SHA256 with the settings' secret key). Standard library only.

- Session cookies: ``base64(json).hmac`` over the payload.
- CSRF: HMAC of the session's nonce (or of a pre-login cookie), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

from app.services.passwords import b64, unb64


def _mac(secret: str, message: str) -> str:
    return b64(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest())


def sign(secret: str, payload: dict) -> str:
    body = b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, 'session|' + body)}"


def unsign(secret: str, token: str | None, max_age_s: int) -> dict | None:
    """The payload of a token made by `sign`, or None when it is forged, malformed or older than max_age_s."""
    if not token or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(secret, "session|" + body)):
        return None
    try:
        payload = json.loads(unb64(body))
    except ValueError:
        return None
    if not isinstance(payload, dict) or time.time() - float(payload.get("iat", 0)) > max_age_s:
        return None
    return payload


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def csrf_token_for(secret: str, nonce: str) -> str:
    return _mac(secret, "csrf|" + nonce)


def csrf_matches(secret: str, nonce: str | None, token: str | None) -> bool:
    return bool(nonce and token) and hmac.compare_digest(csrf_token_for(secret, nonce), token)
