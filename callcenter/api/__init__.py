"""The JSON API under ``/api`` (see ``docs/api.md``); the document is at ``/api/openapi.json``."""

from __future__ import annotations

from aiohttp import web

from callcenter.api import (  # noqa: F401  (register endpoints)
    acd,
    directory,
    mediations,
    people,
    privacy,
    reports,
    system,
    tickets,
)
from callcenter.api.http import add_endpoints


def create_api() -> web.Application:
    """The API as a sub-application; its errors are answered by the server's one error
    path (:func:`callcenter.api.http.error_middleware`, on the whole server)."""
    api = web.Application()
    add_endpoints(api)
    return api
