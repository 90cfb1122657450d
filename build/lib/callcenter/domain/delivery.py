"""The delivery status of an outbound message, and why it never moves backwards.

``queued`` (in our outbox) -> ``sent`` (the provider took it) -> one of
``delivered``, ``undelivered``, ``failed``; or ``queued`` -> ``suppressed``
(never sent: the number opted out). Providers report status changes
out of order (a late "sent" callback after "delivered" is common), so a
report for the same provider message only counts when it moves the status
forward; the first final status wins. A report naming another provider
message than the one stored is a new send (a dead job requeued by hand), and
replaces what was there.
"""

from __future__ import annotations

QUEUED = "queued"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
FAILED = "failed"
SUPPRESSED = "suppressed"

RANK = {QUEUED: 0, SENT: 1, DELIVERED: 2, UNDELIVERED: 2, FAILED: 2, SUPPRESSED: 2}
FINAL = frozenset({DELIVERED, UNDELIVERED, FAILED, SUPPRESSED})


def advances(
    current: str, current_provider_id: str | None, new: str, new_provider_id: str | None
) -> bool:
    """Whether a report of ``new`` (for ``new_provider_id``) should replace ``current``."""
    if new not in RANK:
        raise ValueError(f"unknown delivery status {new!r}")
    if new_provider_id is not None and new_provider_id != current_provider_id:
        return True
    return RANK[new] > RANK.get(current, 0)
