"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

from callcenter.config import Settings
from callcenter.ports import Page
from callcenter.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
SETTINGS = web.AppKey("settings", Settings)
# the public pages the server's front page lists: the channels' and the web front ends'
SITE_PAGES: web.AppKey[list[Page]] = web.AppKey("site_pages", list)
