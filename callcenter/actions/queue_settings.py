"""ACD queues as an administrator sets them: strategy, overflow target and time, how long
an offer waits, the wrap-up time; a new queue too. Kept in ``queue_settings`` over the
``[acd.queues]`` settings, audited with before and after, and taken up by every
process at its next look (``config_version``): the next distribution uses them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select

from callcenter.actions import audit
from callcenter.actions.directory import directory_changed, require_admin
from callcenter.config import QueueSettings
from callcenter.domain.errors import InvalidInput
from callcenter.domain.workflow import Actor
from callcenter.runtime import Runtime
from callcenter.store.tables import queue_settings

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
STRATEGIES = ("longest_idle", "round_robin", "fewest_contacts")


def checked_queue(
    rt: Runtime, name: str, data: Mapping[str, Any], known: set[str] | None = None
) -> QueueSettings:
    """A queue's settings from a form or a file; ``known``: the queues it may overflow to
    (default: those running now)."""
    queues = known if known is not None else set(rt.settings.acd.queues)
    if not NAME.match(name):
        raise InvalidInput("invalid_field", field="queue")
    if data.get("strategy") not in STRATEGIES:
        raise InvalidInput("invalid_choice", field="strategy", choices=", ".join(STRATEGIES))
    overflow = str(data.get("overflow_to") or "").strip() or None
    if overflow is not None and (overflow == name or overflow not in queues):
        raise InvalidInput(
            "invalid_choice",
            field="overflow_to",
            choices=", ".join(sorted(q for q in queues if q != name)),
        )
    values: dict[str, Any] = {"strategy": data["strategy"], "overflow_to": overflow}
    for field in ("overflow_after_s", "offer_timeout_s", "wrap_up_s"):
        raw = data.get(field)
        if raw not in (None, ""):
            try:
                values[field] = float(raw)
            except (TypeError, ValueError):
                raise InvalidInput("invalid_field", field=field) from None
            if not 0 <= values[field] <= 86400:
                raise InvalidInput("invalid_field", field=field)
    try:
        return QueueSettings(**values)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors() else "queue"
        raise InvalidInput("invalid_field", field=field) from None


async def set_queue(
    rt: Runtime, name: str, data: Mapping[str, Any], *, actor: Actor
) -> QueueSettings:
    """Set (or add) queue ``name``."""
    require_admin(actor)
    queue = checked_queue(rt, name, data)
    before = rt.settings.acd.queues.get(name)
    if before == queue:
        return queue
    async with rt.transaction() as tx:
        await tx.execute(delete(queue_settings).where(queue_settings.c.name == name))
        await tx.execute(
            queue_settings.insert().values(
                name=name, **queue.model_dump(), updated_at=tx.state["now"]
            )
        )
        await audit.record(
            tx,
            actor=actor,
            entity_type="queue",
            entity_id=None,
            action="queue.update",
            before=before.model_dump() if before else None,
            after=queue.model_dump(),
            details={"code": name},
        )
        await directory_changed(tx)
    await rt.reload_directory()
    return queue


async def stored_queues(conn: Any) -> set[str]:
    return {r.name for r in (await conn.execute(select(queue_settings.c.name))).all()}
