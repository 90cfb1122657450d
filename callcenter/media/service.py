"""The media service: the Janus nodes, their health, and where a room goes.

One per runtime (``rt.media``). It starts the embedded Janus or connects to the
configured nodes, checks every node each ``media.health_seconds`` (and at once
when the embedded process exits), publishes ``media.changed`` when a node goes
down or comes back, and calls the ``on_up`` hooks when a node returns so that
what lived on it (rooms of sessions in progress) can be made again. See
``docs/media.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from callcenter.bus import EventBus
from callcenter.bus import events as ev
from callcenter.clock import Clock
from callcenter.config import Settings
from callcenter.media.janus import JanusClient, JanusUnavailable, NodeAddress
from callcenter.media.process import JanusProcess

log = logging.getLogger(__name__)


class MediaUnavailable(RuntimeError):
    """No media node is up (or media is off)."""


@dataclass
class MediaNode:
    client: JanusClient
    weight: float = 1.0
    up: bool = False
    since: datetime | None = None
    error: str | None = None
    restarts: int = 0

    @property
    def name(self) -> str:
        return self.client.node.name

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "up": self.up,
            "since": self.since.isoformat() if self.since else None,
            "error": self.error,
            "restarts": self.restarts,
        }


NodeHook = Callable[[MediaNode], Awaitable[None]]


@dataclass
class MediaService:
    settings: Settings
    bus: EventBus
    clock: Clock
    nodes: dict[str, MediaNode] = field(default_factory=dict)
    process: JanusProcess | None = None
    on_up: list[NodeHook] = field(default_factory=list)
    _monitor: asyncio.Task[None] | None = None

    @property
    def mode(self) -> str:
        return self.settings.media.janus

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def recordings_dir(self) -> Path:
        return (
            self.settings.media.recordings_dir or self.settings.data_dir / "recordings"
        ).resolve()

    async def start(self) -> None:
        media = self.settings.media
        if self.mode == "embedded":
            self.process = JanusProcess(
                media, (self.settings.data_dir / "janus").resolve(), on_exit=self._process_exited
            )
            cfg = self.process.config
            local = NodeAddress(
                "local", cfg.url, cfg.ws_url, cfg.admin_url, cfg.admin_secret, cfg.admin_key
            )
            self.nodes[local.name] = MediaNode(JanusClient(local))
            await self.process.start()
            await self.wait_up("local", within=15)
        elif self.mode == "external":
            for n in media.nodes:
                address = NodeAddress(
                    n.name,
                    n.url.rstrip("/"),
                    n.ws_url,
                    n.admin_url.rstrip("/"),
                    n.admin_secret,
                    n.admin_key,
                )
                self.nodes[n.name] = MediaNode(JanusClient(address), weight=n.weight)
            for node in self.nodes.values():
                await self._check(node)
        if self.enabled:
            self._monitor = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self.process is not None:
            await self.process.stop()
        for node in self.nodes.values():
            await node.client.close()

    async def wait_up(self, name: str, *, within: float) -> None:
        node = self.nodes[name]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not await self._check(node, starting=True):
            if loop.time() > deadline:
                raise MediaUnavailable(f"media node {name} did not start: {node.error}")
            await asyncio.sleep(0.1)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.media.health_seconds)
            for node in list(self.nodes.values()):
                try:
                    await self._check(node)
                except Exception:  # a hook's failure must not stop the watch
                    log.exception("media node %s: check failed", node.name)

    async def _check(self, node: MediaNode, *, starting: bool = False) -> bool:
        try:
            await node.client.ping()
        except JanusUnavailable as exc:
            if starting:  # not down: not up yet
                node.error = str(exc)
            else:
                self._mark(node, up=False, error=str(exc))
            return False
        if not node.up:
            came_back = node.since is not None  # it was up once, then down
            self._mark(node, up=True, error=None)
            if came_back:
                node.restarts += 1
            for hook in self.on_up:
                await hook(node)
        return True

    async def _process_exited(self, code: int | None) -> None:
        node = self.nodes.get("local")
        if node is not None:
            self._mark(node, up=False, error=f"exited with {code}")

    def _mark(self, node: MediaNode, *, up: bool, error: str | None) -> None:
        changed = node.up != up or node.since is None
        node.error = error
        if not changed:
            return
        node.up = up
        node.since = self.clock.now()
        if up:
            log.info("media node %s is up", node.name)
        else:
            log.error("media node %s is down: %s", node.name, error)
        self.bus.publish(ev.media_changed(node.status(), self.healthy, self.clock.now()))

    @property
    def healthy(self) -> bool:
        """Media works: at least one node is up."""
        return any(n.up for n in self.nodes.values())

    def status(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "up": self.healthy if self.enabled else None,
            "nodes": [n.status() for n in self.nodes.values()],
        }

    def node(self, name: str) -> MediaNode:
        node = self.nodes.get(name)
        if node is None or not node.up:
            raise MediaUnavailable(name)
        return node

    async def place(self) -> MediaNode:
        """The node a new room goes to: of those up, the one with the fewest rooms by weight.

        The count comes from the nodes themselves, so several hotline servers in
        front of the same nodes agree without sharing anything else.
        """
        best: tuple[float, MediaNode] | None = None
        for node in self.nodes.values():
            if not node.up:
                continue
            try:
                load = len(await node.client.list_rooms()) / node.weight
            except JanusUnavailable as exc:
                self._mark(node, up=False, error=str(exc))
                continue
            if best is None or load < best[0]:
                best = (load, node)
        if best is None:
            raise MediaUnavailable("no media node is up")
        return best[1]
