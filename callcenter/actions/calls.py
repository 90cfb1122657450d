"""Calls: the write paths of the voice front (SIP, Twilio Voice), shared by every transport.

A call is a conversation (``kind="call"``, channel = the adapter's name) plus
one ``calls`` row, unique on ``(channel, provider_call_id)`` (the SIP Call-ID
or Twilio CallSid), so a retried webhook or a repeated INVITE changes nothing.
The IVR reports what happens through these actions: progress (answered, DTMF,
path, language, transcript), a place in the queue, a callback request, a
ticket, a voice message, the end of the call.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from callcenter.actions import audit
from callcenter.actions.agents import require_desk, start_wrap_up
from callcenter.actions.citizens import find_or_create_citizen, set_locale
from callcenter.actions.conversations import (
    load_conversation,
    move_conversation,
    open_conversation,
)
from callcenter.actions.mediations import MediaDown, link_secret
from callcenter.actions.queues import end_entry, enqueue, leave_queue, open_entry, open_entry_of
from callcenter.actions.tickets import TicketDraft, check_draft, open_ticket
from callcenter.bus import events
from callcenter.domain.conversation import ConversationStep, check_step
from callcenter.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from callcenter.domain.phone import is_mobile, normalize_phone
from callcenter.domain.workflow import SYSTEM, Actor, Role
from callcenter.media.janus import SIP, JanusError, JanusUnavailable
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.records import TicketRecord, ticket_record
from callcenter.store.tables import calls, citizens, conversations, departments, messages, tickets

log = logging.getLogger(__name__)

MAX_DTMF = 200
MAX_TRANSCRIPT = 4000
VOICE_ORIGIN = "voice"


@dataclass(frozen=True)
class CallStart:
    """A call as the transport sees it when it arrives."""

    channel: str
    provider_call_id: str
    caller: str | None  # the caller id as signalled (number, SIP user, "anonymous")
    called: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class CallInfo:
    call_id: int
    conversation_id: int
    citizen_id: int
    caller: str  # E.164 when the caller id parses, else the raw caller id
    known_caller: bool  # the citizen had contacted the hotline before
    mobile: bool
    locale: str
    duplicate: bool


def caller_identity(rt: Runtime, raw: str | None) -> tuple[str, bool]:
    """(identity value, parsed): E.164 when the caller id is a number, else the raw text."""
    text = (raw or "").strip()
    if text.lower().startswith(("sip:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0]
    try:
        return normalize_phone(text, rt.settings.default_region), True
    except InvalidInput:
        return (text or "anonymous")[:200], False


async def _call_row(tx: Tx, call_id: int) -> Any:
    row = (await tx.execute(select(calls).where(calls.c.id == call_id))).first()
    if row is None:
        raise NotFound("call_not_found", id=call_id)
    return row


async def _update_call(tx: Tx, row: Any, *, actor: Actor, **values: Any) -> None:
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if not changed:
        return
    await tx.execute(update(calls).where(calls.c.id == row.id).values(**changed))
    await audit.record(
        tx,
        actor=actor,
        entity_type="call",
        entity_id=row.id,
        action="call.update",
        before={k: getattr(row, k) for k in changed},
        after=changed,
    )


def _info(row: Any, conversation: Any, citizen_created: bool, duplicate: bool) -> CallInfo:
    return CallInfo(
        call_id=row.id,
        conversation_id=conversation.id,
        citizen_id=conversation.citizen_id,
        caller=conversation.address,
        known_caller=not citizen_created,
        mobile=is_mobile(conversation.address),
        locale=conversation.locale,
        duplicate=duplicate,
    )


async def start_call(rt: Runtime, start: CallStart, *, actor: Actor = SYSTEM) -> CallInfo:
    """A call arrived: its citizen, its conversation and its ``calls`` row. Idempotent."""
    if not start.provider_call_id or len(start.provider_call_id) > 200:
        raise InvalidInput("invalid_field", field="provider_call_id")
    async with rt.transaction() as tx:
        seen = (
            await tx.execute(
                select(calls).where(
                    calls.c.channel == start.channel,
                    calls.c.provider_call_id == start.provider_call_id,
                )
            )
        ).first()
        if seen is not None:
            conversation = await load_conversation(tx, seen.conversation_id)
            earlier = (
                await tx.execute(
                    select(conversations.c.id)
                    .where(
                        conversations.c.citizen_id == conversation.citizen_id,
                        conversations.c.id < conversation.id,
                    )
                    .limit(1)
                )
            ).first()
            return _info(seen, conversation, earlier is None, True)
        now = tx.state["now"]
        address, _ = caller_identity(rt, start.caller)
        citizen, created = await find_or_create_citizen(
            tx, rt, kind="phone", value=address, actor=actor, locale=start.locale
        )
        values = {
            "citizen_id": citizen.id,
            "channel": start.channel,
            "address": address,
            "service_address": (start.called or rt.settings.hotline_number)[:200],
            "state": "bot",
            "kind": "call",
            "locale": rt.catalog.locale_or_default(start.locale or citizen.locale),
            "created_at": now,
            "updated_at": now,
            "last_message_at": now,
        }
        conversation_id = (await open_conversation(tx, values, actor=actor)).id
        call = {
            "conversation_id": conversation_id,
            "channel": start.channel,
            "provider_call_id": start.provider_call_id,
            "from_number": (start.caller or "")[:64] or None,
            "to_number": (start.called or "")[:64] or None,
            "started_at": now,
            "dtmf": "",
            "path": [],
        }
        call_id = (await tx.execute(calls.insert().values(**call))).inserted_primary_key[0]
        await audit.record(
            tx, actor=actor, entity_type="call", entity_id=call_id, action="call.start", after=call
        )
        conversation = await load_conversation(tx, conversation_id)
        tx.publish(events.conversation_changed(conversation._asdict(), now))
        row = await _call_row(tx, call_id)
        return _info(row, conversation, created, False)


async def record_call_progress(
    rt: Runtime,
    call_id: int,
    *,
    answered: bool = False,
    dtmf: str | None = None,
    path: list[str] | None = None,
    locale: str | None = None,
    transcript: str | None = None,
    confidence: float | None = None,
    recording_path: str | None = None,
    recording_seconds: float | None = None,
    actor: Actor = SYSTEM,
) -> None:
    """Store how far the caller got: answer time, keys pressed, IVR nodes, language, speech."""
    async with rt.transaction() as tx:
        row = await _call_row(tx, call_id)
        now = tx.state["now"]
        values: dict[str, Any] = {}
        if answered and row.answered_at is None:
            values["answered_at"] = now
        if dtmf is not None:
            values["dtmf"] = dtmf[-MAX_DTMF:]
        if path is not None:
            values["path"] = list(path)
        if transcript is not None:
            values["transcript"] = transcript[:MAX_TRANSCRIPT]
        if confidence is not None:
            values["confidence"] = float(confidence)
        if recording_path is not None:
            values["recording_path"] = recording_path[:400]
        if recording_seconds is not None:
            values["recording_seconds"] = float(recording_seconds)
        await _update_call(tx, row, actor=actor, **values)
        if locale is not None:
            chosen = rt.catalog.normalize(locale)
            conversation = await load_conversation(tx, row.conversation_id)
            if conversation.locale != chosen:
                citizen = (
                    await tx.execute(
                        select(citizens).where(citizens.c.id == conversation.citizen_id)
                    )
                ).one()
                await set_locale(tx, rt, citizen, chosen, actor=actor)


async def _add_transcript_message(
    tx: Tx, conversation: Any, body: str, *, kind: str, actor: Actor, meta: dict[str, Any]
) -> int:
    now = tx.state["now"]
    message = {
        "conversation_id": conversation.id,
        "channel": conversation.channel,
        "direction": "in",
        "body": body,
        "status": "received",
        "kind": kind,
        "essential": True,
        "meta": meta,
        "created_at": now,
    }
    message_id = (await tx.execute(messages.insert().values(**message))).inserted_primary_key[0]
    await audit.record(
        tx,
        actor=actor,
        entity_type="message",
        entity_id=message_id,
        action="message.receive",
        after={"conversation_id": conversation.id, "kind": kind, "body": body},
    )
    tx.publish(events.message_created({"id": message_id, **message}, conversation._asdict(), now))
    return int(message_id)


async def enqueue_call(
    rt: Runtime, call_id: int, *, queue: str | None = None, actor: Actor = SYSTEM
) -> int:
    """The caller waits for an agent: the conversation is queued. Returns its id.

    What the caller said to the IVR, if anything, is added to the conversation
    so that the agent sees it with the waiting call.
    """
    async with rt.transaction() as tx:
        row = await _call_row(tx, call_id)
        conversation = await load_conversation(tx, row.conversation_id)
        if conversation.state != "bot":
            return int(conversation.id)
        now = tx.state["now"]
        if row.transcript:
            await _add_transcript_message(
                tx,
                conversation,
                row.transcript,
                kind="transcript",
                actor=actor,
                meta={"call_id": row.id, "confidence": row.confidence},
            )
        await enqueue(
            tx, rt, conversation, actor=actor, queue=queue or rt.settings.voice.queue, queued_at=now
        )
        await _update_call(tx, row, actor=actor, queued_at=now, outcome="queued")
        return int(conversation.id)


async def connect_call(tx: Tx, conversation_id: int, *, actor: Actor) -> None:
    """An agent took the call (accepted its offer, picked it, was transferred it): the
    call is answered by a person. The first agent's answer time and the wait are kept;
    the transport sees the conversation assigned and bridges the caller to the agent."""
    row = (
        await tx.execute(select(calls).where(calls.c.conversation_id == conversation_id))
    ).first()
    if row is None or row.ended_at is not None:
        return
    now = tx.state["now"]
    values: dict[str, Any] = {"outcome": "answered"}
    if row.agent_answered_at is None:
        values["agent_answered_at"] = now
        if row.queued_at is not None:
            values["queue_wait_s"] = max(0.0, (now - row.queued_at).total_seconds())
    await _update_call(tx, row, actor=actor, **values)


async def attach_call_recording(
    rt: Runtime, call_id: int, *, path: str, seconds: float, actor: Actor = SYSTEM
) -> int:
    """The recording of a call with an agent (both sides, one file) is kept on the
    conversation as a message, where the desk, the ticket made from the conversation and
    the retention job find it. Returns the message id."""
    async with rt.transaction() as tx:
        row = await _call_row(tx, call_id)
        conversation = await load_conversation(tx, row.conversation_id)
        body = rt.text("call.recording_body", conversation.locale, seconds=round(seconds))
        return await _add_transcript_message(
            tx,
            conversation,
            body,
            kind="call_recording",
            actor=actor,
            meta={"call_id": row.id, "recording": path[:400], "seconds": round(seconds, 2)},
        )


async def hold_call(
    rt: Runtime, conversation_id: int, *, on_hold: bool, actor: Actor
) -> dict[str, Any]:
    """The agent puts the caller on hold (they hear music, the agent hears nothing) or
    takes them back. Only the agent who holds the call (or a supervisor)."""
    require_desk(actor)
    async with rt.transaction() as tx:
        conversation = await load_conversation(tx, conversation_id)
        check_step(
            conversation.state, ConversationStep.WRITE, actor=actor, agent_id=conversation.agent_id
        )
        row = (
            await tx.execute(select(calls).where(calls.c.conversation_id == conversation_id))
        ).first()
        if row is None or row.ended_at is not None or conversation.state != "assigned":
            raise Conflict("call_not_connected", id=conversation_id)
        now = tx.state["now"]
        if on_hold and row.held_at is None:
            await _update_call(tx, row, actor=actor, held_at=now)
        elif not on_hold and row.held_at is not None:
            held = (now - row.held_at).total_seconds()
            await _update_call(tx, row, actor=actor, held_at=None, hold_s=(row.hold_s or 0) + held)
        tx.publish(events.conversation_changed(conversation._asdict(), now))
        return dict((await _call_row(tx, row.id))._asdict())


async def hang_up_call(rt: Runtime, conversation_id: int, *, actor: Actor) -> None:
    """The agent hangs up from the desk: the call is ``completed`` (the transport ends the
    caller's leg; a leg that drops without this is a lost agent, see :func:`agent_lost`)."""
    require_desk(actor)
    async with rt.transaction() as tx:
        conversation = await load_conversation(tx, conversation_id)
        check_step(
            conversation.state, ConversationStep.END, actor=actor, agent_id=conversation.agent_id
        )
        row = (
            await tx.execute(select(calls).where(calls.c.conversation_id == conversation_id))
        ).first()
        if row is None or row.ended_at is not None:
            return
        await _update_call(tx, row, actor=actor, outcome="completed")
        tx.publish(events.conversation_changed(conversation._asdict(), tx.state["now"]))


async def agent_lost(rt: Runtime, call_id: int, *, actor: Actor = SYSTEM) -> bool:
    """The agent's leg of a connected call dropped (a closed browser, a lost network, a
    leg that never came) while the caller is still on the line: the caller waits again,
    in their place. Returns whether the call went back to the queue."""
    async with rt.transaction() as tx:
        row = await _call_row(tx, call_id)
        conversation = await load_conversation(tx, row.conversation_id)
        if row.ended_at is not None or conversation.state != "assigned":
            return False
        entry = await open_entry_of(tx, conversation.id)
        queued_at = entry.queued_at if entry is not None else row.queued_at
        queue = entry.queue if entry is not None else conversation.queue
        if entry is not None:
            await end_entry(tx, entry.id, "agent_lost")
            await start_wrap_up(tx, rt, entry.agent_id, entry.queue, actor=actor)
        await enqueue(
            tx,
            rt,
            conversation,
            actor=actor,
            queue=queue or rt.settings.voice.queue,
            queued_at=queued_at,
            step=ConversationStep.AGENT_LOST,
            agent_id=None,
        )
        await _update_call(tx, row, actor=actor, outcome="queued", held_at=None)
        return True


def hold_music_seconds(rt: Runtime) -> float:
    """How long the music between two queue announcements plays (whole seconds)."""
    return float(max(1, round(rt.settings.voice.hold_announce_seconds)))


def leg_user(rt: Runtime, conversation_id: int, agent_id: int, kind: str = "agent") -> str:
    """The SIP user a softphone calls to reach this call: ``<kind>-<conversation>-<staff>-
    <signature>``, signed with the hotline's link key, so only the desk the hotline gave
    it to can use it. ``agent``: the agent who took the call, bridged both ways;
    ``listen``: a supervisor who hears both sides and is not heard."""
    mac = hmac.new(
        link_secret(rt), f"call-leg:{kind}:{conversation_id}:{agent_id}".encode(), hashlib.sha256
    )
    return f"{kind}-{conversation_id}-{agent_id}-{mac.hexdigest()[:24]}"


def agent_leg_uri(rt: Runtime, user: str) -> str:
    """The SIP URI an agent's leg calls (``voice.agent_sip``, else the sip channel's)."""
    template = rt.settings.voice.agent_sip
    if not template:
        sip = rt.settings.channel_options.get("sip", {})
        template = f"sip:{{user}}@{sip.get('host', '127.0.0.1')}:{sip.get('port', 5060)}"
    return template.format(user=user)


async def open_softphone(
    rt: Runtime, conversation_id: int, *, actor: Actor, listen: bool = False
) -> dict[str, Any]:
    """What the agent's softphone needs to bridge itself to the call it took: a Janus node
    (through the hotline's relay), a token for Janus's SIP plugin, and the signed URI of
    the call's agent leg. Only for the agent who holds the call. ``listen``: a supervisor
    listens in (hears both sides, is not heard), audited."""
    require_desk(actor)
    assert actor.id is not None
    if listen and actor.role is not Role.SUPERVISOR:
        raise Forbidden("role_not_allowed", role=actor.role.value)
    async with rt.db.read() as conn:
        conversation = (
            await conn.execute(select(conversations).where(conversations.c.id == conversation_id))
        ).first()
        row = (
            await conn.execute(select(calls).where(calls.c.conversation_id == conversation_id))
        ).first()
    if conversation is None:
        raise NotFound("conversation_not_found", id=conversation_id)
    if not listen:
        check_step(
            conversation.state, ConversationStep.END, actor=actor, agent_id=conversation.agent_id
        )
    if row is None or row.ended_at is not None or conversation.state != "assigned":
        raise Conflict("call_not_connected", id=conversation_id)
    if rt.media is None or not rt.media.healthy:
        raise MediaDown()
    node = next(n for n in rt.media.nodes.values() if n.up)
    token = secrets.token_urlsafe(24)
    try:
        await node.client.add_token(token, [SIP])
    except JanusUnavailable as exc:
        raise MediaDown() from exc
    tokens = rt.extras.setdefault("softphone_tokens", {})
    tokens.setdefault(conversation_id, []).append((node.name, token))
    if listen:
        user = leg_user(rt, conversation_id, actor.id, "listen")
        async with rt.transaction() as tx:
            await audit.record(
                tx,
                actor=actor,
                entity_type="call",
                entity_id=row.id,
                action="call.listen",
                details={"agent_id": conversation.agent_id},
            )
    else:
        user = leg_user(rt, conversation_id, conversation.agent_id or actor.id)
    return {
        "server": f"/media/janus/{node.name}",
        "token": token,
        "uri": agent_leg_uri(rt, user),
        "identity": f"sip:agent{actor.id}@hotline.invalid",
    }


async def close_softphone(rt: Runtime, conversation_id: int) -> None:
    """The call is over: the Janus tokens its softphones were given are removed."""
    tokens = rt.extras.get("softphone_tokens", {}).pop(conversation_id, [])
    if rt.media is None:
        return
    for node_name, token in tokens:
        node = rt.media.nodes.get(node_name)
        if node is None:
            continue
        try:
            await node.client.remove_token(token)
        except (JanusUnavailable, JanusError):
            log.info("the softphone token of conversation %s was not removed", conversation_id)


LEG_KINDS = ("agent", "listen")


def read_leg_user(rt: Runtime, user: str) -> tuple[str, int, int] | None:
    """(kind, conversation id, staff id) of a leg user :func:`leg_user` made, else None."""
    parts = user.split("-")
    if len(parts) != 4 or parts[0] not in LEG_KINDS:
        return None
    if not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    kind, conversation_id, agent_id = parts[0], int(parts[1]), int(parts[2])
    if not hmac.compare_digest(leg_user(rt, conversation_id, agent_id, kind), user):
        return None
    return kind, conversation_id, agent_id


@dataclass(frozen=True)
class CallLink:
    """What a transport needs to know while a caller waits or talks (read often)."""

    state: str  # the conversation's: queued, assigned, closed...
    agent_id: int | None
    on_hold: bool
    ended: bool
    outcome: str | None  # "completed": the agent hung up from the desk


async def call_link(rt: Runtime, call_id: int) -> CallLink | None:
    """The call's conversation state, agent and hold, in one indexed read."""
    async with rt.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    conversations.c.state,
                    conversations.c.agent_id,
                    calls.c.held_at,
                    calls.c.ended_at,
                    calls.c.outcome,
                )
                .select_from(
                    calls.join(conversations, conversations.c.id == calls.c.conversation_id)
                )
                .where(calls.c.id == call_id)
            )
        ).first()
    if row is None:
        return None
    return CallLink(
        row.state, row.agent_id, row.held_at is not None, row.ended_at is not None, row.outcome
    )


async def call_waits_again(tx: Tx, conversation_id: int, *, actor: Actor) -> None:
    """A connected call was sent back to a queue (a transfer to a queue): it waits again,
    so a hang-up now abandons the queue; the first agent's answer time is kept."""
    row = (
        await tx.execute(select(calls).where(calls.c.conversation_id == conversation_id))
    ).first()
    if row is None or row.ended_at is not None:
        return
    await _update_call(tx, row, actor=actor, outcome="queued", held_at=None)


async def request_callback(rt: Runtime, call_id: int, number: str, *, actor: Actor = SYSTEM) -> int:
    """The caller asks to be called back: a ``callback`` task that keeps the call's place.

    The call's own conversation is closed; the task waits in the same queue
    with the call's ``queued_at``. Returns the task's conversation id.
    """
    address = normalize_phone(number, rt.settings.default_region)
    async with rt.transaction() as tx:
        row = await _call_row(tx, call_id)
        conversation = await load_conversation(tx, row.conversation_id)
        now = tx.state["now"]
        queued_at = conversation.queued_at or now
        queue = conversation.queue or rt.settings.voice.queue
        if row.outcome == "callback":
            existing = (
                await tx.execute(
                    select(conversations.c.id)
                    .where(
                        conversations.c.kind == "callback",
                        conversations.c.citizen_id == conversation.citizen_id,
                        conversations.c.queued_at == queued_at,
                    )
                    .order_by(conversations.c.id.desc())
                    .limit(1)
                )
            ).first()
            if existing is not None:
                return int(existing.id)
        values = {
            "citizen_id": conversation.citizen_id,
            "channel": conversation.channel,
            "address": address,
            "service_address": conversation.service_address,
            "state": "queued",
            "kind": "callback",
            "queue": queue,
            "locale": conversation.locale,
            "created_at": now,
            "updated_at": now,
            "queued_at": queued_at,
            "last_message_at": now,
        }
        task = await open_conversation(
            tx, values, actor=actor, details={"callback_for_call": row.id}
        )
        task_id = task.id
        body = rt.text("voice.callback_task", task.locale, number=address)
        if row.transcript:
            body += "\n" + row.transcript
        await _add_transcript_message(
            tx, task, body, kind="callback", actor=actor, meta={"call_id": row.id}
        )
        await open_entry(tx, rt, task, queue, queued_at=queued_at)  # the call's place
        tx.publish(events.conversation_changed(task._asdict(), now))
        await leave_queue(tx, conversation.id, "callback")
        await move_conversation(tx, conversation, ConversationStep.FINISH, actor=actor)
        await _update_call(tx, row, actor=actor, outcome="callback")
        return int(task_id)


async def report_problem(
    rt: Runtime,
    call_id: int,
    description: str,
    *,
    category: str | None = None,
    address: str | None = None,
    confirmed: bool = True,
    actor: Actor = SYSTEM,
) -> TicketRecord:
    """The caller reported a problem: a ticket, routed and dispatched, as any other.

    The transcript is the description; ``address`` is the place the IVR
    recognised in it, routed like a typed address. When the caller's number
    is a mobile and an ``sms`` channel runs, the ticket number is also sent
    by SMS. A repeated report on the same call returns the ticket made the
    first time.

    ``confirmed=False``: the caller hung up before confirming what they said.
    The ticket is filed all the same, but stays at the dispatch desk (not
    dispatched), titled as not confirmed, for a dispatcher to check.
    """
    async with rt.transaction() as tx:
        row = await _call_row(tx, call_id)
        conversation = await load_conversation(tx, row.conversation_id)
        if conversation.ticket_id is not None:
            found = (
                await tx.execute(select(tickets).where(tickets.c.id == conversation.ticket_id))
            ).one()
            return ticket_record(found)
        title = None
        if not confirmed:
            first_line = description.strip().splitlines()[0][:150]
            title = rt.text("voice.unconfirmed_title", conversation.locale, text=first_line)
        draft = check_draft(
            rt,
            TicketDraft(
                description=description,
                category=category,
                title=title,
                address=address,
                citizen_id=conversation.citizen_id,
                conversation_id=conversation.id,
                origin_channel=VOICE_ORIGIN,
                locale=conversation.locale,
            ),
        )
        # dispatched to the routed department; the caller hears the number by SMS
        # when their number is a mobile and an SMS channel runs (callcenter.actions.notify)
        ticket = await open_ticket(tx, rt, draft, actor=actor, dispatch=confirmed)
        await leave_queue(tx, conversation.id, "ticket")
        conversation = await move_conversation(
            tx, conversation, ConversationStep.FINISH, actor=actor
        )
        await _update_call(
            tx, row, actor=actor, outcome="ticket", transcript=row.transcript or description
        )
        return ticket


async def leave_voice_message(
    rt: Runtime,
    call_id: int,
    *,
    recording_path: str | None,
    seconds: float | None,
    transcript: str | None = None,
    confidence: float | None = None,
    said_before: str | None = None,
    actor: Actor = SYSTEM,
) -> int:
    """The caller left a voice message: it waits in the queue for an agent to listen.

    ``said_before``: what the caller had told the IVR earlier in the call, kept
    in the message when the recording itself has no transcript.
    """
    async with rt.transaction() as tx:
        row = await _call_row(tx, call_id)
        conversation = await load_conversation(tx, row.conversation_id)
        if row.outcome == "voicemail":
            return int(conversation.id)
        body = (
            (transcript or "").strip()
            or (said_before or "").strip()
            or rt.text("voice.voicemail_body", conversation.locale)
        )
        await _add_transcript_message(
            tx,
            conversation,
            body[:MAX_TRANSCRIPT],
            kind="voicemail",
            actor=actor,
            meta={
                "call_id": row.id,
                "recording": recording_path,
                "seconds": seconds,
                "confidence": confidence,
            },
        )
        if conversation.state == "bot":
            await enqueue(tx, rt, conversation, actor=actor, queue=rt.settings.voice.queue)
        values: dict[str, Any] = {"outcome": "voicemail"}
        if recording_path is not None:
            values["recording_path"] = recording_path[:400]
        if seconds is not None:
            values["recording_seconds"] = float(seconds)
        if transcript:
            values["transcript"] = transcript[:MAX_TRANSCRIPT]
        if confidence is not None:
            values["confidence"] = float(confidence)
        await _update_call(tx, row, actor=actor, **values)
        return int(conversation.id)


async def end_call(
    rt: Runtime,
    call_id: int,
    *,
    outcome: str | None = None,
    end_node: str | None = None,
    actor: Actor = SYSTEM,
) -> None:
    """The call is over. A caller who hung up while waiting has abandoned the queue; a
    call with an agent ends the agent's stay (their slot is free, wrap-up starts; the
    wrap-up code can still be given with ``end_conversation``).

    ``end_node``: the IVR node the call ended at (where callers abandon the IVR).
    """
    async with rt.transaction() as tx:
        row = await _call_row(tx, call_id)
        if row.ended_at is not None:
            return
        now: datetime = tx.state["now"]
        conversation = await load_conversation(tx, row.conversation_id)
        values: dict[str, Any] = {"ended_at": now}
        if end_node:
            values["end_node"] = end_node[:64]
        # still waiting for an agent (a voice message waits for one after the caller left)
        waiting = (
            conversation.kind == "call"
            and conversation.state == "queued"
            and row.outcome in (None, "queued")
        )
        # talking to an agent: the call is over, and so is the agent's hold on it
        talking = conversation.kind == "call" and conversation.state == "assigned"
        if row.queued_at is not None and row.agent_answered_at is None:
            values["queue_wait_s"] = max(0.0, (now - row.queued_at).total_seconds())
        if row.agent_answered_at is not None:
            values["talk_s"] = max(0.0, (now - row.agent_answered_at).total_seconds())
        if row.held_at is not None:
            values["held_at"] = None
            values["hold_s"] = (row.hold_s or 0) + (now - row.held_at).total_seconds()
        if waiting:
            values["outcome"] = "abandoned"
        elif row.outcome is None:
            values["outcome"] = outcome or "completed"
        await _update_call(tx, row, actor=actor, **values)
        if waiting:
            await leave_queue(tx, conversation.id, "abandoned")
        if talking:
            entry = await open_entry_of(tx, conversation.id)
            if entry is not None and entry.agent_id is not None:
                await end_entry(tx, entry.id, "handled")
                await start_wrap_up(tx, rt, entry.agent_id, entry.queue, actor=actor)
        if conversation.kind == "call" and (conversation.state == "bot" or waiting or talking):
            await move_conversation(
                tx, conversation, ConversationStep.CITIZEN_LEFT, actor=actor, closed_at=now
            )
    await close_softphone(rt, row.conversation_id)


@dataclass(frozen=True)
class TicketStatus:
    number: str
    state: str
    department_zh: str | None
    department_en: str | None
    due_at: datetime | None
    replied: bool


async def ticket_status(rt: Runtime, number: str) -> TicketStatus | None:
    """A ticket's state by its number, for a caller who asks (read-only)."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) < 9:
        return None
    formatted = f"{digits[:8]}-{digits[8:]}"
    async with rt.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    tickets.c.number,
                    tickets.c.state,
                    tickets.c.due_at,
                    tickets.c.replied_at,
                    departments.c.name_zh,
                    departments.c.name_en,
                )
                .select_from(
                    tickets.outerjoin(departments, departments.c.id == tickets.c.department_id)
                )
                .where(tickets.c.number == formatted)
            )
        ).first()
    if row is None:
        return None
    return TicketStatus(
        row.number, row.state, row.name_zh, row.name_en, row.due_at, row.replied_at is not None
    )


async def call_info(rt: Runtime, call_id: int) -> Any:
    """The ``calls`` row (read-only; for tests, views and transports)."""
    async with rt.db.read() as conn:
        return (await conn.execute(select(calls).where(calls.c.id == call_id))).first()
