"""Personal data through the API: a ticket's contact (audited), a citizen's export and
erasure, the retention run (administrators). See callcenter/actions/privacy.py."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from callcenter.actions.privacy import (
    TicketContact,
    apply_retention,
    erase_citizen,
    export_citizen,
    view_ticket_contact,
)
from callcenter.api.http import Context, endpoint
from callcenter.api.schemas import Strict
from callcenter.domain.workflow import Role

STAFF = {Role.AGENT, Role.SUPERVISOR, Role.DEPARTMENT, Role.ADMIN}
ADMIN = {Role.ADMIN}


class ContactOut(BaseModel):
    ticket_id: int
    number: str
    citizen_id: int | None
    name: str | None
    phone: str | None  # the number the citizen gave
    phones: list[str]  # every number they reached the hotline from, and that one


class EraseIn(Strict):
    reason: str = Field(min_length=1, max_length=500, description="the request and its basis")


class ErasedOut(BaseModel):
    identities: int
    messages: int
    inbox: int
    delivery_attempts: int
    conversations: int
    calls: int
    photos: int
    tickets_kept: int


class RetentionOut(BaseModel):
    messages: int
    inbox: int
    recordings: int
    closed_ticket_contacts: int


@endpoint(
    "GET",
    "/tickets/{ticket}/contact",
    summary="Who reported the ticket, with the full number (each view is audited)",
    tag="privacy",
    roles=STAFF,
    response=ContactOut,
)
async def get_ticket_contact(ctx: Context) -> TicketContact:
    return await view_ticket_contact(ctx.rt, ctx.params["ticket"], actor=ctx.require_actor())


@endpoint(
    "GET",
    "/citizens/{citizen_id}/export",
    summary="Everything held about one citizen, as one JSON document (audited)",
    tag="privacy",
    roles=ADMIN,
)
async def get_citizen_export(ctx: Context) -> dict[str, Any]:
    return await export_citizen(ctx.rt, ctx.int_param("citizen_id"), actor=ctx.require_actor())


@endpoint(
    "POST",
    "/citizens/{citizen_id}/erase",
    summary="Erase a citizen's personal data; their closed tickets stay, without them",
    tag="privacy",
    roles=ADMIN,
    body=EraseIn,
    response=ErasedOut,
    errors=(409,),
)
async def post_citizen_erase(ctx: Context) -> dict[str, int]:
    body: EraseIn = ctx.body
    return await erase_citizen(
        ctx.rt, ctx.int_param("citizen_id"), actor=ctx.require_actor(), reason=body.reason
    )


@endpoint(
    "POST",
    "/privacy/retention",
    summary="Remove what outlived its retention period now (also run daily)",
    tag="privacy",
    roles=ADMIN,
    response=RetentionOut,
)
async def post_retention(ctx: Context) -> dict[str, int]:
    return await apply_retention(ctx.rt, actor=ctx.require_actor())
