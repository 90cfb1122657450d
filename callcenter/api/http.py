"""The HTTP plumbing every endpoint shares: auth, locale, JSON, errors, OpenAPI metadata.

An endpoint is a plain async function decorated with :func:`endpoint`, which
records its method, path, roles and pydantic models. The same record drives
request validation, the role check, response serialisation and the OpenAPI
document, so the document cannot drift from what the server does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from callcenter.api.bodies import read_body
from callcenter.api.keys import RUNTIME
from callcenter.domain.auth import token_hash
from callcenter.domain.errors import (
    Forbidden,
    HotlineError,
    InvalidInput,
    RateLimited,
    TooLarge,
    Unauthenticated,
)
from callcenter.domain.ids import require_id
from callcenter.domain.workflow import Actor, Role
from callcenter.runtime import Runtime
from callcenter.views import user_by_token_hash

log = logging.getLogger(__name__)

MAX_JSON_BODY = 64 * 1024
ACTOR_KEY: web.RequestKey[Actor | None] = web.RequestKey("actor", object)  # type: ignore[arg-type]
LOCALE_KEY = web.RequestKey("locale", str)


def dumps(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()


def json_response(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
    )


def locale_of(request: web.Request) -> str:
    cached = request.get(LOCALE_KEY)
    if cached:
        return str(cached)
    rt = request.config_dict[RUNTIME]
    requested = request.query.get("lang")
    if requested:
        locale = rt.catalog.normalize(requested)
    elif request.headers.get("Accept-Language"):
        locale = rt.catalog.negotiate(request.headers["Accept-Language"])
    else:
        actor: Actor | None = request.get(ACTOR_KEY)
        locale = rt.catalog.locale_or_default(actor.locale if actor else None)
    request[LOCALE_KEY] = locale
    return locale


Authenticator = Callable[[web.Request], Awaitable[Actor | None]]


async def bearer_actor(request: web.Request) -> Actor | None:
    """The user behind ``Authorization: Bearer <token>``, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    rt = request.config_dict[RUNTIME]
    async with rt.db.read() as conn:
        row = await user_by_token_hash(conn, token_hash(token.strip()))
    if row is None or not row.active:
        raise Unauthenticated("invalid_token")
    return actor_from_user(row)


def actor_from_user(row: Any) -> Actor:
    return Actor(
        id=row.id,
        role=Role(row.role),
        name=row.display_name,
        department_id=row.department_id,
        locale=row.locale,
    )


AUTHENTICATORS: web.AppKey[list[Authenticator]] = web.AppKey("authenticators", list)


async def current_actor(request: web.Request) -> Actor | None:
    if ACTOR_KEY in request:
        return request[ACTOR_KEY]
    actor: Actor | None = None
    for authenticate in request.config_dict.get(AUTHENTICATORS, [bearer_actor]):
        actor = await authenticate(request)
        if actor is not None:
            break
    request[ACTOR_KEY] = actor
    return actor


def error_body(rt: Runtime, error: HotlineError, locale: str) -> dict[str, Any]:
    params = dict(error.params)
    if "field" in params:  # the field as the reader knows it, not its internal name
        field_name = str(params["field"]).rsplit(".", 1)[-1]
        params["field_label"] = rt.catalog.label("field", field_name, locale)
    if "problem" in params:
        params["problem_label"] = rt.catalog.label("problem", str(params["problem"]), locale)
    for name, group in (
        ("state", "state"),
        ("step", "step"),
        ("role", "role"),
        ("conversation_state", "conversation_state"),
        ("conversation_step", "conversation_step"),
    ):
        if name in params:
            params[f"{name}_label"] = rt.catalog.label(group, str(params[name]), locale)
    key = f"errors.{error.code}"
    message = rt.text(key, locale, **params) if rt.catalog.has(key) else error.code
    return {"error": {"code": error.code, "message": message, "details": error.params}}


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn core errors into JSON answers in the caller's language, for every route.

    The composition root puts it on the whole server, innermost, so that the API,
    the channels' webhooks and the staff's pages answer a :class:`HotlineError`
    the same way (status, code, message in the caller's language) and no handler
    catches errors by hand. Handlers that answer in their own medium (a websocket
    frame, a form shown again with its message) still do so.
    """
    try:
        return await handler(request)
    except HotlineError as error:
        return error_response(request, error)


def error_response(request: web.Request, error: HotlineError) -> web.Response:
    """A core error as JSON in the caller's language; a 429 says when to try again."""
    rt = request.config_dict[RUNTIME]
    response = json_response(error_body(rt, error, locale_of(request)), status=error.status)
    retry_after(response, error)
    return response


def retry_after(response: web.StreamResponse, error: HotlineError) -> None:
    """``Retry-After`` (seconds) on the answer to a :class:`RateLimited`, from its
    ``minutes``."""
    if isinstance(error, RateLimited):
        minutes = int(error.params.get("minutes", 1) or 1)
        response.headers["Retry-After"] = str(minutes * 60)


@dataclass
class Context:
    """What an endpoint handler receives besides the request."""

    request: web.Request
    rt: Runtime
    actor: Actor | None
    locale: str
    body: Any = None
    query: Any = None
    params: dict[str, str] = field(default_factory=dict)

    def int_param(self, name: str) -> int:
        """A row id in the path, or 400 naming it (see :mod:`callcenter.domain.ids`)."""
        return require_id(self.params[name], field=name)

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise Unauthenticated()
        return self.actor


Handler = Callable[[Context], Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    roles: frozenset[Role] | None  # None: public
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # a pydantic model, list[model], or None for 204
    status: int = 200
    errors: tuple[int, ...] = ()
    name: str = ""
    media_type: str = "application/json"  # of the answer: "text/csv" for the CSV reports


ENDPOINTS: list[Endpoint] = []


def endpoint(
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    roles: set[Role] | None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    media_type: str = "application/json",
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ENDPOINTS.append(
            Endpoint(
                method.upper(),
                path,
                handler,
                summary,
                tag,
                frozenset(roles) if roles is not None else None,
                body,
                query,
                response,
                status,
                errors,
                name=handler.__name__,
                media_type=media_type,
            )
        )
        return handler

    return register


def _validation_error(exc: ValidationError, where: str) -> InvalidInput:
    first = exc.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or where
    if first["type"] == "string_too_long":  # said with its limit (never cut)
        limit = (first.get("ctx") or {}).get("max_length")
        given = first.get("input")
        # a text in a body: 413 (the body holds more than is taken); in a query, where
        # there is no body, the same reason as a 400
        too_long = TooLarge if where == "body" else InvalidInput
        return too_long(
            "field_too_long",
            field=location,
            limit=limit,
            length=len(given) if isinstance(given, str) else None,
        )
    return InvalidInput(
        "invalid_request",
        field=location,
        problem=first["type"],
        errors=[
            {"loc": [str(p) for p in e["loc"]], "type": e["type"], "msg": e["msg"]}
            for e in exc.errors(include_url=False)[:10]
        ],
    )


async def read_model(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """The body as ``model``, with JSON's own types: ``false`` is no number, ``0`` no
    boolean, ``"1"`` no integer (pydantic's strict JSON mode), and a blank body is no
    ``{}`` (``missing_body``): what the OpenAPI document says is what is taken."""
    raw = await read_body(request, limit=MAX_JSON_BODY)
    if not raw.strip():
        raise InvalidInput("missing_body")
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput("malformed_json") from None
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise _validation_error(exc, "body") from None


def serialize(response: Any, value: Any) -> Any:
    if response is None or value is None:
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    origin = getattr(response, "__origin__", None)
    if origin is list:
        (model,) = response.__args__
        return [model.model_validate(item).model_dump(mode="json") for item in value]
    return response.model_validate(value).model_dump(mode="json")


def make_view(ep: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def view(request: web.Request) -> web.StreamResponse:
        rt = request.config_dict[RUNTIME]
        actor = await current_actor(request)
        if ep.roles is not None:
            if actor is None:
                raise Unauthenticated()
            if actor.role not in ep.roles:
                raise Forbidden("role_not_allowed", role=actor.role.value)
        ctx = Context(request, rt, actor, locale_of(request), params=dict(request.match_info))
        if ep.query is not None:
            try:
                ctx.query = ep.query.model_validate(dict(request.query))
            except ValidationError as exc:
                raise _validation_error(exc, "query") from None
        if ep.body is not None:
            ctx.body = await read_model(request, ep.body)
        result = await ep.handler(ctx)
        if isinstance(result, web.StreamResponse):
            return result
        if ep.status == 204:
            return web.Response(status=204)
        return json_response(serialize(ep.response, result), status=ep.status)

    view.__name__ = ep.name
    return view


def add_endpoints(app: web.Application, prefix: str = "") -> None:
    for ep in ENDPOINTS:
        app.router.add_route(ep.method, prefix + ep.path, make_view(ep), name=ep.name)
