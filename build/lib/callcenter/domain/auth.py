"""Credentials that are pure computation."""

from __future__ import annotations

import hashlib


def token_hash(token: str) -> str:
    """API tokens are long random strings, so a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
