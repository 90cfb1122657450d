"""Time-based one-time codes (RFC 6238) for staff sign-in, with pyotp, and the QR code an
authenticator app scans, drawn by segno.

A code is good for its 30-second step and one step either side (a phone's clock a
little off, a code typed as it changed), and only once: the caller keeps the last
step accepted and a code of that step or an earlier one is refused, so a code seen
over someone's shoulder cannot be replayed. Time comes from the injected clock.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import segno

WINDOW = 1  # steps either side of now


def new_secret() -> str:
    return pyotp.random_base32()


def accepted_step(
    secret: str, code: str, now: datetime, *, last_step: int | None = None
) -> int | None:
    """The step ``code`` belongs to if it is good now and newer than ``last_step``."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def code_at(secret: str, when: datetime) -> str:
    """The code an app shows at ``when`` (for tests and the enrolment check)."""
    return pyotp.TOTP(secret).at(when)


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """An SVG QR code as a data: URI (the pages' CSP allows data: images, no script)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))
