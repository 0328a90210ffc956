"""Charge point credentials for OCPP Security Profiles 1 and 2 (HTTP Basic, over TLS for 2).

Passwords are stored as scrypt hashes. A verified (id, password) pair is remembered in memory
as a keyed digest, so a reconnect storm does not pay scrypt for every charger again. A password
shown for an unknown id is checked against a dummy hash of the same cost, so the time taken to
refuse does not tell which ids exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from functools import cache

_N, _R, _P = 2**14, 8, 1
_CACHE_KEY = secrets.token_bytes(32)


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("password too short (at least 8 characters)")
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


@cache
def dummy_hash() -> str:
    """Made once per process (the collector makes it at start, so no refusal pays for it)."""
    return hash_password(secrets.token_urlsafe(16))


def verify_unknown(password: str) -> bool:
    """What checking a password costs for a known id, for an id that is not known: always False."""
    verify_password(password, dummy_hash())
    return False


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an Authorization header, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class VerifiedCache:
    """Remembers pairs that verified against a given stored hash."""

    def __init__(self) -> None:
        self._seen: dict[str, bytes] = {}

    @staticmethod
    def _key(password: str, stored: str) -> bytes:
        return hmac.digest(_CACHE_KEY, f"{password}\0{stored}".encode(), "sha256")

    def known(self, charge_point_id: str, password: str, stored: str) -> bool:
        """True when this pair verified before: a keyed digest, no scrypt."""
        key = self._key(password, stored)
        return hmac.compare_digest(self._seen.get(charge_point_id, b""), key)

    def verify(self, charge_point_id: str, password: str, stored: str) -> bool:
        if self.known(charge_point_id, password, stored):
            return True
        if verify_password(password, stored):
            self._seen[charge_point_id] = self._key(password, stored)
            return True
        return False
