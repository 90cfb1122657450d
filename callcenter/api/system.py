"""Health, identity, audit verification and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from callcenter import __version__
from callcenter.actions.audit import verify_chain
from callcenter.api.http import Context, endpoint, json_response
from callcenter.api.schemas import AuditVerifyOut, HealthOut, LangQuery, MeOut
from callcenter.domain.workflow import Role
from callcenter.views import job_counts


@endpoint(
    "GET",
    "/health",
    summary="Liveness and a look at the job queue",
    tag="system",
    roles=None,
    response=HealthOut,
)
async def health(ctx: Context) -> dict[str, Any]:
    async with ctx.rt.db.read(long=True) as conn:
        counts = await job_counts(conn)
    return {
        "status": "ok",
        "version": __version__,
        "database": ctx.rt.db.dialect,
        "jobs": {state: int(counts.get(state, 0)) for state in ("pending", "running", "dead")},
        "media": ctx.rt.media.status()
        if ctx.rt.media
        else {"mode": "off", "up": None, "nodes": []},
    }


@endpoint(
    "GET",
    "/me",
    summary="Who the credentials belong to",
    tag="system",
    roles={Role.AGENT, Role.SUPERVISOR, Role.DEPARTMENT, Role.ADMIN},
    query=LangQuery,
    response=MeOut,
    errors=(401,),
)
async def me(ctx: Context) -> dict[str, Any]:
    actor = ctx.require_actor()
    return {
        "id": actor.id,
        "name": actor.name,
        "role": actor.role.value,
        "department_id": actor.department_id,
        "locale": actor.locale,
    }


@endpoint(
    "GET",
    "/audit/verify",
    summary="Check the tamper-evident audit chain",
    tag="system",
    roles={Role.SUPERVISOR, Role.ADMIN},
    query=LangQuery,
    response=AuditVerifyOut,
    errors=(401, 403),
)
async def audit_verify(ctx: Context) -> dict[str, Any]:
    checked, broken = await verify_chain(ctx.rt.db)
    if broken is None:
        message = ctx.rt.text("audit.intact", ctx.locale, count=checked)
    else:
        message = ctx.rt.text(
            "audit.broken",
            ctx.locale,
            seq=broken.seq,
            reason=ctx.rt.catalog.label("audit_reason", broken.reason, ctx.locale),
        )
    return {
        "checked": checked,
        "ok": broken is None,
        "broken": {"seq": broken.seq, "reason": broken.reason} if broken else None,
        "message": message,
    }


@endpoint("GET", "/openapi.json", summary="This document", tag="system", roles=None)
async def openapi_document(ctx: Context) -> Any:
    from callcenter.api.openapi import build_openapi

    return json_response(build_openapi(ctx.rt.settings.effective_public_url))
