"""Passwords, signed tokens, API keys and CSRF tokens. Standard library only.

- Passwords: hashlib.scrypt with a per-user 16-byte salt, compared in constant time.
- Session cookies: `base64(json).hmac` signed with the settings' secret key (HMAC-SHA256).
- API keys: `fbk_<random>`; only their SHA-256 is stored (they are long random secrets, so a fast hash suffices).
- CSRF: HMAC of the session's nonce (or of a pre-login cookie), compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
API_KEY_PREFIX = "fbk_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`. Without a stored hash a dummy hash is still computed, so a
    missing account and a wrong password take the same time."""
    if not stored:
        hash_password(password)
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _mac(secret: str, message: str) -> str:
    return _b64(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest())


def sign(secret: str, payload: dict) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, 'session|' + body)}"


def unsign(secret: str, token: str | None, max_age_s: int) -> dict | None:
    """The payload of a token made by `sign`, or None when it is forged, malformed or older than max_age_s."""
    if not token or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(secret, "session|" + body)):
        return None
    try:
        payload = json.loads(_unb64(body))
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


def new_api_key() -> tuple[str, str, str]:
    """(the token shown once, its prefix for display, its SHA-256 hex for storage)."""
    token = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return token, token[:10], api_key_hash(token)


def api_key_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
