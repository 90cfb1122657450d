"""Personal data shown to those who do not need it in full: masked phone numbers.

A list of conversations or citizens shows ``+86138****5678``: enough to tell
two people apart and to confirm a number read out on the phone, not enough to
call or text them. The full number is shown where the person handles the case
(the conversation an agent works on, the ticket a department handles, audited)
and written to no log (:class:`MaskingFilter`).
"""

from __future__ import annotations

import logging
import re
from typing import overload

# E.164 numbers, and Chinese mobile numbers as people write them (13800000000, 138 0000 0000);
# not dates, times or ticket numbers (20261127-0042)
_NUMBERS = re.compile(
    r"(?<![0-9\-])(\+[1-9][0-9]{6,14}|1[3-9][0-9](?:[ \-]?[0-9]{4}){2})(?![0-9\-])"
)


@overload
def mask_phone(value: str) -> str: ...
@overload
def mask_phone(value: None) -> None: ...
@overload
def mask_phone(value: str | None) -> str | None: ...
def mask_phone(value: str | None) -> str | None:
    """``+8613812345678`` -> ``+86138****5678``; addresses that are no phone number (a
    Telegram id, a web session) keep only their last four characters."""
    if value is None:
        return None
    text = value.strip()
    if ":" in text:  # web:<session hash>, whatsapp:+86...
        kind, _, rest = text.partition(":")
        return f"{kind}:{mask_phone(rest)}"
    digits = re.sub(r"[^0-9]", "", text)
    if len(digits) < 7:
        return "****" if text else text
    if text.startswith("+"):
        head = "+" + digits[: min(5, len(digits) - 6)]
    else:
        head = digits[: min(3, len(digits) - 6)]
    return head + "****" + digits[-4:]


def mask_numbers(text: str) -> str:
    """Every phone number in a free text masked (for logs)."""
    return _NUMBERS.sub(lambda m: mask_phone(m.group(1)) or "", text)


class MaskingFilter(logging.Filter):
    """Masks phone numbers in every log record that passes a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_numbers(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_masking() -> None:
    """Put :class:`MaskingFilter` on every handler of the root logger (call after setup)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
