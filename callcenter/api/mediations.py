"""Mediation endpoints for staff: the case, its schedule, the room, the outcome, the
recording. The parties' own pages are in ``agent_ui.rooms`` (docs/mediation.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from callcenter.actions import mediations as med
from callcenter.api.http import Context, endpoint
from callcenter.domain.errors import Conflict, InvalidInput, NotFound
from callcenter.domain.workflow import Role
from callcenter.views import (
    mediation_by_id,
    mediation_list,
    mediation_party_by_id,
    mediation_recording_by_id,
    mediation_recordings_of,
    ticket_by_ref,
    user_by_id,
    visible_to,
)

STAFF = {Role.AGENT, Role.SUPERVISOR, Role.DEPARTMENT, Role.ADMIN}
# who may act on a case at all; the case's own table then says which step (the mediator
# opens the room and ends it, the desk schedules...), refusing others with 403
MEDIATE = {Role.AGENT, Role.SUPERVISOR, Role.DEPARTMENT}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartyIn(Strict):
    name: str = Field(max_length=200)
    phone: str = Field(max_length=40)
    role: str
    locale: str = "zh-CN"


class ProposeIn(Strict):
    parties: list[PartyIn] = Field(min_length=2, max_length=8)
    mediator_id: int | None = None


class ScheduleIn(Strict):
    scheduled_at: datetime
    duration_minutes: int | None = None
    version: int | None = None


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class ConcludeIn(Strict):
    outcome: str
    agreement_text: str | None = Field(default=None, max_length=8000)
    reply_ticket: bool = True


class MuteIn(Strict):
    mute: bool = True


class MediatorIn(Strict):
    mediator_id: int


class MediationOut(BaseModel):
    id: int
    ticket_id: int
    ticket_number: str
    state: str
    state_label: str
    mediator_id: int | None
    mediator_name: str | None
    scheduled_at: str | None
    scheduled_local: str
    duration_minutes: int
    outcome: str | None
    agreement_text: str | None
    recording: bool
    version: int
    media_up: bool | None
    parties: list[dict[str, Any]]
    recordings: list[dict[str, Any]]
    steps: list[str]


async def view(ctx: Context, mediation_id: int) -> dict[str, Any]:
    """A mediation as staff see it (never the room's secrets)."""
    rt, actor = ctx.rt, ctx.require_actor()
    async with rt.db.read() as conn:
        m = await mediation_by_id(conn, mediation_id)
        ticket = await ticket_by_ref(conn, m.ticket_id) if m else None
        if m is None or ticket is None or not _may_see(actor, m, ticket):
            raise NotFound("mediation_not_found", mediation=mediation_id)
        who = None if actor.role is Role.ADMIN else await med.who_is(conn, rt, actor, m, ticket)
        parties = await med.load_parties(conn, mediation_id)
        mediator = await user_by_id(conn, m.mediator_id) if m.mediator_id else None
        recs = await mediation_recordings_of(conn, mediation_id)
    from callcenter.domain.mediation import MediationState, allowed_steps

    locale = ctx.locale
    return {
        "id": m.id,
        "ticket_id": ticket.id,
        "ticket_number": ticket.number,
        "state": m.state,
        "state_label": rt.catalog.label("mediation_state", m.state, locale),
        "mediator_id": m.mediator_id,
        "mediator_name": mediator.display_name if mediator else None,
        "scheduled_at": m.scheduled_at.isoformat() if m.scheduled_at else None,
        "scheduled_local": rt.local_text(m.scheduled_at),
        "duration_minutes": m.duration_minutes,
        "outcome": m.outcome,
        "agreement_text": m.agreement_text,
        "recording": bool(m.recording),
        "version": m.version,
        "media_up": rt.media.healthy if rt.media and rt.media.enabled else None,
        "parties": [
            {
                "id": p.id,
                "name": p.name,
                "phone": p.phone,
                "role": p.role,
                "role_label": rt.catalog.label("party_role", p.role, locale),
                "locale": p.locale,
                "presence": p.presence,
                "consent": p.consent,
                "declined": p.declined_at is not None,
                "decline_text": p.decline_text,
                "muted": bool(p.muted),
            }
            for p in parties
        ],
        "recordings": [
            {
                "id": r.id,
                "state": r.state,
                "duration_seconds": r.duration_seconds,
                "url": f"/api/mediations/{m.id}/recordings/{r.id}" if r.state == "ready" else None,
                "transcript": r.transcript,
                "expires_at": r.expires_at.isoformat(),
            }
            for r in recs
        ],
        "steps": [s.value for s in allowed_steps(MediationState(m.state), who)] if who else [],
    }


@endpoint(
    "POST",
    "/tickets/{ticket}/mediations",
    summary="Propose a mediation on a dispute ticket, with its parties",
    tag="mediations",
    roles=MEDIATE,
    body=ProposeIn,
    response=MediationOut,
    status=201,
    errors=(400, 401, 403, 404, 409),
)
async def propose(ctx: Context) -> dict[str, Any]:
    body: ProposeIn = ctx.body
    row = await med.propose_mediation(
        ctx.rt,
        ctx.params["ticket"],
        actor=ctx.require_actor(),
        mediator_id=body.mediator_id,
        parties=[med.PartyDraft(p.name, p.phone, p.role, p.locale) for p in body.parties],
    )
    return await view(ctx, row["id"])


@endpoint(
    "GET",
    "/mediations/{id}",
    summary="A mediation: state, parties (presence, consent), recordings, allowed steps",
    tag="mediations",
    roles=STAFF,
    response=MediationOut,
    errors=(401, 403, 404),
)
async def show(ctx: Context) -> dict[str, Any]:
    mediation_id = ctx.int_param("id")
    async with ctx.rt.db.read() as conn:
        m = await mediation_by_id(conn, mediation_id)
    if m is not None and m.state == "in_session":
        await med.sweep_presence(ctx.rt, mediation_id)
    return await view(ctx, mediation_id)


@endpoint(
    "POST",
    "/mediations/{id}/mediator",
    summary="Name the mediator",
    tag="mediations",
    roles=MEDIATE,
    body=MediatorIn,
    response=MediationOut,
    errors=(400, 401, 403, 404, 409),
)
async def name_mediator(ctx: Context) -> dict[str, Any]:
    await med.set_mediation_mediator(
        ctx.rt, ctx.int_param("id"), ctx.body.mediator_id, actor=ctx.require_actor()
    )
    return await view(ctx, ctx.int_param("id"))


@endpoint(
    "POST",
    "/mediations/{id}/schedule",
    summary="Fix (or change) the time; the parties are invited (again)",
    tag="mediations",
    roles=MEDIATE,
    body=ScheduleIn,
    response=MediationOut,
    errors=(400, 401, 403, 404, 409),
)
async def schedule(ctx: Context) -> dict[str, Any]:
    body: ScheduleIn = ctx.body
    if body.scheduled_at.tzinfo is None:
        raise InvalidInput("invalid_field", field="scheduled_at")
    await med.schedule_mediation(
        ctx.rt, ctx.int_param("id"), body.scheduled_at, actor=ctx.require_actor(),
        duration_minutes=body.duration_minutes, expected_version=body.version,
    )  # fmt: skip
    return await view(ctx, ctx.int_param("id"))


@endpoint(
    "POST",
    "/mediations/{id}/cancel",
    summary="Cancel; the parties are told",
    tag="mediations",
    roles=MEDIATE,
    body=ReasonIn,
    response=MediationOut,
    errors=(400, 401, 403, 404, 409),
)
async def cancel(ctx: Context) -> dict[str, Any]:
    await med.cancel_mediation(
        ctx.rt, ctx.int_param("id"), ctx.body.reason, actor=ctx.require_actor()
    )
    return await view(ctx, ctx.int_param("id"))


@endpoint(
    "POST",
    "/mediations/{id}/start",
    summary="Open the room (the mediator)",
    tag="mediations",
    roles=MEDIATE,
    response=MediationOut,
    errors=(400, 401, 403, 404, 409, 503),
)
async def start(ctx: Context) -> dict[str, Any]:
    await med.start_session(ctx.rt, ctx.int_param("id"), actor=ctx.require_actor())
    return await view(ctx, ctx.int_param("id"))


@endpoint(
    "GET",
    "/mediations/{id}/media",
    summary="The mediator's own way into the room (only while it is in session)",
    tag="mediations",
    roles=STAFF,
    errors=(401, 403, 404, 409),
)
async def mediator_media(ctx: Context) -> dict[str, Any]:
    actor = ctx.require_actor()
    mediation_id = ctx.int_param("id")
    async with ctx.rt.db.read() as conn:
        m = await mediation_by_id(conn, mediation_id)
    ticket = await _visible_ticket(ctx, m)
    if m.state != "in_session" or not m.mediator_token:
        raise Conflict("mediation_not_in_session", number=ticket.number)
    if m.mediator_id != actor.id:
        raise NotFound("mediation_not_found", mediation=mediation_id)
    await med.apply_room(ctx.rt, mediation_id)
    return {
        "server": f"/media/janus/{m.media_node}",
        "token": m.mediator_token,
        "room": m.room_id,
        "pin": m.room_pin,
        "display": actor.name,
    }


async def _visible_ticket(ctx: Context, m: Any) -> Any:
    async with ctx.rt.db.read() as conn:
        ticket = await ticket_by_ref(conn, m.ticket_id) if m else None
    if m is None or ticket is None or not _may_see(ctx.require_actor(), m, ticket):
        raise NotFound("mediation_not_found", mediation=ctx.params.get("id"))
    return ticket


def _may_see(actor: Any, m: Any, ticket: Any) -> bool:
    """Whoever may see the ticket, and the case's own mediator."""
    return visible_to(actor, ticket) or (actor.id is not None and actor.id == m.mediator_id)


async def _party_of(ctx: Context) -> int:
    mediation_id, party_id = ctx.int_param("id"), ctx.int_param("party")
    async with ctx.rt.db.read() as conn:
        m = await mediation_by_id(conn, mediation_id)
        ticket = await _visible_ticket(ctx, m)
        await med.who_is(conn, ctx.rt, ctx.require_actor(), m, ticket)
        party = await mediation_party_by_id(conn, party_id)
    if party is None or party.mediation_id != mediation_id:
        raise NotFound("mediation_party_not_found", party=party_id)
    return party_id


@endpoint(
    "POST",
    "/mediations/{id}/parties/{party}/admit",
    summary="Admit a party from the waiting room",
    tag="mediations",
    roles=MEDIATE,
    response=MediationOut,
    errors=(401, 403, 404, 409),
)
async def admit(ctx: Context) -> dict[str, Any]:
    await med.admit_party(ctx.rt, await _party_of(ctx), actor=ctx.require_actor())
    return await view(ctx, ctx.int_param("id"))


@endpoint(
    "POST",
    "/mediations/{id}/parties/{party}/remove",
    summary="Remove a party from the room for the rest of the session",
    tag="mediations",
    roles=MEDIATE,
    response=MediationOut,
    errors=(401, 403, 404, 409),
)
async def remove(ctx: Context) -> dict[str, Any]:
    await med.remove_party(ctx.rt, await _party_of(ctx), actor=ctx.require_actor())
    return await view(ctx, ctx.int_param("id"))


@endpoint(
    "POST",
    "/mediations/{id}/parties/{party}/mute",
    summary="Mute (or unmute) a party's microphone in the room",
    tag="mediations",
    roles=MEDIATE,
    body=MuteIn,
    response=MediationOut,
    errors=(401, 403, 404, 409),
)
async def mute(ctx: Context) -> dict[str, Any]:
    await med.mute_party(
        ctx.rt, await _party_of(ctx), mute=ctx.body.mute, actor=ctx.require_actor()
    )
    return await view(ctx, ctx.int_param("id"))


@endpoint(
    "POST",
    "/mediations/{id}/conclude",
    summary="Record the outcome and end the session",
    tag="mediations",
    roles=MEDIATE,
    body=ConcludeIn,
    response=MediationOut,
    errors=(400, 401, 403, 404, 409),
)
async def conclude(ctx: Context) -> dict[str, Any]:
    body: ConcludeIn = ctx.body
    await med.end_session(
        ctx.rt, ctx.int_param("id"), body.outcome, actor=ctx.require_actor(),
        agreement_text=body.agreement_text, reply_ticket=body.reply_ticket,
    )  # fmt: skip
    return await view(ctx, ctx.int_param("id"))


@endpoint(
    "GET",
    "/mediations/{id}/recordings/{recording}",
    summary="The joined recording (WebM), for staff who may see the ticket",
    tag="mediations",
    roles=STAFF,
    errors=(401, 403, 404),
)
async def recording_file(ctx: Context) -> Any:
    from aiohttp import web

    actor = ctx.require_actor()
    async with ctx.rt.db.read() as conn:
        rec = await mediation_recording_by_id(conn, ctx.int_param("recording"))
        ticket = await ticket_by_ref(conn, rec.ticket_id) if rec else None
    if (
        rec is None
        or ticket is None
        or rec.mediation_id != ctx.int_param("id")
        or rec.state != "ready"
        or not visible_to(actor, ticket)  # the ticket's own staff, not the mediator alone
    ):
        raise NotFound("mediation_recording_not_found")
    return web.FileResponse(
        ctx.rt.settings.data_dir / rec.path,
        headers={"Content-Type": "video/webm", "Cache-Control": "no-store"},
    )


class ListQuery(Strict):
    state: str | None = None  # one state, or "open" for all but the final ones
    lang: str | None = None


@endpoint(
    "GET",
    "/mediations",
    summary="Mediations: a mediator's own, a department's, or all for the desk; soonest first",
    tag="mediations",
    roles=STAFF,
    query=ListQuery,
    errors=(400, 401, 403),
)
async def list_mediations(ctx: Context) -> dict[str, Any]:
    from callcenter.domain.mediation import OPEN_STATES, MediationState

    actor = ctx.require_actor()
    q: ListQuery = ctx.query
    states: list[str] | None = None
    if q.state == "open":
        states = [s.value for s in OPEN_STATES]
    elif q.state:
        if q.state not in MediationState.__members__.values():
            raise InvalidInput("invalid_choice", field="state", choices=", ".join(MediationState))
        states = [q.state]
    async with ctx.rt.db.read() as conn:
        rows = await mediation_list(
            conn,
            states=states,
            of_department=actor.role is Role.DEPARTMENT,
            department_id=actor.department_id,
            mediator_id=actor.id,
        )
    label = ctx.rt.catalog.label
    return {
        "items": [
            {
                "id": r.id,
                "ticket_number": r.number,
                "state": r.state,
                "state_label": label("mediation_state", r.state, ctx.locale),
                "scheduled_local": ctx.rt.local_text(r.scheduled_at),
                "mine": r.mediator_id == actor.id,
                "url": f"/ui/mediations/{r.id}",
            }
            for r in rows
        ]
    }
