"""A caller and an agent's leg, two real SIP clients (baresip), bridged by the SIP adapter.

The caller dials the hotline, chooses English and an agent, waits in the queue
(hears its place and the hold music); an agent takes the call and the agent's
leg (a second baresip, standing in for Janus's SIP plugin) calls the signed leg
user. Each side sends its own tone from a file; each must hear the other's,
found by frequency in what it recorded. Then the agent holds (the caller hears
the music again) and hangs up from the desk (the hotline ends the call).
"""

from __future__ import annotations

import asyncio
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from sqlalchemy import select

from callcenter.actions import acd
from callcenter.actions.calls import hang_up_call, hold_call, leg_user
from callcenter.bootstrap import close_runtime
from callcenter.runtime import Runtime
from callcenter.store.tables import calls, conversations, messages, offers
from ivr.audio import HOLD_NOTES, read_wav, write_wav
from ivr.engine import Say
from tests.e2e.test_sip import baresip_command, baresip_config, sip_port, start_sip, wait_for_end
from tests.helpers import actor
from tests.voice.tools import free_udp_port

pytestmark = [pytest.mark.slow]

CALLER_HZ = 350.0
AGENT_HZ = 1800.0
OTHER_AGENT_HZ = 2600.0
SUPERVISOR_HZ = 3000.0


def tone_wav(path: Path, hz: float, seconds: float = 90.0) -> None:
    t = np.arange(int(seconds * 8000)) / 8000
    write_wav(path, (np.sin(2 * np.pi * hz * t) * 9000).astype("<i2").tobytes())


def dominant(pcm: np.ndarray) -> float:
    """The strongest frequency of a stretch of 8 kHz samples (Hz)."""
    window = pcm * np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(window))
    spectrum[:5] = 0  # no DC
    return float(np.argmax(spectrum) * 8000 / len(pcm))


def heard(folder: Path) -> np.ndarray:
    files = sorted((folder / "snd").glob("*dec*.wav"))
    assert files, list((folder / "snd").iterdir())
    pcm, rate = read_wav(files[0])
    assert rate == 8000
    return np.frombuffer(pcm, "<i2").astype(np.float32)


def seconds_with(pcm: np.ndarray, hz: float, tolerance: float = 15.0) -> list[int]:
    """The whole seconds of ``pcm`` whose dominant frequency is ``hz``."""
    found = []
    for second in range(len(pcm) // 8000):
        chunk = pcm[second * 8000 : (second + 1) * 8000]
        if np.sqrt(np.mean(chunk**2)) > 300 and abs(dominant(chunk) - hz) < tolerance:
            found.append(second)
    return found


def carries(pcm: np.ndarray, second: int, hz: float) -> bool:
    """Whether second ``second`` of ``pcm`` holds a tone of ``hz`` (a fifth of its power)."""
    chunk = pcm[second * 8000 : (second + 1) * 8000]
    spectrum = np.abs(np.fft.rfft(chunk * np.hanning(len(chunk)))) ** 2
    band = spectrum[int(hz - 15) : int(hz + 16)].sum()  # 1 Hz per bin at 8000 samples
    return bool(spectrum.sum() > 0 and band / spectrum.sum() > 0.2)


def music_seconds(pcm: np.ndarray) -> list[int]:
    found = []
    for second in range(len(pcm) // 8000):
        chunk = pcm[second * 8000 : (second + 1) * 8000]
        loud = np.sqrt(np.mean(chunk**2)) > 300
        if loud and min(abs(dominant(chunk[:4000]) - hz) for hz in HOLD_NOTES) < 15:
            found.append(second)
    return found


def prompt_score(rt: Runtime, pcm: np.ndarray, key: str, locale: str, **params: Any) -> float:
    """How well the IVR's rendering of a prompt is found in what the caller heard (0-1)."""
    channel: Any = rt.channels.get("sip")
    text = rt.text(f"voice.{key}", locale, **params)
    sent = np.frombuffer(
        channel.context.prompts.render(Say(text, locale, None if params else key), "s16"), "<i2"
    ).astype(np.float32)
    corr = np.correlate(pcm, sent, mode="valid")
    energy = np.sqrt(np.convolve(pcm**2, np.ones(len(sent)), mode="valid"))
    return float(np.max(corr / (energy * np.linalg.norm(sent) + 1e-9)))


@pytest_asyncio.fixture
async def bridge_rt(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Runtime]:
    runtime = await start_sip(
        tmp_path, sqlite_url, voice={"hold_announce_seconds": 6, "record_calls": True}
    )
    yield runtime
    await close_runtime(runtime)


async def start_baresip(folder: Path, hz: float, uri: str, log: Path) -> tuple[Any, int]:
    baresip = shutil.which("baresip")
    if baresip is None:
        pytest.skip("baresip (Debian baresip-core) is not installed")
    ctrl = free_udp_port()
    baresip_config(folder, free_udp_port(), ctrl)
    tone_wav(folder / "quiet.wav", hz)  # the source file the config names
    process = await asyncio.create_subprocess_exec(
        baresip,
        "-f",
        str(folder),
        "-e",
        f"/dial {uri}",
        stdout=log.open("wb"),
        stderr=asyncio.subprocess.STDOUT,
    )
    return process, ctrl


async def until(check: Any, limit: float = 30.0) -> Any:
    for _ in range(int(limit * 10)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def the_call(rt: Runtime) -> Any:
    async with rt.db.read() as conn:
        return (await conn.execute(select(calls))).first()


async def to_the_queue(rt: Runtime, ctrl: int) -> None:
    """The caller (baresip, controlled on ``ctrl``) chooses English, then a person."""

    async def at_path(node: str) -> bool:
        row = await the_call(rt)
        return row is not None and node in (row.path or [])

    await until(lambda: at_path("language"))
    await asyncio.sleep(1.0)
    await baresip_command(ctrl, "sndcode", "2")  # English
    await until(lambda: at_path("main"))
    await asyncio.sleep(1.0)
    await baresip_command(ctrl, "sndcode", "0")  # a person
    await until(lambda: at_path("queue"))


async def test_a_caller_and_an_agent_leg_hear_each_other_and_the_hold_music(
    bridge_rt: Runtime, tmp_path: Path
) -> None:
    rt = bridge_rt
    port = sip_port(rt)
    caller_dir, agent_dir = tmp_path / "caller", tmp_path / "agent"
    caller, caller_ctrl = await start_baresip(
        caller_dir, CALLER_HZ, f"sip:hotline@127.0.0.1:{port}", tmp_path / "caller.log"
    )
    agent_process = listener = None
    try:
        await to_the_queue(rt, caller_ctrl)
        await asyncio.sleep(9.0)  # the queue prompts, the place, then music

        agent = await actor(rt, "agent1")
        await acd.set_presence(rt, "available", actor=agent)
        await acd.distribute(rt)
        async with rt.db.read() as conn:
            offer = (await conn.execute(select(offers))).one()
        await acd.accept_offer(rt, offer.id, actor=agent)
        call = await the_call(rt)
        assert call.outcome == "answered" and call.agent_answered_at is not None
        user = leg_user(rt, call.conversation_id, agent.id)
        agent_process, _ = await start_baresip(
            agent_dir, AGENT_HZ, f"sip:{user}@127.0.0.1:{port}", tmp_path / "agent.log"
        )
        supervisor = await actor(rt, "supervisor")
        listen_user = leg_user(rt, call.conversation_id, supervisor.id, "listen")
        listener, _ = await start_baresip(
            tmp_path / "supervisor", SUPERVISOR_HZ, f"sip:{listen_user}@127.0.0.1:{port}",
            tmp_path / "supervisor.log",
        )  # fmt: skip
        clock: Any = rt.clock  # the call's times follow the runtime's clock
        await asyncio.sleep(9.0)  # "connecting", then talking
        clock.advance(seconds=6)
        await hold_call(rt, call.conversation_id, on_hold=True, actor=agent)
        await asyncio.sleep(4.0)
        clock.advance(seconds=4)
        await hold_call(rt, call.conversation_id, on_hold=False, actor=agent)
        await asyncio.sleep(3.0)
        clock.advance(seconds=3)
        await hang_up_call(rt, call.conversation_id, actor=agent)
        (ended,) = await wait_for_end(rt, limit=15)
    finally:
        for process in (caller, agent_process, listener):
            if process is not None and process.returncode is None:
                process.terminate()
                await process.wait()
    logs = (tmp_path / "caller.log").read_text(errors="replace")
    logs += (tmp_path / "agent.log").read_text(errors="replace")
    assert (ended.outcome, ended.talk_s, ended.hold_s) == ("completed", 13, 4), logs
    async with rt.db.read() as conn:
        conversation = (await conn.execute(select(conversations))).one()
    assert conversation.state == "closed"

    to_caller, to_agent = heard(caller_dir), heard(agent_dir)
    # the agent heard the caller's tone, and never the music (the hold mutes them both)
    assert len(seconds_with(to_agent, CALLER_HZ)) >= 4, logs
    # the caller heard music while waiting, the agent's tone, music on hold, the agent again
    agent_heard = seconds_with(to_caller, AGENT_HZ)
    music = music_seconds(to_caller)
    assert len(agent_heard) >= 4, (agent_heard, logs)
    before = [s for s in music if s < agent_heard[0]]
    during_hold = [s for s in music if agent_heard[0] < s < agent_heard[-1]]
    assert len(before) >= 2, music
    assert len(during_hold) >= 2, (music, agent_heard)
    # the supervisor heard both sides; nobody heard the supervisor
    to_supervisor = heard(tmp_path / "supervisor")
    both = [s for s in range(len(to_supervisor) // 8000) if carries(to_supervisor, s, CALLER_HZ)
            and carries(to_supervisor, s, AGENT_HZ)]  # fmt: skip
    assert len(both) >= 3, both
    assert not seconds_with(to_caller, SUPERVISOR_HZ) and not seconds_with(to_agent, SUPERVISOR_HZ)
    # told before being connected that the call may be recorded
    assert prompt_score(rt, to_caller, "call_recorded", "en") > 0.6

    # both sides in one stereo file, kept on the conversation
    async with rt.db.read() as conn:
        kept = (
            await conn.execute(select(messages).where(messages.c.kind == "call_recording"))
        ).one()
    assert kept.conversation_id == conversation.id and kept.meta["seconds"] > 8
    with wave.open(kept.meta["recording"], "rb") as recording:
        assert (recording.getnchannels(), recording.getframerate()) == (2, 8000)
        frames = np.frombuffer(recording.readframes(recording.getnframes()), "<i2")
    stereo = frames.reshape(-1, 2).astype(np.float32)
    assert len(seconds_with(stereo[:, 0], CALLER_HZ)) >= 4  # the caller on the left
    assert len(seconds_with(stereo[:, 1], AGENT_HZ)) >= 4  # the agent on the right


async def test_a_call_transferred_to_another_agent_and_an_agent_leg_that_drops(
    bridge_rt: Runtime, tmp_path: Path
) -> None:
    """Blind transfer: the caller is bridged to the second agent's leg. That leg then
    drops without a hang-up from the desk: the caller hears the apology and waits again."""
    rt = bridge_rt
    port = sip_port(rt)
    caller, ctrl = await start_baresip(
        tmp_path / "caller", CALLER_HZ, f"sip:hotline@127.0.0.1:{port}", tmp_path / "caller.log"
    )
    legs: list[Any] = []
    try:
        await to_the_queue(rt, ctrl)
        a1, a2 = await actor(rt, "agent1"), await actor(rt, "agent2")
        await acd.set_presence(rt, "available", actor=a1)
        await acd.distribute(rt)
        async with rt.db.read() as conn:
            offer = (await conn.execute(select(offers))).one()
        await acd.accept_offer(rt, offer.id, actor=a1)
        conv = offer.conversation_id
        leg1, _ = await start_baresip(
            tmp_path / "agent1", AGENT_HZ, f"sip:{leg_user(rt, conv, a1.id)}@127.0.0.1:{port}",
            tmp_path / "agent1.log",
        )  # fmt: skip
        legs.append(leg1)
        await asyncio.sleep(8.0)
        await acd.set_presence(rt, "available", actor=a2)
        await acd.transfer_conversation(rt, conv, actor=a1, to_agent_id=a2.id)
        leg2, _ = await start_baresip(
            tmp_path / "agent2", OTHER_AGENT_HZ,
            f"sip:{leg_user(rt, conv, a2.id)}@127.0.0.1:{port}", tmp_path / "agent2.log",
        )  # fmt: skip
        legs.append(leg2)
        await asyncio.sleep(7.0)
        leg2.kill()  # the second agent's side is gone: no hang-up from the desk
        await leg2.wait()

        async def waiting_again() -> Any:
            async with rt.db.read() as conn:
                row = (await conn.execute(select(conversations))).one()
            return row.state == "queued"

        await until(waiting_again, limit=40)
        await asyncio.sleep(8.0)  # the apology, then the place and music
        await baresip_command(ctrl, "hangup")
        (ended,) = await wait_for_end(rt, limit=15)
    finally:
        for process in [caller, *legs]:
            if process.returncode is None:
                process.terminate()
                await process.wait()
    log = (tmp_path / "caller.log").read_text(errors="replace")
    assert ended.outcome == "abandoned" and ended.agent_answered_at is not None, log
    to_caller = heard(tmp_path / "caller")
    first, second = seconds_with(to_caller, AGENT_HZ), seconds_with(to_caller, OTHER_AGENT_HZ)
    assert len(first) >= 3 and len(second) >= 3, (first, second, log)
    assert first[-1] < second[0]  # the first agent, then the second
    after = to_caller[second[-1] * 8000 :]
    assert prompt_score(rt, after, "queue_agent_lost", "en") > 0.6
