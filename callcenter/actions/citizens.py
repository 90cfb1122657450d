"""Citizens and their identities on the channels."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import bindparam, delete, select, update

from callcenter.actions import audit
from callcenter.domain.workflow import Actor
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.queries import insert_ignore, insert_row
from callcenter.store.tables import citizen_identities, citizens, conversations, surveys, tickets

# the identities the core itself knows citizens by (calls, notices by SMS); each channel
# declares its own (Channel.identity_kind: telegram, web...), so a new one edits no core file
CORE_IDENTITY_KINDS = frozenset({"phone"})
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]{2,}")


def guess_locale(text: str, default: str) -> str:
    """Chinese characters mean zh-CN; Latin words and no Chinese mean en."""
    if _CJK.search(text):
        return "zh-CN"
    if _LATIN.search(text):
        return "en"
    return default


_BY_IDENTITY = (
    select(citizens)
    .join(citizen_identities, citizen_identities.c.citizen_id == citizens.c.id)
    .where(
        citizen_identities.c.kind == bindparam("kind"),
        citizen_identities.c.value == bindparam("value"),
    )
)


async def find_citizen(tx: Tx, kind: str, value: str) -> Any:
    return (await tx.execute(_BY_IDENTITY, {"kind": kind, "value": value})).first()


async def find_or_create_citizen(
    tx: Tx,
    rt: Runtime,
    *,
    kind: str,
    value: str,
    actor: Actor,
    name: str | None = None,
    locale: str | None = None,
) -> tuple[Any, bool]:
    """The citizen with this identity, created if new. Returns (row, created)."""
    if kind not in CORE_IDENTITY_KINDS and kind not in rt.channels.identity_kinds():
        raise ValueError(f"no channel knows citizens by {kind!r} identities")
    found = await find_citizen(tx, kind, value)
    if found is not None:
        return found, False
    now = tx.state["now"]
    values = {
        "name": name,
        "phone": value if kind == "phone" else None,
        "locale": rt.catalog.locale_or_default(locale),
        "created_at": now,
    }
    citizen = await insert_row(tx, citizens, values)
    citizen_id = citizen.id
    await insert_ignore(
        tx,
        citizen_identities,
        {"citizen_id": citizen_id, "kind": kind, "value": value, "created_at": now},
        conflict=("kind", "value"),
    )
    await audit.record(
        tx,
        actor=actor,
        entity_type="citizen",
        entity_id=citizen_id,
        action="citizen.create",
        after={**values, "identity": {kind: value}},
    )
    return citizen, True


async def link_identity(
    tx: Tx, rt: Runtime, citizen: Any, kind: str, value: str, *, actor: Actor
) -> Any:
    """Give ``citizen`` another identity (e.g. the phone number a Telegram user shared).

    When that identity already belongs to someone else, the two are one person:
    the citizen who held it first is kept, and everything of the other one
    (identities, conversations, tickets, surveys) moves to them. Returns the
    citizen that remains.
    """
    owner = await find_citizen(tx, kind, value)
    now = tx.state["now"]
    if owner is not None and owner.id == citizen.id:
        return citizen
    if owner is None:
        await insert_ignore(
            tx,
            citizen_identities,
            {"citizen_id": citizen.id, "kind": kind, "value": value, "created_at": now},
            conflict=("kind", "value"),
        )
        if kind == "phone" and not citizen.phone:
            await tx.execute(
                update(citizens).where(citizens.c.id == citizen.id).values(phone=value)
            )
        await audit.record(
            tx,
            actor=actor,
            entity_type="citizen",
            entity_id=citizen.id,
            action="citizen.link",
            after={"identity": {kind: value}},
        )
        return (await tx.execute(select(citizens).where(citizens.c.id == citizen.id))).one()
    keep, drop = owner, citizen
    moved: dict[str, int] = {}
    for table in (citizen_identities, conversations, tickets, surveys):
        result = await tx.execute(
            update(table).where(table.c.citizen_id == drop.id).values(citizen_id=keep.id)
        )
        moved[table.name] = int(result.rowcount or 0)
    if drop.name and not keep.name:
        await tx.execute(update(citizens).where(citizens.c.id == keep.id).values(name=drop.name))
    await tx.execute(delete(citizens).where(citizens.c.id == drop.id))
    await audit.record(
        tx,
        actor=actor,
        entity_type="citizen",
        entity_id=keep.id,
        action="citizen.merge",
        before={"citizen_id": drop.id},
        after={"citizen_id": keep.id, "moved": moved},
        details={"identity": {kind: value}},
    )
    return (await tx.execute(select(citizens).where(citizens.c.id == keep.id))).one()


async def set_locale(tx: Tx, rt: Runtime, citizen: Any, locale: str, *, actor: Actor) -> None:
    """The language a citizen is written to, on every channel."""
    chosen = rt.catalog.normalize(locale)
    await tx.execute(
        update(conversations)
        .where(conversations.c.citizen_id == citizen.id, conversations.c.locale != chosen)
        .values(locale=chosen)
    )
    if chosen == citizen.locale:
        return
    await tx.execute(update(citizens).where(citizens.c.id == citizen.id).values(locale=chosen))
    await audit.record(
        tx,
        actor=actor,
        entity_type="citizen",
        entity_id=citizen.id,
        action="citizen.locale",
        before={"locale": citizen.locale},
        after={"locale": chosen},
    )


MAX_NAME = 100


async def update_contact(
    rt: Runtime,
    citizen_id: int,
    *,
    actor: Actor,
    name: str | None = None,
    phone: str | None = None,
) -> Any:
    """A citizen's name and call-back number, as they gave them (not a verified identity:
    the number is stored on the citizen, not as a phone identity that would merge them
    with whoever owns it)."""
    from callcenter.domain.errors import InvalidInput, NotFound
    from callcenter.domain.phone import normalize_phone

    values: dict[str, Any] = {}
    if name is not None:
        cleaned = name.replace("\x00", "").strip()
        if len(cleaned) > MAX_NAME:
            raise InvalidInput("field_too_long", field="name", limit=MAX_NAME)
        if cleaned:
            values["name"] = cleaned
    if phone is not None and phone.strip():
        values["phone"] = normalize_phone(phone, rt.settings.default_region)
    async with rt.transaction() as tx:
        row = (await tx.execute(select(citizens).where(citizens.c.id == citizen_id))).first()
        if row is None:
            raise NotFound("citizen_not_found", id=citizen_id)
        changed = {k: v for k, v in values.items() if getattr(row, k) != v}
        if changed:
            await tx.execute(citizens.update().where(citizens.c.id == citizen_id).values(**changed))
            await audit.record(
                tx,
                actor=actor,
                entity_type="citizen",
                entity_id=citizen_id,
                action="citizen.update",
                before={k: getattr(row, k) for k in changed},
                after=changed,
            )
        return (await tx.execute(select(citizens).where(citizens.c.id == citizen_id))).one()
