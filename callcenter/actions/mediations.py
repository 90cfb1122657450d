"""Mediation actions: the case on a dispute ticket, invitations, the room, the outcome.

Every write is one transaction with its audit events and outbox jobs
(invitations, reminders, the no-show check, the recording's join, the
agreement document). What must happen on the media server (make the room, add
a participant's token, kick, mute, start or stop recording) is done right after
the commit by :func:`apply_room`, which is idempotent: it makes the room as the
database describes it, so it also rebuilds rooms after a media server restart
(``MediaService.on_up``). See ``docs/mediation.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from sqlalchemy import func, select, update

from callcenter.actions import audit
from callcenter.actions import tickets as ticket_actions
from callcenter.actions.citizens import find_or_create_citizen
from callcenter.actions.conversations import open_conversation
from callcenter.actions.messages import queue_outbound, queue_staff_sms
from callcenter.bus import Event
from callcenter.domain.errors import (
    Conflict,
    Forbidden,
    HotlineError,
    InvalidInput,
    NotFound,
    RateLimited,
)
from callcenter.domain.ids import parse_id
from callcenter.domain.mediation import (
    FINAL_STATES,
    MAX_PARTIES,
    Mediation,
    MediationState,
    MediationStep,
    PartyRole,
    PartyStep,
    Who,
    Window,
    check_party_step,
    is_decline,
    recording_allowed,
)
from callcenter.domain.passwords import hash_password, verify_password
from callcenter.domain.phone import normalize_phone
from callcenter.domain.workflow import SYSTEM, Actor, Role, Step
from callcenter.jobs.outbox import Job, JobOutcome, enqueue, enqueue_many
from callcenter.media.janus import VIDEOROOM, JanusError, JanusUnavailable
from callcenter.media.service import MediaUnavailable
from callcenter.runtime import Runtime
from callcenter.store.db import Reader, Tx
from callcenter.store.queries import insert_row, once, row_by_id
from callcenter.store.records import MediationRecord, mediation_record
from callcenter.store.tables import (
    citizen_identities,
    conversations,
    mediation_parties,
    mediation_recordings,
    mediations,
    mediators,
    tickets,
    users,
)

log = logging.getLogger(__name__)

REMIND = "mediation.remind"
NO_SHOW = "mediation.no_show"
JOIN_RECORDING = "mediation.join_recording"
AGREEMENT = "mediation.agreement"

MEDIATION_CHANGED = "mediation.changed"
DESK = frozenset({Role.AGENT, Role.SUPERVISOR})


# ---------------------------------------------------------------- links and PINs


def link_secret(rt: Runtime) -> bytes:
    """The key that signs the parties' links: the setting, or one made once and kept."""
    given = rt.settings.mediation.link_secret
    if given:
        return given.encode()
    cached = rt.extras.get("mediation_key")
    if cached:
        return bytes(cached)
    path = rt.settings.data_dir / "mediation.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    key = path.read_text().strip().encode()
    rt.extras["mediation_key"] = key
    return key


def _signature(rt: Runtime, party_id: int, nonce: str, purpose: str) -> str:
    mac = hmac.new(link_secret(rt), f"{purpose}:{party_id}:{nonce}".encode(), hashlib.sha256)
    return mac.hexdigest()[:24]


def make_link(rt: Runtime, party_id: int, nonce: str, purpose: str = "join") -> str:
    """``<party>-<nonce>-<signature>``: bound to one party and one invitation (the nonce
    changes when the time does), short enough for an SMS."""
    return f"{party_id}-{nonce}-{_signature(rt, party_id, nonce, purpose)}"


def link_url(rt: Runtime, link: str, purpose: str = "join") -> str:
    base = rt.settings.effective_public_url
    return f"{base}/m/{link}" if purpose == "join" else f"{base}/m/doc/{link}"


class MediaDown(HotlineError):
    """The media server does not answer: the room cannot be opened now (503)."""

    status = 503
    default_code = "media_unavailable"


class LinkRefused(Forbidden):
    """A party's link or PIN does not let them in; ``code`` says why, for the page."""


def read_link(rt: Runtime, link: str, purpose: str = "join") -> tuple[int, str]:
    """(party id, nonce) of a link whose signature is right, or raise ``link_invalid``."""
    parts = link.split("-")
    party_id = parse_id(parts[0]) if len(parts) == 3 and len(link) <= 80 else None
    if party_id is None:
        raise LinkRefused("link_invalid")
    nonce, signature = parts[1], parts[2]
    expected = _signature(rt, party_id, nonce, purpose)
    if not hmac.compare_digest(expected, signature):
        raise LinkRefused("link_invalid")
    return party_id, nonce


def new_pin(rt: Runtime) -> str:
    return f"{rt.random.randrange(10**6):06d}"


def seat_hash(seat: str) -> str:
    return hashlib.sha256(seat.encode()).hexdigest()


def window(rt: Runtime) -> Window:
    s = rt.settings.mediation
    return Window(
        early=timedelta(minutes=s.join_early_minutes), grace=timedelta(minutes=s.grace_minutes)
    )


# ---------------------------------------------------------------- who is acting


async def who_is(tx: Reader, rt: Runtime, actor: Actor, mediation: Any, ticket: Any) -> Who:
    """The actor's part in this mediation, for the workflow table."""
    if actor.role is Role.SYSTEM:
        return Who.SYSTEM
    if actor.id is not None and actor.id == mediation.mediator_id:
        return Who.MEDIATOR
    if actor.role in DESK:
        return Who.DESK
    if actor.role is Role.DEPARTMENT and actor.department_id == ticket.department_id:
        return Who.DEPARTMENT
    raise NotFound("mediation_not_found", mediation=mediation.id)


async def is_mediator(conn: Reader, user_id: int | None) -> bool:
    if user_id is None:
        return False
    row = (await conn.execute(select(mediators).where(mediators.c.user_id == user_id))).first()
    return row is not None and bool(row.active)


async def set_mediator(
    rt: Runtime, user_id: int, *, languages: list[str], active: bool = True, actor: Actor
) -> None:
    """Give (or take) the mediator's role to a staff member, department staff included."""
    if actor.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise Forbidden("step_not_permitted", role=actor.role.value, step="set_mediator")
    for language in languages:
        if language not in ("zh-CN", "en"):
            raise InvalidInput("invalid_choice", field="languages", choices="zh-CN, en")
    async with rt.transaction() as tx:
        user = await row_by_id(tx, users, user_id)
        if user is None or not user.active or user.role == Role.ADMIN.value:
            raise NotFound("user_not_found", user=user_id)
        before = (await tx.execute(select(mediators).where(mediators.c.user_id == user_id))).first()
        values = {"languages": languages or ["zh-CN"], "active": active}
        if before is None:
            await insert_row(
                tx, mediators, {"user_id": user_id, **values, "created_at": tx.state["now"]}
            )
        else:
            await tx.execute(update(mediators).where(mediators.c.user_id == user_id).values(values))
        await audit.record(
            tx,
            actor=actor,
            entity_type="user",
            entity_id=user_id,
            action="mediator.set",
            before=({"languages": before.languages, "active": before.active} if before else None),
            after=values,
        )


# ---------------------------------------------------------------- loading


async def load_mediation(tx: Reader, mediation_id: int) -> Any:
    row = await row_by_id(tx, mediations, mediation_id)
    if row is None:
        raise NotFound("mediation_not_found", mediation=mediation_id)
    return row


async def load_parties(tx: Reader, mediation_id: int) -> list[Any]:
    return list(
        (
            await tx.execute(
                select(mediation_parties)
                .where(mediation_parties.c.mediation_id == mediation_id)
                .order_by(mediation_parties.c.id)
            )
        ).all()
    )


async def _for_staff(
    tx: Reader, rt: Runtime, mediation_id: int, actor: Actor
) -> tuple[Any, Any, Who]:
    mediation = await load_mediation(tx, mediation_id)
    ticket = await row_by_id(tx, tickets, mediation.ticket_id)
    who = await who_is(tx, rt, actor, mediation, ticket)
    return mediation, ticket, who


def _changed(mediation: MediationRecord, action: str, at: datetime) -> Event:
    return Event(
        MEDIATION_CHANGED,
        {
            "mediation_id": mediation["id"],
            "ticket_id": mediation["ticket_id"],
            "state": mediation["state"],
            "action": action,
            "mediator_id": mediation["mediator_id"],
        },
        at,
        scope={"staff_only": True},
    )


# ---------------------------------------------------------------- messages to parties


async def party_conversations(tx: Tx, rt: Runtime, party: Any) -> list[Any]:
    """Where to write to a party: SMS to their phone, and Telegram where they are known."""
    now = tx.state["now"]
    found: list[Any] = []
    if rt.channels.get("sms") is not None:
        existing = (
            await tx.execute(
                select(conversations)
                .where(conversations.c.channel == "sms", conversations.c.address == party.phone)
                .order_by(conversations.c.id.desc())
                .limit(1)
            )
        ).first()
        found.append(
            existing
            or await open_conversation(
                tx,
                {
                    "citizen_id": party.citizen_id,
                    "channel": "sms",
                    "address": party.phone,
                    "service_address": rt.settings.hotline_number,
                    "state": "closed",
                    "kind": "message",
                    "locale": party.locale,
                    "created_at": now,
                    "updated_at": now,
                    "closed_at": now,
                },
                actor=SYSTEM,
            )
        )
    if rt.channels.get("telegram") is not None and party.citizen_id is not None:
        telegram = (
            await tx.execute(
                select(citizen_identities.c.value).where(
                    citizen_identities.c.citizen_id == party.citizen_id,
                    citizen_identities.c.kind == "telegram",
                )
            )
        ).scalar()
        if telegram:
            chat = (
                await tx.execute(
                    select(conversations)
                    .where(
                        conversations.c.channel == "telegram", conversations.c.address == telegram
                    )
                    .order_by(conversations.c.id.desc())
                    .limit(1)
                )
            ).first()
            if chat is not None:
                found.append(chat)
    return found


def _time_params(rt: Runtime, mediation: Any, locale: str) -> dict[str, Any]:
    when = mediation.scheduled_at
    return {
        "time": rt.local_text(when),
        "minutes": mediation.duration_minutes,
        "hotline": rt.settings.hotline_number,
    }


async def tell_party(
    tx: Tx,
    rt: Runtime,
    mediation: Any,
    party: Any,
    key: str,
    *,
    dedupe: str | None = None,
    **params: Any,
) -> int:
    """One templated message to a party on every channel they are reached on."""
    from callcenter.actions.notify import render

    values = {**_time_params(rt, mediation, party.locale), "name": party.name, **params}
    body = render(rt, f"mediation.{key}", party.locale, values)
    dial_in = rt.settings.mediation.dial_in
    if dial_in and key in ("invite", "reinvite"):  # joining by voice needs the PIN
        body += " " + render(rt, "mediation.by_phone", party.locale, {"dial_in": dial_in})
    sent = 0
    for conversation in await party_conversations(tx, rt, party):
        if dedupe and not await once(tx, f"{dedupe}:{conversation.channel}:{party.id}"):
            continue
        await queue_outbound(
            tx,
            rt,
            conversation,
            body,
            actor=SYSTEM,
            kind="notice",
            ticket_id=mediation.ticket_id,
            meta={"mediation_id": mediation.id, "party_id": party.id, "template": key},
        )
        sent += 1
    return sent


async def new_pins(rt: Runtime, mediation_id: int) -> dict[int, tuple[str, str]]:
    """A PIN and its hash for each party, made before the transaction: Argon2 is slow on
    purpose, and the event loop must not wait for it while holding the write lock."""
    async with rt.db.read() as conn:
        ids = [p.id for p in await load_parties(conn, mediation_id)]
    pins = {party_id: new_pin(rt) for party_id in ids}
    hashes = await asyncio.gather(*(asyncio.to_thread(hash_password, p) for p in pins.values()))
    return {party_id: (pin, h) for (party_id, pin), h in zip(pins.items(), hashes, strict=True)}


async def _invite(
    tx: Tx, rt: Runtime, mediation: Any, party: Any, key: str, pin: tuple[str, str] | None
) -> None:
    """A fresh nonce and PIN for the party, and the message that carries them."""
    nonce = secrets.token_hex(8)  # no "-": it separates the link's parts
    if pin is None:  # a party added since the PINs were drawn
        plain = new_pin(rt)
        hashed = hash_password(plain)
    else:
        plain, hashed = pin
    await tx.execute(
        update(mediation_parties)
        .where(mediation_parties.c.id == party.id)
        .values(nonce=nonce, pin_hash=hashed, pin_failures=0, pin_locked_until=None)
    )
    url = link_url(rt, make_link(rt, party.id, nonce))
    await tell_party(tx, rt, mediation, party, key, url=url, pin=plain)


async def _schedule_jobs(tx: Tx, rt: Runtime, mediation: Any) -> None:
    """Reminders before the time and the no-show check after it; keyed by the time, so a
    changed time gets new jobs and the old ones find the time gone and do nothing."""
    at = mediation.scheduled_at
    now = tx.state["now"]
    epoch = int(at.timestamp())
    entries = [
        {
            "kind": REMIND,
            "payload": {"mediation_id": mediation.id, "hours": hours, "at": epoch},
            "key": f"mediation:{mediation.id}:remind:{hours}:{epoch}",
            "run_at": at - timedelta(hours=hours),
            "max_attempts": rt.settings.jobs.max_attempts,
        }
        for hours in rt.settings.mediation.reminder_hours
        if at - timedelta(hours=hours) > now
    ]
    entries.append(
        {
            "kind": NO_SHOW,
            "payload": {"mediation_id": mediation.id, "at": epoch},
            "key": f"mediation:{mediation.id}:no_show:{epoch}",
            "run_at": at + timedelta(minutes=rt.settings.mediation.no_show_minutes),
            "max_attempts": rt.settings.jobs.max_attempts,
        }
    )
    await enqueue_many(tx, entries, now=now)


# ---------------------------------------------------------------- the case


@dataclass
class PartyDraft:
    name: str
    phone: str
    role: str
    locale: str = "zh-CN"


def _check_party(rt: Runtime, draft: PartyDraft) -> PartyDraft:
    name = (draft.name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("invalid_field", field="name")
    phone = normalize_phone(draft.phone or "", rt.settings.default_region)
    if draft.role not in PartyRole.__members__.values():
        raise InvalidInput("invalid_choice", field="role", choices=", ".join(PartyRole))
    locale = rt.catalog.normalize(draft.locale)
    return PartyDraft(name, phone, draft.role, locale)


async def propose_mediation(
    rt: Runtime,
    ticket_ref: int | str,
    *,
    actor: Actor,
    parties: list[PartyDraft],
    mediator_id: int | None = None,
) -> MediationRecord:
    """A mediation on a dispute ticket, with its parties; it is scheduled next."""
    checked = [_check_party(rt, p) for p in parties]
    if len(checked) > MAX_PARTIES:
        raise InvalidInput("mediation_too_many_parties", max=MAX_PARTIES)
    if len({p.phone for p in checked}) != len(checked):
        raise InvalidInput("mediation_duplicate_party")
    async with rt.transaction() as tx:
        now = tx.state["now"]
        ticket = await ticket_actions.load_ticket(tx, ticket_ref, actor=actor)
        if actor.role not in DESK and not (
            actor.role is Role.DEPARTMENT and actor.department_id == ticket.department_id
        ):
            raise Forbidden("step_not_permitted", role=actor.role.value, step="propose")
        category = rt.directory.category_by_id.get(ticket.category_id or -1)
        if category is None or category.code not in rt.settings.mediation.dispute_categories:
            raise InvalidInput("mediation_not_a_dispute")
        if ticket.state in ("closed", "merged", "cancelled"):
            raise Conflict("mediation_ticket_closed", number=ticket.number)
        open_one = (
            await tx.execute(
                select(func.count())
                .select_from(mediations)
                .where(
                    mediations.c.ticket_id == ticket.id,
                    mediations.c.state.in_(
                        [s.value for s in MediationState if s not in FINAL_STATES]
                    ),
                )
            )
        ).scalar()
        if open_one:
            raise Conflict("mediation_exists", number=ticket.number)
        if mediator_id is not None and not await is_mediator(tx, mediator_id):
            raise InvalidInput("mediation_not_a_mediator", user=mediator_id)
        case = Mediation(
            id=None,
            ticket_id=ticket.id,
            state=MediationState.PROPOSED,
            created_at=now,
            mediator_id=mediator_id,
            duration_minutes=rt.settings.mediation.default_minutes,
        )
        values = {**case.snapshot(), "created_by": actor.id, "updated_at": now, "recording": False}
        values.pop("id")
        row = await insert_row(tx, mediations, values)
        for draft in checked:
            citizen, _ = await find_or_create_citizen(
                tx, rt, kind="phone", value=draft.phone, actor=actor, name=draft.name,
                locale=draft.locale,
            )  # fmt: skip
            await insert_row(
                tx,
                mediation_parties,
                {
                    "mediation_id": row.id,
                    "citizen_id": citizen.id,
                    "name": draft.name,
                    "phone": draft.phone,
                    "role": draft.role,
                    "locale": draft.locale,
                    "nonce": secrets.token_hex(8),
                    "pin_hash": "",
                    "pin_failures": 0,
                    "presence": "away",
                    "muted": False,
                    "created_at": now,
                },
            )
        await audit.record(
            tx,
            actor=actor,
            entity_type="mediation",
            entity_id=row.id,
            action="mediation.propose",
            after={
                "ticket_id": ticket.id,
                "mediator_id": mediator_id,
                "parties": [
                    {"name": p.name, "phone": p.phone, "role": p.role, "locale": p.locale}
                    for p in checked
                ],
            },
        )
        tx.publish(_changed(mediation_record(row), "propose", now))
        return mediation_record(row)


async def _step(
    tx: Tx,
    rt: Runtime,
    mediation_id: int,
    step: MediationStep,
    *,
    actor: Actor,
    expected_version: int | None = None,
    **params: Any,
) -> tuple[Any, Any, MediationRecord]:
    """Take one workflow step inside ``tx``; returns (row before, ticket, row after)."""
    now = tx.state["now"]
    row, ticket, who = await _for_staff(tx, rt, mediation_id, actor)
    case = Mediation.from_row(row)
    case.check_version(expected_version)
    parties = await load_parties(tx, mediation_id)
    before = case.snapshot()
    case.take(
        step,
        who=who,
        now=now,
        parties=sum(1 for p in parties if p.declined_at is None),
        window=window(rt),
        **params,
    )
    after = case.snapshot()
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    result = await tx.execute(
        update(mediations)
        .where(mediations.c.id == mediation_id, mediations.c.version == before["version"])
        .values(**changed, updated_at=now)
    )
    if result.rowcount != 1:
        raise Conflict("version_conflict", expected=before["version"], actual=-1)
    await audit.record(
        tx,
        actor=actor,
        entity_type="mediation",
        entity_id=mediation_id,
        action=f"mediation.{step.value}",
        before={k: before.get(k) for k in changed if k != "version"},
        after={k: v for k, v in changed.items() if k != "version"},
        details={"as": who.value, **({"reason": params["reason"]} if "reason" in params else {})},
    )
    new_row = await load_mediation(tx, mediation_id)
    tx.publish(_changed(mediation_record(new_row), step.value, now))
    return row, ticket, mediation_record(new_row)


async def set_mediation_mediator(
    rt: Runtime, mediation_id: int, mediator_id: int, *, actor: Actor
) -> MediationRecord:
    """Name (or change) the mediator while the case is proposed or scheduled."""
    async with rt.transaction() as tx:
        row, _, who = await _for_staff(tx, rt, mediation_id, actor)
        if who not in (Who.DESK, Who.MEDIATOR):
            raise Forbidden("step_not_permitted", role=who.value, step="set_mediator")
        if row.state not in ("proposed", "scheduled"):
            raise Conflict("illegal_step", state=row.state, step="set_mediator")
        if not await is_mediator(tx, mediator_id):
            raise InvalidInput("mediation_not_a_mediator", user=mediator_id)
        await tx.execute(
            update(mediations)
            .where(mediations.c.id == mediation_id)
            .values(mediator_id=mediator_id, version=row.version + 1, updated_at=tx.state["now"])
        )
        await audit.record(
            tx, actor=actor, entity_type="mediation", entity_id=mediation_id,
            action="mediation.set_mediator", before={"mediator_id": row.mediator_id},
            after={"mediator_id": mediator_id},
        )  # fmt: skip
        return mediation_record(await load_mediation(tx, mediation_id))


async def schedule_mediation(
    rt: Runtime,
    mediation_id: int,
    scheduled_at: datetime,
    *,
    actor: Actor,
    duration_minutes: int | None = None,
    expected_version: int | None = None,
) -> MediationRecord:
    """Fix the time; every party is invited (link and PIN) in their language; reminders
    and the no-show check are scheduled. Again on a scheduled case: the time changes,
    old links stop working and everyone who has not declined is invited anew."""
    pins = await new_pins(rt, mediation_id)
    async with rt.transaction() as tx:
        row = await load_mediation(tx, mediation_id)
        step = MediationStep.RESCHEDULE if row.state == "scheduled" else MediationStep.SCHEDULE
        _, _, after = await _step(
            tx, rt, mediation_id, step, actor=actor, expected_version=expected_version,
            scheduled_at=scheduled_at, duration_minutes=duration_minutes,
        )  # fmt: skip
        mediation = await load_mediation(tx, mediation_id)
        key = "invite" if step is MediationStep.SCHEDULE else "reinvite"
        for party in await load_parties(tx, mediation_id):
            if party.declined_at is None:
                await _invite(tx, rt, mediation, party, key, pins.get(party.id))
        await _schedule_jobs(tx, rt, mediation)
        return after


async def cancel_mediation(
    rt: Runtime, mediation_id: int, reason: str, *, actor: Actor
) -> MediationRecord:
    async with rt.transaction() as tx:
        _, _, after = await _step(
            tx, rt, mediation_id, MediationStep.CANCEL, actor=actor, reason=reason
        )
        mediation = await load_mediation(tx, mediation_id)
        if mediation.scheduled_at is not None:
            for party in await load_parties(tx, mediation_id):
                if party.declined_at is None:
                    await tell_party(tx, rt, mediation, party, "cancelled")
    return after


# ---------------------------------------------------------------- the session


async def start_session(rt: Runtime, mediation_id: int, *, actor: Actor) -> MediationRecord:
    """The mediator opens the room: it is made on a media node, parties can be admitted."""
    async with rt.db.read() as conn:  # who and when first: a refusal needs no media
        row, _, who = await _for_staff(conn, rt, mediation_id, actor)
        Mediation.from_row(row).take(
            MediationStep.START, who=who, now=rt.clock.now(), window=window(rt)
        )
    media = rt.media
    if media is None or not media.enabled:
        raise MediaDown()
    try:
        node = await media.place()
    except MediaUnavailable:
        raise MediaDown() from None
    async with rt.transaction() as tx:
        _, _, after = await _step(tx, rt, mediation_id, MediationStep.START, actor=actor)
        await tx.execute(
            update(mediations)
            .where(mediations.c.id == mediation_id)
            .values(
                media_node=node.name,
                room_id=secrets.randbits(52) | 1,
                room_secret=secrets.token_urlsafe(24),
                room_pin=f"{secrets.randbelow(10**8):08d}",
                mediator_token=secrets.token_urlsafe(24),
            )
        )
    await apply_room(rt, mediation_id)
    return after


async def apply_room(rt: Runtime, mediation_id: int) -> None:
    """Make the media server match the database: the room, the allowed tokens, recording.

    Idempotent, and run after every change that touches the room, and for every
    session in progress when a node comes back after a crash.
    """
    async with rt.db.read() as conn:
        m = await row_by_id(conn, mediations, mediation_id)
        parties = await load_parties(conn, mediation_id)
    if m is None or m.room_id is None or rt.media is None:
        return
    node = rt.media.node(m.media_node)
    client = node.client
    if m.state != "in_session":
        await client.destroy_room(m.room_id, secret=m.room_secret)
        for token in [m.mediator_token, *(p.janus_token for p in parties)]:
            if token:
                await client.remove_token(token)
        return
    inside = [p.janus_token for p in parties if p.presence == "in_room" and p.janus_token]
    wanted = [m.mediator_token, *inside]
    if not await client.room_exists(m.room_id):
        await client.create_room(
            m.room_id,
            secret=m.room_secret,
            pin=m.room_pin,
            description=f"mediation {m.id}",
            publishers=MAX_PARTIES + 2,
            allowed=wanted,
            rec_dir=str(recording_dir(rt, m.id)),
            bitrate=rt.settings.mediation.max_video_bitrate,
        )
    else:
        await client.allow(m.room_id, secret=m.room_secret, action="add", tokens=wanted)
    known = set(await client.list_tokens())
    for token in wanted:
        if token not in known:
            await client.add_token(token, [VIDEOROOM])
    for p in parties:
        if p.janus_token and p.presence != "in_room":
            await client.allow(
                m.room_id, secret=m.room_secret, action="remove", tokens=[p.janus_token]
            )
            await client.remove_token(p.janus_token)
    await client.set_recording(m.room_id, secret=m.room_secret, record=bool(m.recording))


def recording_dir(rt: Runtime, mediation_id: int) -> Path:
    assert rt.media is not None
    folder = rt.media.recordings_dir / f"mediation-{mediation_id}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _sync_recording(tx: Tx, rt: Runtime, mediation: Any, *, actor: Actor) -> bool:
    """Record while every party present has said yes (and someone is present)."""
    parties = await load_parties(tx, mediation.id)
    present = [p.consent for p in parties if p.presence == "in_room"]
    wanted = recording_allowed(present) and mediation.state == "in_session"
    if wanted == bool(mediation.recording):
        return wanted
    now = tx.state["now"]
    await tx.execute(
        update(mediations).where(mediations.c.id == mediation.id).values(recording=wanted)
    )
    await audit.record(
        tx,
        actor=actor,
        entity_type="mediation",
        entity_id=mediation.id,
        action="mediation.recording_on" if wanted else "mediation.recording_off",
        details={"present": len(present), "consented": sum(1 for c in present if c)},
    )
    if wanted and not await _recording_row(tx, mediation.id):
        await insert_row(
            tx,
            mediation_recordings,
            {
                "mediation_id": mediation.id,
                "ticket_id": mediation.ticket_id,
                "state": "pending",
                "created_at": now,
                "expires_at": now + timedelta(days=rt.settings.mediation.recording_retention_days),
            },
        )
    return wanted


async def _recording_row(tx: Reader, mediation_id: int) -> Any:
    return (
        await tx.execute(
            select(mediation_recordings).where(mediation_recordings.c.mediation_id == mediation_id)
        )
    ).first()


async def _party_step(
    tx: Tx,
    rt: Runtime,
    party_id: int,
    step: PartyStep,
    *,
    actor: Actor,
    who: Who | None = None,
    values: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """One step about one party: checked against PARTY_STEPS, applied, audited."""
    party = await row_by_id(tx, mediation_parties, party_id)
    if party is None:
        raise NotFound("mediation_party_not_found", party=party_id)
    mediation = await load_mediation(tx, party.mediation_id)
    if who is None:
        ticket = await row_by_id(tx, tickets, mediation.ticket_id)
        who = await who_is(tx, rt, actor, mediation, ticket)
    check_party_step(MediationState(mediation.state), step, who)
    if values:
        await tx.execute(
            update(mediation_parties).where(mediation_parties.c.id == party_id).values(**values)
        )
    await audit.record(
        tx,
        actor=actor,
        entity_type="mediation",
        entity_id=mediation.id,
        action=f"mediation.party.{step.value}",
        before={k: getattr(party, k) for k in (values or {}) if k not in ("seat_hash", "seen_at")},
        after={k: v for k, v in (values or {}).items() if k not in ("seat_hash", "seen_at")},
        details={"party_id": party_id, "as": who.value, **(details or {})},
    )
    tx.publish(_changed(mediation_record(mediation), f"party.{step.value}", tx.state["now"]))
    return await row_by_id(tx, mediation_parties, party_id), mediation


def party_actor(party: Any) -> Actor:
    """A party acts as themselves (their audit rows name them), never as staff."""
    return Actor(
        id=None, role=Role.SYSTEM, name=f"party:{party.id}:{party.name}", locale=party.locale
    )


async def admit_party(rt: Runtime, party_id: int, *, actor: Actor) -> None:
    async with rt.transaction() as tx:
        party = await row_by_id(tx, mediation_parties, party_id)
        if party is None:
            raise NotFound("mediation_party_not_found", party=party_id)
        if party.presence != "waiting":
            raise Conflict("mediation_party_not_waiting", presence=party.presence)
        now = tx.state["now"]
        _, mediation = await _party_step(
            tx, rt, party_id, PartyStep.ADMIT, actor=actor,
            values={
                "presence": "in_room", "admitted_at": now, "joined_at": party.joined_at or now,
                "janus_token": secrets.token_urlsafe(24), "feed_id": secrets.randbits(52) | 1,
                "muted": False,
            },
        )  # fmt: skip
        await _sync_recording(tx, rt, await load_mediation(tx, mediation.id), actor=actor)
    await apply_room(rt, mediation.id)


async def remove_party(rt: Runtime, party_id: int, *, actor: Actor) -> None:
    """Out of the room for the rest of the session; the link no longer lets them in."""
    async with rt.transaction() as tx:
        party, mediation = await _party_step(
            tx, rt, party_id, PartyStep.REMOVE, actor=actor, values={"presence": "removed"}
        )
        await _sync_recording(tx, rt, await load_mediation(tx, mediation.id), actor=actor)
        old_feed = party.feed_id
    await _kick(rt, mediation.id, old_feed)
    await apply_room(rt, mediation.id)


async def _kick(rt: Runtime, mediation_id: int, feed_id: int | None) -> None:
    async with rt.db.read() as conn:
        m = await row_by_id(conn, mediations, mediation_id)
    if feed_id is None or m.room_id is None or rt.media is None:
        return
    try:
        await rt.media.node(m.media_node).client.kick(
            m.room_id, secret=m.room_secret, participant=feed_id
        )
    except JanusError as exc:
        log.info("kick %s in room %s: %s", feed_id, m.room_id, exc)


async def mute_party(rt: Runtime, party_id: int, *, mute: bool, actor: Actor) -> None:
    """The mediator silences (or lets speak again) a party's microphone in the room."""
    async with rt.transaction() as tx:
        party, mediation = await _party_step(
            tx, rt, party_id, PartyStep.MUTE, actor=actor, values={"muted": mute}
        )
    if party.feed_id is None or rt.media is None:
        return
    client = rt.media.node(mediation.media_node).client
    # the room page publishes audio first: its m-line is "0"
    await client.moderate(
        mediation.room_id, secret=mediation.room_secret, participant=party.feed_id, mid="0",
        mute=mute,
    )  # fmt: skip


async def end_session(
    rt: Runtime,
    mediation_id: int,
    outcome: str,
    *,
    actor: Actor,
    agreement_text: str | None = None,
    reply_ticket: bool = True,
) -> MediationRecord:
    """The mediator records the outcome and ends the session: the room goes, the
    recording's tracks are joined by a job, the agreement document is made and sent
    to the parties by a job; with ``reply_ticket`` and a mediator of the ticket's
    department, the ticket is replied (答复) through the ordinary workflow."""
    async with rt.transaction() as tx:
        _, ticket, after = await _step(
            tx, rt, mediation_id, MediationStep.CONCLUDE, actor=actor, outcome=outcome,
            agreement_text=agreement_text,
        )  # fmt: skip
        now = tx.state["now"]
        await tx.execute(
            update(mediations).where(mediations.c.id == mediation_id).values(recording=False)
        )
        await tx.execute(
            update(mediation_parties)
            .where(
                mediation_parties.c.mediation_id == mediation_id,
                mediation_parties.c.presence.in_(["waiting", "in_room"]),
            )
            .values(presence="away")
        )
        if await _recording_row(tx, mediation_id) is not None:
            await enqueue(
                tx, JOIN_RECORDING, {"mediation_id": mediation_id},
                key=f"mediation:{mediation_id}:join", now=now, max_attempts=3,
            )  # fmt: skip
        await enqueue(
            tx, AGREEMENT, {"mediation_id": mediation_id},
            key=f"mediation:{mediation_id}:agreement", now=now, max_attempts=3,
        )  # fmt: skip
        if (
            reply_ticket
            and actor.role is Role.DEPARTMENT
            and ticket.state == "accepted"
            and ticket.department_id == actor.department_id
        ):
            text = rt.text(
                f"mediation.reply_{outcome}", ticket.locale, agreement=agreement_text or ""
            ).strip()
            await ticket_actions.apply_step(tx, rt, ticket.id, Step.REPLY, actor=actor, text=text)
    await apply_room(rt, mediation_id)
    return after


# ---------------------------------------------------------------- the parties' side


@dataclass
class Admission:
    """What a party's page may know: who they are, where the session stands."""

    party: Any
    mediation: Any


async def open_link(rt: Runtime, link: str, *, now: datetime | None = None) -> Admission:
    """Check a party's link: signature, invitation still current, session not over,
    within its time window. Raises :class:`LinkRefused` with the reason."""
    party_id, nonce = read_link(rt, link)
    async with rt.db.read() as conn:
        party = await row_by_id(conn, mediation_parties, party_id)
        mediation = await row_by_id(conn, mediations, party.mediation_id) if party else None
    if party is None or mediation is None:
        raise LinkRefused("link_invalid")
    if not hmac.compare_digest(party.nonce, nonce):
        raise LinkRefused("link_replaced")
    now = now or rt.clock.now()
    if mediation.state in ("concluded", "no_show", "cancelled"):
        raise LinkRefused("session_over")
    if mediation.state == "proposed" or mediation.scheduled_at is None:
        raise LinkRefused("link_invalid")
    w = window(rt)
    if now > w.closes(mediation.scheduled_at, mediation.duration_minutes):
        raise LinkRefused("link_expired")
    if party.declined_at is not None:
        raise LinkRefused("declined")
    if party.presence == "removed":
        raise LinkRefused("removed")
    if now < w.opens(mediation.scheduled_at):
        raise LinkRefused(
            "too_early",
            time=rt.local_text(mediation.scheduled_at),
            opens=rt.local_text(w.opens(mediation.scheduled_at)),
        )
    return Admission(party, mediation)


async def check_pin(rt: Runtime, link: str, pin: str) -> str:
    """A right PIN gives the browser a seat (returned; kept in a cookie); wrong PINs are
    counted per party and lock the link for a while after ``pin_max_failures``. The count
    is committed before the refusal is raised."""
    admission = await open_link(rt, link)
    settings = rt.settings.mediation
    refusal: Exception | None = None
    seat = secrets.token_urlsafe(24)
    cleaned = "".join(ch for ch in (pin or "") if ch.isdigit())[:12]
    checked_hash = admission.party.pin_hash
    right = bool(checked_hash) and await asyncio.to_thread(verify_password, checked_hash, cleaned)
    async with rt.transaction() as tx:
        now = tx.state["now"]
        party = await row_by_id(tx, mediation_parties, admission.party.id)
        live = (
            party.seat_hash is not None
            and party.seen_at is not None
            and now - party.seen_at < timedelta(seconds=settings.seat_timeout_seconds)
            and party.presence in ("waiting", "in_room")
        )
        if party.pin_locked_until is not None and party.pin_locked_until > now:
            refusal = RateLimited(
                "pin_locked",
                retry_after=int((party.pin_locked_until - now).total_seconds()) + 1,
                until=rt.local_text(party.pin_locked_until),
            )
        elif not right or party.pin_hash != checked_hash:  # wrong, or a new PIN meanwhile
            failures = party.pin_failures + 1
            values: dict[str, Any] = {"pin_failures": failures}
            refusal = LinkRefused("pin_wrong", left=max(settings.pin_max_failures - failures, 0))
            if failures >= settings.pin_max_failures:
                until = now + timedelta(minutes=settings.pin_lock_minutes)
                values = {"pin_failures": 0, "pin_locked_until": until}
                refusal = RateLimited(
                    "pin_locked",
                    retry_after=int(settings.pin_lock_minutes * 60),
                    until=rt.local_text(until),
                )
            await tx.execute(
                update(mediation_parties).where(mediation_parties.c.id == party.id).values(values)
            )
            await audit.record(
                tx, actor=party_actor(party), entity_type="mediation",
                entity_id=party.mediation_id, action="mediation.party.wrong_pin",
                details={"party_id": party.id, "failures": failures},
            )  # fmt: skip
        elif live:
            refusal = LinkRefused("seat_taken")
        else:
            await tx.execute(
                update(mediation_parties)
                .where(mediation_parties.c.id == party.id)
                .values(seat_hash=seat_hash(seat), seen_at=now, pin_failures=0)
            )
            await audit.record(
                tx, actor=party_actor(party), entity_type="mediation",
                entity_id=party.mediation_id, action="mediation.party.pin_ok",
                details={"party_id": party.id},
            )  # fmt: skip
    if refusal is not None:
        raise refusal
    return seat


async def seated(rt: Runtime, link: str, seat: str | None) -> Admission:
    """The party behind a link whose browser holds the seat (after the PIN)."""
    admission = await open_link(rt, link)
    if not seat or admission.party.seat_hash != seat_hash(seat):
        raise LinkRefused("pin_needed")
    return admission


async def enter_waiting_room(rt: Runtime, link: str, seat: str, *, consent: bool) -> None:
    """The party answered the consent question and waits for the mediator to admit them."""
    admission = await seated(rt, link, seat)
    party = admission.party
    async with rt.transaction() as tx:
        now = tx.state["now"]
        await _party_step(
            tx, rt, party.id, PartyStep.CONSENT, actor=party_actor(party), who=Who.PARTY,
            values={"consent": consent, "consent_at": now},
        )  # fmt: skip
        if party.presence != "in_room":
            await _party_step(
                tx, rt, party.id, PartyStep.ENTER, actor=party_actor(party), who=Who.PARTY,
                values={"presence": "waiting", "seen_at": now},
            )  # fmt: skip
        await _sync_recording(tx, rt, admission.mediation, actor=party_actor(party))
    await apply_room(rt, party.mediation_id)


class RoomJoin(TypedDict):
    """What a party's page needs to join the room on the media server."""

    server: str
    token: str
    room: int | None
    pin: str | None
    feed: int | None
    display: str


class SeatState(TypedDict):
    """What a party's page shows, answered to its poll."""

    state: str
    presence: str
    consent: bool | None
    recording: bool
    muted: bool
    media_up: bool
    janus: NotRequired[RoomJoin]


async def heartbeat(rt: Runtime, link: str, seat: str) -> SeatState:
    """The page's poll: keeps the seat, and says what the page should show."""
    admission = await seated(rt, link, seat)
    party = admission.party
    async with rt.transaction() as tx:
        await tx.execute(
            update(mediation_parties)
            .where(mediation_parties.c.id == party.id)
            .values(seen_at=tx.state["now"])
        )
    m = admission.mediation
    state: SeatState = {
        "state": m.state,
        "presence": party.presence,
        "consent": party.consent,
        "recording": bool(m.recording),
        "muted": bool(party.muted),
        "media_up": bool(rt.media and rt.media.healthy),
    }
    if party.presence == "in_room" and m.state == "in_session" and party.janus_token:
        state["janus"] = {
            "server": f"/media/janus/{m.media_node}",
            "token": party.janus_token,
            "room": m.room_id,
            "pin": m.room_pin,
            "feed": party.feed_id,
            "display": party.name,
        }
    return state


async def rejoin(rt: Runtime, link: str, seat: str) -> None:
    """After a network drop: the old feed is removed and a new one given, same place."""
    admission = await seated(rt, link, seat)
    party = admission.party
    if party.presence != "in_room":
        return
    async with rt.transaction() as tx:
        await tx.execute(
            update(mediation_parties)
            .where(mediation_parties.c.id == party.id)
            .values(feed_id=secrets.randbits(52) | 1, seen_at=tx.state["now"])
        )
        await audit.record(
            tx, actor=party_actor(party), entity_type="mediation", entity_id=party.mediation_id,
            action="mediation.party.rejoin", details={"party_id": party.id},
        )  # fmt: skip
    await _kick(rt, party.mediation_id, party.feed_id)
    await apply_room(rt, party.mediation_id)


async def leave(rt: Runtime, link: str, seat: str) -> None:
    admission = await seated(rt, link, seat)
    party = admission.party
    async with rt.transaction() as tx:
        await _party_step(
            tx, rt, party.id, PartyStep.LEAVE, actor=party_actor(party), who=Who.PARTY,
            values={"presence": "away", "seat_hash": None},
        )  # fmt: skip
        await _sync_recording(tx, rt, admission.mediation, actor=party_actor(party))
    await _kick(rt, party.mediation_id, party.feed_id)
    await apply_room(rt, party.mediation_id)


# ---------------------------------------------------------------- by telephone


@dataclass
class PhoneParty:
    """A caller recognised as a party by their number: their link (what the web page
    would be given), their name and language."""

    link: str
    name: str
    locale: str


async def phone_party(rt: Runtime, caller: str | None) -> PhoneParty | None:
    """The party calling from ``caller``, in the session that is open now or comes next
    (scheduled or in session, not declined or removed); None for a number of no party.
    The PIN is still needed: the number only says which invitation to check it against."""
    try:
        phone = normalize_phone(caller or "", rt.settings.default_region)
    except InvalidInput:
        return None
    async with rt.db.read() as conn:
        rows = (
            await conn.execute(
                select(mediation_parties, mediations.c.scheduled_at)
                .join(mediations, mediations.c.id == mediation_parties.c.mediation_id)
                .where(
                    mediation_parties.c.phone == phone,
                    mediation_parties.c.declined_at.is_(None),
                    mediation_parties.c.presence != "removed",
                    mediation_parties.c.nonce.is_not(None),
                    mediations.c.state.in_(["scheduled", "in_session"]),
                )
            )
        ).all()
    if not rows:
        return None
    now = rt.clock.now()
    party = min(rows, key=lambda r: abs((r.scheduled_at - now).total_seconds()))
    return PhoneParty(make_link(rt, party.id, party.nonce), party.name, party.locale)


async def open_phone_bridge(rt: Runtime, link: str, seat: str, display: str) -> Any:
    """The admitted caller into the room's audio: a :class:`PhoneBridge` (its ``close``
    takes them out again), or None while they are not (or no longer) in the room."""
    from callcenter.media.phonebridge import PhoneBridge

    admission = await seated(rt, link, seat)
    party, m = admission.party, admission.mediation
    if party.presence != "in_room" or m.state != "in_session" or rt.media is None:
        return None
    client = rt.media.node(m.media_node).client
    bridge = PhoneBridge(
        client, m.room_id, m.room_secret, party.feed_id, display,
        recordings=recording_dir(rt, m.id), local_ip=rt.settings.media.bridge_ip,
    )  # fmt: skip
    await bridge.open()
    async with rt.transaction() as tx:
        await audit.record(
            tx, actor=party_actor(party), entity_type="mediation", entity_id=m.id,
            action="mediation.party.phone_in_room", details={"party_id": party.id},
        )  # fmt: skip
    return bridge


async def sweep_presence(rt: Runtime, mediation_id: int) -> None:
    """Parties whose page went silent are away (their place is kept: they may rejoin)."""
    limit = timedelta(seconds=rt.settings.mediation.seat_timeout_seconds)
    now = rt.clock.now()
    async with rt.db.read() as conn:
        stale = [
            p
            for p in await load_parties(conn, mediation_id)
            if p.presence in ("waiting", "in_room")
            and (p.seen_at is None or now - p.seen_at > limit)
        ]
    if not stale:
        return
    async with rt.transaction() as tx:
        for p in stale:
            await _party_step(
                tx, rt, p.id, PartyStep.LEAVE, actor=SYSTEM, who=Who.SYSTEM,
                values={"presence": "away"},
                details={"silent_since": p.seen_at.isoformat() if p.seen_at else None},
            )  # fmt: skip
        await _sync_recording(tx, rt, await load_mediation(tx, mediation_id), actor=SYSTEM)
    await apply_room(rt, mediation_id)


async def decline_from_text(
    tx: Tx, rt: Runtime, citizen_id: int, conversation: Any, body: str
) -> bool:
    """An answer to an invitation that says no: the party is marked declined and the
    mediator is told. Returns True when the text was taken so."""
    if not is_decline(body):
        return False
    party = (
        await tx.execute(
            select(mediation_parties, mediations.c.mediator_id, mediations.c.state.label("m_state"))
            .join(mediations, mediations.c.id == mediation_parties.c.mediation_id)
            .where(
                mediation_parties.c.citizen_id == citizen_id,
                mediation_parties.c.declined_at.is_(None),
                mediations.c.state.in_(["proposed", "scheduled"]),
            )
            .order_by(mediations.c.scheduled_at)
            .limit(1)
        )
    ).first()
    if party is None:
        return False
    now = tx.state["now"]
    _, mediation = await _party_step(
        tx, rt, party.id, PartyStep.DECLINE, actor=party_actor(party), who=Who.PARTY,
        values={"declined_at": now, "decline_text": body[:500]},
    )  # fmt: skip
    await tell_party(tx, rt, mediation, party, "declined_ack")
    mediator = await row_by_id(tx, users, mediation.mediator_id) if mediation.mediator_id else None
    if mediator is not None and mediator.phone:
        ticket = await row_by_id(tx, tickets, mediation.ticket_id)
        text = rt.text(
            "mediation.declined_staff", mediator.locale, name=party.name, number=ticket.number,
            reply=body[:200], time=rt.local_text(mediation.scheduled_at),
        )  # fmt: skip
        await queue_staff_sms(
            tx, rt, mediator.phone, text, actor=SYSTEM, kind="notice", user_id=mediator.id,
            ticket_id=ticket.id,
        )  # fmt: skip
    return True


# ---------------------------------------------------------------- jobs


async def remind(rt: Runtime, job: Job) -> JobOutcome:
    """Job: remind every party who has not declined, if the time is still the same."""
    async with rt.transaction() as tx:
        m = await row_by_id(tx, mediations, int(job.payload["mediation_id"]))
        if m is None or m.state != "scheduled" or m.scheduled_at is None:
            return {"skipped": "not scheduled"}
        if int(m.scheduled_at.timestamp()) != int(job.payload["at"]):
            return {"skipped": "time changed"}
        sent = 0
        for party in await load_parties(tx, m.id):
            if party.declined_at is None:
                url = link_url(rt, make_link(rt, party.id, party.nonce))
                key = "remind_day" if float(job.payload["hours"]) >= 12 else "remind_hour"
                sent += await tell_party(tx, rt, m, party, key, url=url, dedupe=job.key)
        return {"messages": sent}


async def check_no_show(rt: Runtime, job: Job) -> JobOutcome:
    """Job: a session nobody opened by ``no_show_minutes`` after its time is a no-show."""
    async with rt.transaction() as tx:
        m = await row_by_id(tx, mediations, int(job.payload["mediation_id"]))
        if m is None or m.state != "scheduled" or m.scheduled_at is None:
            return {"skipped": "not waiting"}
        if int(m.scheduled_at.timestamp()) != int(job.payload["at"]):
            return {"skipped": "time changed"}
        await _step(tx, rt, m.id, MediationStep.NO_SHOW, actor=SYSTEM)
        return {"no_show": m.id}


def register_jobs(registry: Any) -> None:
    """The mediation's own jobs (the recordings' and the agreement's:
    :func:`callcenter.actions.mediation_files.register_jobs`)."""
    registry.register(REMIND, remind)
    registry.register(NO_SHOW, check_no_show)


async def rebuild_rooms(rt: Runtime, node: Any) -> None:
    """``MediaService.on_up``: the rooms of sessions in progress on a node that came back."""
    async with rt.db.read() as conn:
        ids = (
            (
                await conn.execute(
                    select(mediations.c.id).where(
                        mediations.c.state == "in_session", mediations.c.media_node == node.name
                    )
                )
            )
            .scalars()
            .all()
        )
    for mediation_id in ids:
        try:
            await apply_room(rt, mediation_id)
        except (JanusError, JanusUnavailable, MediaUnavailable):
            log.exception("mediation %s: room not rebuilt", mediation_id)
