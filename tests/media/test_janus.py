"""The media server as the hotline runs it: configuration, driver, health, and real
media between two real Chromium participants, checked by content."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from urllib.parse import urlencode

import pytest

from callcenter.media.janus import VIDEOROOM, JanusError
from tests.media import harness
from tests.media.conftest import Hotline

pytestmark = pytest.mark.slow


async def _room(hotline: Hotline, room: int, tokens: list[str]) -> tuple[str, str]:
    assert hotline.rt.media is not None
    node = await hotline.rt.media.place()
    secret, pin = secrets.token_urlsafe(16), f"{secrets.randbelow(10**6):06d}"
    await node.client.create_room(room, secret=secret, pin=pin, description="test", allowed=tokens)
    for token in tokens:
        await node.client.add_token(token, [VIDEOROOM])
    return secret, pin


async def test_two_browsers_receive_each_others_tone_and_picture(
    hotline: Hotline, tmp_path
) -> None:
    tokens = [secrets.token_urlsafe(16) for _ in range(2)]
    secret, pin = await _room(hotline, 4242, tokens)
    fakes = [harness.Fake(440, "red"), harness.Fake(1000, "blue")]
    async with harness.Participants(tmp_path / "fake", fakes) as people:
        pages = []
        for person, token, name in zip(people, tokens, ("alice", "bob"), strict=True):
            query = urlencode(
                {"server": hotline.ws(), "token": token, "room": 4242, "pin": pin, "display": name}
            )
            pages.append(await person.page(f"{hotline.url}/test-media/bare.html?{query}"))
        seen_by_alice = await harness.wait_for(
            pages[0],
            lambda r: any(x["colour_name"] == "blue" and harness.hears(x, 1000) for x in r),
            what="bob's tone and picture at alice",
        )
        seen_by_bob = await harness.wait_for(
            pages[1],
            lambda r: any(x["colour_name"] == "red" and harness.hears(x, 440) for x in r),
            what="alice's tone and picture at bob",
        )
        assert [x["label"] for x in seen_by_alice] == ["bob"]
        assert [x["label"] for x in seen_by_bob] == ["alice"]
        before = await harness.frames_decoded(pages[0])
        await asyncio.sleep(1.5)
        assert await harness.frames_decoded(pages[0]) > before + 10  # video keeps flowing

        client = hotline.rt.media.place  # the driver sees both and can remove one
        node = await client()
        people_in_room = await node.client.participants(4242)
        assert sorted(p["display"] for p in people_in_room) == ["alice", "bob"]
        bob = next(p for p in people_in_room if p["display"] == "bob")
        await node.client.kick(4242, secret=secret, participant=bob["id"])
        await harness.wait_for(pages[0], lambda r: r == [], what="bob's feed gone")
        with pytest.raises(JanusError):
            await node.client.kick(4242, secret="wrong", participant=bob["id"])
        await node.client.destroy_room(4242, secret=secret)
        assert not await node.client.room_exists(4242)


async def test_a_crash_of_janus_is_reported_and_janus_comes_back(hotline: Hotline) -> None:
    media = hotline.rt.media
    assert media is not None and media.process is not None and media.process.pid
    sub = hotline.rt.bus.subscribe()
    os.kill(media.process.pid, signal.SIGKILL)
    down = await asyncio.wait_for(sub.__aiter__().__anext__(), 5)
    assert down.type == "media.changed" and down.data["up"] is False
    from aiohttp import ClientSession

    async with ClientSession() as http:
        async with http.get(f"{hotline.url}/api/health") as response:
            health = await response.json()
        assert health["media"]["up"] is False
        up = await asyncio.wait_for(sub.__aiter__().__anext__(), 15)
        assert up.data["up"] is True and media.nodes["local"].restarts == 1
        async with http.get(f"{hotline.url}/api/health") as response:
            assert (await response.json())["media"]["up"] is True
    sub.close()
