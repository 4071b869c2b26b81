"""Passwords and API keys. Standard library only.

- Passwords: hashlib.scrypt with a per-user 16-byte salt, compared in constant time.
- API keys: ``fbk_<random>``; only their SHA-256 is stored (they are long random secrets, so a fast hash suffices).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
API_KEY_PREFIX = "fbk_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


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
        expected = unb64(digest)
        actual = hashlib.scrypt(password.encode(), salt=unb64(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_api_key() -> tuple[str, str, str]:
    """(the token shown once, its prefix for display, its SHA-256 hex for storage)."""
    token = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return token, token[:10], api_key_hash(token)


def token_hash(token: str) -> str:
    """SHA-256 hex of a long random token (API key or session): what the database keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


api_key_hash = token_hash

