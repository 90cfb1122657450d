"""A small driver for one Janus node: its admin API and the plugins' synchronous requests.

Every request the hotline makes goes through the admin API over HTTP:
``add_token``/``remove_token`` for the per-participant tokens (``token_auth``),
and ``message_plugin`` for the plugins' synchronous requests (VideoRoom rooms,
kicks, moderation, recording; AudioBridge rooms). The hotline itself opens no
Janus session; browsers do, through the WebSocket proxy (``callcenter.media.proxy``),
with a token the hotline added for them. See ``docs/media.md``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp

VIDEOROOM = "janus.plugin.videoroom"
AUDIOBRIDGE = "janus.plugin.audiobridge"
SIP = "janus.plugin.sip"


class JanusError(RuntimeError):
    """Janus answered with an error (``code`` is Janus's or the plugin's error code)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusUnavailable(RuntimeError):
    """The node did not answer (down, restarting, unreachable)."""


# VideoRoom's error codes that the hotline tells apart
NO_SUCH_ROOM = 426
ROOM_EXISTS = 427
NO_SUCH_FEED = 428
TOKEN_NOT_FOUND = 490  # the core's answer to remove_token for an unknown token


@dataclass(frozen=True)
class NodeAddress:
    name: str
    url: str
    ws_url: str
    admin_url: str
    admin_secret: str
    admin_key: str


class JanusClient:
    """Talks to one node. Safe to share; one HTTP connection pool per client."""

    def __init__(self, node: NodeAddress, *, timeout: float = 5.0) -> None:
        self.node = node
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": secrets.token_hex(8)}
        try:
            async with self._session().post(url, json=body) as response:
                answer: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise JanusUnavailable(f"{self.node.name}: {exc!r}") from exc
        if answer.get("janus") == "error":
            error = answer.get("error") or {}
            raise JanusError(int(error.get("code", 0)), str(error.get("reason", "")))
        return answer

    async def info(self) -> dict[str, Any]:
        """``GET /info``: needs no token; answers while the node is up."""
        try:
            async with self._session().get(f"{self.node.url}/info") as response:
                answer: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise JanusUnavailable(f"{self.node.name}: {exc!r}") from exc
        return answer

    async def admin(self, janus: str, /, **fields: Any) -> dict[str, Any]:
        return await self._post(
            self.node.admin_url,
            {"janus": janus, "admin_secret": self.node.admin_secret, **fields},
        )

    async def ping(self) -> None:
        await self.admin("ping")

    # tokens (token_auth): one per participant and session, removed when they leave

    async def add_token(self, token: str, plugins: list[str]) -> None:
        await self.admin("add_token", token=token, plugins=plugins)

    async def remove_token(self, token: str) -> None:
        try:
            await self.admin("remove_token", token=token)
        except JanusError as exc:
            if exc.code != TOKEN_NOT_FOUND:
                raise

    async def list_tokens(self) -> list[str]:
        answer = await self.admin("list_tokens")
        return [t["token"] for t in answer.get("data", {}).get("tokens", [])]

    async def handle_info(self, session_id: int, handle_id: int) -> dict[str, Any]:
        answer = await self.admin("handle_info", session_id=session_id, handle_id=handle_id)
        info: dict[str, Any] = answer.get("info", {})
        return info

    async def list_sessions(self) -> list[int]:
        answer = await self.admin("list_sessions")
        return [int(s) for s in answer.get("sessions", [])]

    async def list_handles(self, session_id: int) -> list[int]:
        answer = await self.admin("list_handles", session_id=session_id)
        return [int(h) for h in answer.get("handles", [])]

    # plugins' synchronous requests

    async def plugin(self, plugin: str, request: dict[str, Any]) -> dict[str, Any]:
        """One synchronous plugin request through the admin API; raises on a plugin error."""
        answer = await self.admin("message_plugin", plugin=plugin, request=request)
        data: dict[str, Any] = answer.get("response") or {}
        if "error_code" in data:
            raise JanusError(int(data["error_code"]), str(data.get("error", "")))
        return data

    async def videoroom(self, request: str, **fields: Any) -> dict[str, Any]:
        return await self.plugin(VIDEOROOM, {"request": request, **fields})

    async def create_room(
        self,
        room: int,
        *,
        secret: str,
        pin: str,
        description: str,
        publishers: int = 6,
        allowed: list[str] | None = None,
        rec_dir: str | None = None,
        bitrate: int = 256_000,
    ) -> None:
        """A VideoRoom room only the hotline can change (``secret``) and only holders of
        an allowed token and the ``pin`` can join."""
        fields: dict[str, Any] = {
            "room": room,
            "admin_key": self.node.admin_key,
            "secret": secret,
            "pin": pin,
            "description": description[:100],
            "publishers": publishers,
            "is_private": True,
            "bitrate": bitrate,
            "fir_freq": 5,
            "audiocodec": "opus,pcmu",  # browsers publish Opus; a telephone caller PCMU
            "videocodec": "vp8",
            "record": False,
            "lock_record": True,
            "notify_joining": True,
            "audiolevel_event": True,
        }
        if allowed is not None:
            fields["allowed"] = allowed
        if rec_dir:
            fields["rec_dir"] = rec_dir
        await self.videoroom("create", **fields)

    async def destroy_room(self, room: int, *, secret: str) -> None:
        try:
            await self.videoroom("destroy", room=room, secret=secret)
        except JanusError as exc:
            if exc.code != NO_SUCH_ROOM:
                raise

    async def room_exists(self, room: int) -> bool:
        answer = await self.videoroom("exists", room=room)
        return bool(answer.get("exists"))

    async def list_rooms(self) -> list[dict[str, Any]]:
        answer = await self.videoroom("list", admin_key=self.node.admin_key)
        return list(answer.get("list", []))

    async def allow(self, room: int, *, secret: str, action: str, tokens: list[str]) -> None:
        """``action``: ``add`` or ``remove`` tokens from the room's allowed list."""
        await self.videoroom("allowed", room=room, secret=secret, action=action, allowed=tokens)

    async def participants(self, room: int) -> list[dict[str, Any]]:
        answer = await self.videoroom("listparticipants", room=room)
        return list(answer.get("participants", []))

    async def kick(self, room: int, *, secret: str, participant: int) -> None:
        try:
            await self.videoroom("kick", room=room, secret=secret, id=participant)
        except JanusError as exc:
            if exc.code != NO_SUCH_FEED:
                raise

    async def moderate(
        self, room: int, *, secret: str, participant: int, mid: str, mute: bool
    ) -> None:
        """Mute (or unmute) one of a participant's streams (``mid`` of the m-line)."""
        await self.videoroom(
            "moderate", room=room, secret=secret, id=participant, mid=mid, mute=mute
        )

    async def set_recording(self, room: int, *, secret: str, record: bool) -> None:
        await self.videoroom("enable_recording", room=room, secret=secret, record=record)
