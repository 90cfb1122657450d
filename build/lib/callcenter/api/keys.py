"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

from callcenter.config import Settings
from callcenter.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
SETTINGS = web.AppKey("settings", Settings)
