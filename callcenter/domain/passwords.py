"""Staff passwords: hashed with Argon2id (argon2-cffi, with its recommended parameters),
and the policy a new password must meet.

Hashing is deliberately slow (tens of milliseconds): callers in the server run
it in a thread so the event loop stays free.

The policy follows NIST SP 800-63B rather than composition rules: at least
``MIN_LENGTH`` characters, not the username, and not one of the passwords people
choose most often. That list is zxcvbn's (Dropbox's strength estimator, kept on
PyPI): the 30,000 most frequent passwords of the leaked-password corpora it was
built from, compared without case and with trailing digits and punctuation also
tried (``Password2024!`` is ``password``); and zxcvbn's estimate of how many guesses it
takes, which catches ``12345678901``, ``qazwsxedcrfv`` and the like at any length.
"""

from __future__ import annotations

import functools
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from callcenter.domain.errors import InvalidInput

_hasher = PasswordHasher()
MIN_LENGTH = 10
MAX_LENGTH = 256
_TAIL = re.compile(r"[\d\W_]+$")


@functools.cache
def _dummy() -> str:
    """Verified against when the username is unknown, so that the answer takes as long."""
    return _hasher.hash("not a password of anyone")


@functools.cache
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def is_common(password: str) -> bool:
    lowered = password.lower()
    common = common_passwords()
    if lowered in common:
        return True
    stem = _TAIL.sub("", lowered)
    return len(stem) >= 4 and stem in common


def check_password(password: object, *, username: str | None = None) -> str:
    """The password if the policy allows it; otherwise :class:`InvalidInput` naming why."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise InvalidInput("password_too_short", min=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise InvalidInput("password_too_long", max=MAX_LENGTH)
    if username and username.strip().lower() in password.lower():
        raise InvalidInput("password_has_username")
    if is_common(password) or len(set(password)) < 4:
        raise InvalidInput("password_common")
    if guessable(password, username):
        raise InvalidInput("password_guessable")
    return password


def guessable(password: str, username: str | None = None) -> bool:
    """zxcvbn's estimate below "somewhat guessable" (score 2, about 10^6 guesses):
    sequences, repeats, keyboard walks and dates however long they are."""
    from zxcvbn import zxcvbn

    inputs = [username] if username else []
    return int(zxcvbn(password[:100], user_inputs=inputs)["score"]) < 2


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; never raises for a wrong or malformed hash."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash or _dummy(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
