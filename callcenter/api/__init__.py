"""The JSON API under ``/api`` (see ``docs/api.md``); the document is at ``/api/openapi.json``."""

from __future__ import annotations

from aiohttp import web

from callcenter.api import (  # noqa: F401  (register endpoints)
    acd,
    directory,
    mediations,
    people,
    reports,
    system,
    tickets,
)
from callcenter.api.http import add_endpoints, error_middleware


def create_api() -> web.Application:
    api = web.Application(middlewares=[error_middleware])
    add_endpoints(api)
    return api
