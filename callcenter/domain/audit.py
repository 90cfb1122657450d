"""The tamper-evident audit chain.

Every audit event carries ``hash = sha256(prev_hash + canonical JSON of its
content)``. Changing, removing or reordering any stored event breaks the link
of that event or the next one, and :func:`first_broken_link` finds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

import orjson

GENESIS_HASH = "0" * 64

CONTENT_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_role",
    "actor_name",
    "entity_type",
    "entity_id",
    "action",
    "before",
    "after",
    "details",
)


_PLAIN = frozenset({str, int, float, bool})


def jsonable(value: Any) -> Any:
    """Turn a value into plain JSON data, the same way every time."""
    if value is None or type(value) in _PLAIN:  # most values: nothing to do
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def canonical(content: Mapping[str, Any]) -> bytes:
    data = {name: jsonable(content.get(name)) for name in CONTENT_FIELDS}
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(content)).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    # "hash": content changed; "prev": chain cut or reordered; "gap": an event is missing;
    # "truncated": events after this one were removed
    reason: str


class ChainVerifier:
    """Checks events one at a time, in ``seq`` order, so a long log needs no memory."""

    def __init__(self) -> None:
        self.prev_hash = GENESIS_HASH
        self.expected_seq = 1
        self.checked = 0

    def feed(self, event: Mapping[str, Any]) -> BrokenLink | None:
        seq = int(event["seq"])
        if seq != self.expected_seq:
            return BrokenLink(self.expected_seq, "gap")
        if event["prev_hash"] != self.prev_hash:
            return BrokenLink(seq, "prev")
        if chain_hash(self.prev_hash, event) != event["hash"]:
            return BrokenLink(seq, "hash")
        self.prev_hash = event["hash"]
        self.expected_seq += 1
        self.checked += 1
        return None


def first_broken_link(events: Iterable[Mapping[str, Any]]) -> BrokenLink | None:
    """Walk events in ``seq`` order and return the first that does not link up."""
    verifier = ChainVerifier()
    for event in events:
        broken = verifier.feed(event)
        if broken is not None:
            return broken
    return None
