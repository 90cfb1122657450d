"""The deadlines as an administrator sets them: sign-for, handling per ticket type, the
urgent limits, the longest extension and when the light turns yellow. Kept as one
document in ``sla_policy`` over the ``[sla]`` settings, checked as the settings are,
audited with before and after, and taken up by every process: the next deadline
counts with it (deadlines already set stay as they were promised)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete

from callcenter.actions import audit
from callcenter.actions.directory import directory_changed, require_admin
from callcenter.config import SlaSettings
from callcenter.domain.errors import InvalidInput
from callcenter.domain.workflow import Actor, TicketType
from callcenter.runtime import Runtime
from callcenter.store.tables import sla_policy


def checked_policy(data: Any) -> SlaSettings:
    try:
        policy = SlaSettings.model_validate(data)
    except ValidationError as exc:
        where = [str(p) for p in (exc.errors()[0]["loc"] if exc.errors() else ())]
        raise InvalidInput("invalid_field", field=where[0] if where else "sla") from None
    missing = [t.value for t in TicketType if t.value not in policy.handle]
    if missing:
        raise InvalidInput("missing_field", field=missing[0])
    return policy


async def set_sla_policy(rt: Runtime, data: Any, *, actor: Actor) -> SlaSettings:
    require_admin(actor)
    policy = checked_policy(data)
    before = rt.sla.settings
    if policy == before:
        return policy
    async with rt.transaction() as tx:
        await tx.execute(delete(sla_policy).where(sla_policy.c.id == 1))
        await tx.execute(
            sla_policy.insert().values(
                id=1, policy=policy.model_dump(mode="json"), updated_at=tx.state["now"]
            )
        )
        await audit.record(
            tx,
            actor=actor,
            entity_type="sla",
            entity_id=None,
            action="sla.update",
            before=before.model_dump(mode="json"),
            after=policy.model_dump(mode="json"),
            details={"code": "SLA"},
        )
        await directory_changed(tx)
    await rt.reload_directory()
    return policy
