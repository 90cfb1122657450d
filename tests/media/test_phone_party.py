"""A party without a smartphone joins the mediation by telephone: baresip, a real SIP
client, calls the hotline's mediation line from the respondent's number playing a
1000 Hz tone, keys in the PIN and consent, waits, is admitted by the mediator in a real
Chromium (440 Hz, red), and then each hears the other: the mediator's page receives the
phone's tone from the room, and baresip's recording of what it heard holds 440 Hz."""

from __future__ import annotations

import asyncio
import math
import secrets
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web
from sqlalchemy import select

from callcenter.actions import mediations as med
from callcenter.actions.staff import log_in
from callcenter.bootstrap import build_runtime, create_app
from callcenter.store.tables import audit_events, calls, mediation_parties, mediation_recordings
from ivr.audio import read_wav, write_wav
from tests.conftest import make_settings
from tests.e2e.test_cli import free_port
from tests.e2e.test_sip import baresip_command, baresip_config
from tests.media import harness
from tests.media.conftest import Hotline
from tests.media.test_mediation_room import invitation, mediator_page, scheduled_session
from tests.voice.tools import free_port_pair, free_udp_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip is not installed"),
]

MEDIATOR = harness.Fake(440, "red")
PHONE_HZ = 1000
CALLER = "+8613700000000"  # baresip's account in baresip_config
PHONES = {"applicant": "+8613800000021", "respondent": CALLER}


@pytest_asyncio.fixture
async def hotline(media_ns: str, tmp_path: Path, sqlite_url: str) -> AsyncIterator[Hotline]:
    """The hotline with its embedded Janus and its SIP side, in the namespace."""
    port, sip, rtp = free_port(), free_udp_port(), free_port_pair()
    settings = make_settings(
        tmp_path,
        sqlite_url,
        port=port,
        media={"janus": "embedded", "health_seconds": 0.5, "restart_seconds": 0.3},
        channels=["channels.simulated:SimulatedSms", "channels.sip:SipChannel"],
        channel_options={
            "sip": {
                "mode": "direct", "host": "127.0.0.1", "port": sip,
                "rtp_low": rtp, "rtp_high": rtp + 200,
            }
        },
        voice={"recognizers": {"en": "none", "zh-CN": "none"}},
    )  # fmt: skip
    rt = build_runtime(settings, seed=secrets.randbits(32))
    app = create_app(settings, runtime=rt)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Hotline(rt, f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()


def tone_wav(path: Path, hz: int, seconds: int = 90) -> None:
    samples = (int(8000 * math.sin(2 * math.pi * hz * i / 8000)) for i in range(8000 * seconds))
    write_wav(path, struct.pack(f"<{8000 * seconds}h", *samples))


def dominant_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum[1:]) + 1) * rate / len(x)


async def party_row(rt: Any, phone: str) -> Any:
    async with rt.db.read() as conn:
        return (
            await conn.execute(select(mediation_parties).where(mediation_parties.c.phone == phone))
        ).one()


async def until_presence(rt: Any, phone: str, presence: str, within: float) -> Any:
    for _ in range(int(within * 4)):
        row = await party_row(rt, phone)
        if row.presence == presence:
            return row
        await asyncio.sleep(0.25)
    raise AssertionError(f"the phone party never got {presence}: {row.presence}")


async def test_a_party_joins_by_telephone_and_hears_the_room(
    hotline: Hotline, tmp_path: Path
) -> None:
    rt = hotline.rt
    _, mediator, username, case = await scheduled_session(rt, PHONES)
    _, pin = await invitation(rt, CALLER)
    session = await log_in(rt, username, "demo12345")
    sip_port = int(rt.settings.channel_options["sip"]["port"])

    folder = tmp_path / "baresip"
    ctrl = free_udp_port()
    baresip_config(folder, free_udp_port(), ctrl)
    tone_wav(folder / "quiet.wav", PHONE_HZ)  # what the caller's microphone says

    async with harness.Participants(tmp_path / "fake", [MEDIATOR]) as (m_person,):
        mpage = await mediator_page(m_person, hotline, session.token, case["id"])
        process = await asyncio.create_subprocess_exec(
            "baresip", "-f", str(folder), "-e", f"/dial sip:mediation@127.0.0.1:{sip_port}",
            stdout=(tmp_path / "baresip.log").open("wb"), stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            await asyncio.sleep(3)  # answered; the keys are typed ahead of the prompts
            for key in [*pin, "#", "1"]:  # the PIN, then "1": agrees to recording
                await baresip_command(ctrl, "sndcode", key)
                await asyncio.sleep(0.4)
            waiting = await until_presence(rt, CALLER, "waiting", within=60)
            assert waiting.consent is True

            await mpage.click("tr[data-presence=waiting] button[data-action=admit]")
            await until_presence(rt, CALLER, "in_room", within=10)
            heard = await harness.wait_for(
                mpage,
                lambda r: any(harness.hears(x, PHONE_HZ) for x in r),
                within=30,
                what="the phone's tone at the mediator",
            )
            assert any("Tom Baker" in (x["label"] or "") for x in heard), heard
            await asyncio.sleep(6)  # the room's sound (after the "you are in" prompt)

            # the mediator mutes the caller like any party: the tone stops, the feed stays
            row = "tr[data-presence=in_room]:has-text('Tom Baker')"
            await mpage.click(f"{row} button[data-action=mute]")
            await harness.wait_for(
                mpage,
                lambda r: bool(r) and not any(harness.hears(x, PHONE_HZ) for x in r),
                within=20, what="the caller muted",
            )  # fmt: skip
            # ... and removes them: the feed goes, the hotline hangs up on them
            mpage.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
            await mpage.click(f"{row} button[data-action=remove]")
            await harness.wait_for(mpage, lambda r: r == [], within=20, what="the feed gone")
            removed = await until_presence(rt, CALLER, "removed", within=5)
            for _ in range(120):  # the hotline hangs up on them (after saying why)
                if "terminated (duration" in (tmp_path / "baresip.log").read_text(
                    "utf-8", "replace"
                ):
                    break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError("the hotline did not end the removed caller's call")
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()

    log = (tmp_path / "baresip.log").read_text(errors="replace")
    recordings = sorted((folder / "snd").glob("*dec*.wav"))
    assert recordings, log
    pcm, rate = read_wav(recordings[0])
    # somewhere in what the caller heard there are three seconds of the mediator's tone
    # (the prompts are speech: none of them is a steady 440 Hz for that long)
    second = 2 * rate
    tones = [
        abs(dominant_hz(pcm[i : i + second], rate) - MEDIATOR.hz) < 15
        for i in range(0, len(pcm) - second, second)
    ]
    assert any(all(tones[i : i + 3]) for i in range(len(tones))), (tones, log)
    assert removed.seat_hash is not None  # removed, not left: the link no longer lets in
    async with rt.db.read() as conn:
        steps = (
            (
                await conn.execute(
                    select(audit_events.c.action).where(audit_events.c.entity_id == case["id"])
                )
            )
            .scalars()
            .all()
        )
    assert "mediation.party.phone_in_room" in steps
    async with rt.db.read() as conn:
        call = (await conn.execute(select(calls))).one()  # kept like any call
    assert (call.from_number, call.outcome) == (CALLER, "mediation") and call.ended_at

    # the recording, joined by the job, has the caller's voice (Janus records its own
    # publishers; the bridge kept the caller's) beside the mediator's
    await med.end_session(rt, case["id"], "none", actor=mediator)
    assert rt.runner is not None
    for _ in range(5):
        await rt.runner.drain()
    async with rt.db.read() as conn:
        rec = (await conn.execute(select(mediation_recordings))).one()
    assert rec.state == "ready", rec.error
    wav = tmp_path / "recording.wav"
    source = rt.settings.data_dir / rec.path
    command = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-ac", "1", "-ar", "8000"]
    await asyncio.to_thread(subprocess.run, [*command, str(wav)], check=True)
    mixed, rate = read_wav(wav)
    x = np.frombuffer(mixed, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x))
    band = {hz: spectrum[int((hz - 10) * len(x) / rate) : int((hz + 10) * len(x) / rate)].max()
            for hz in (MEDIATOR.hz, PHONE_HZ, 700)}  # fmt: skip
    assert band[PHONE_HZ] > 20 * band[700] and band[MEDIATOR.hz] > 20 * band[700], band
