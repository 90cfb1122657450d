"""Real SIP clients call the real SIP adapter (pyVoIP) and walk the default IVR flow.

sipp places the calls: keys from the RFC 2833 pcaps Debian ships, speech from a
pcap made of espeak-ng audio. sipp's pcap replay needs root, as CI has.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from callcenter.bootstrap import build_runtime, close_runtime, start_runtime
from callcenter.clock import ManualClock
from callcenter.runtime import Runtime
from callcenter.store.tables import calls, conversations, messages, tickets
from ivr.audio import read_wav
from ivr.engine import Say
from ivr.tts import speak_to_wav
from tests.conftest import T0, load_test_city, make_settings
from tests.voice.tools import Step, dtmf_pcap, free_port_pair, free_udp_port, sipp_path, uac_scenario, write_rtp_pcap

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sipp_path() is None, reason="sipp (Debian sip-tester) is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="sipp's pcap replay needs root"),
]

SPEECH = "I want to report a broken street light on Main Street"


@pytest_asyncio.fixture
async def sip_rt(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Runtime]:
    port = free_udp_port()
    rtp = free_port_pair()
    settings = make_settings(
        tmp_path,
        sqlite_url,
        channels=["channels.simulated:SimulatedSms", "channels.sip:SipChannel"],
        channel_options={
            "sip": {"mode": "direct", "host": "127.0.0.1", "port": port,
                    "rtp_low": rtp, "rtp_high": rtp + 200},
        },
        voice={"recognizers": {"en": "pocketsphinx", "zh-CN": "vosk"}},
    )
    # the city first: recognisers build their vocabulary from its categories at start-up
    plain = build_runtime(make_settings(tmp_path, sqlite_url), clock=ManualClock(T0), seed=7)
    await start_runtime(plain, start_jobs=False)
    await load_test_city(plain)
    await close_runtime(plain)
    runtime = build_runtime(settings, clock=ManualClock(T0), seed=7)
    await start_runtime(runtime, start_jobs=False)
    yield runtime
    await close_runtime(runtime)


def sip_port(rt: Runtime) -> int:
    return int(rt.settings.channel_options["sip"]["port"])


def duration(rt: Runtime, key: str, locale: str, **params: Any) -> float:
    channel: Any = rt.channels.get("sip")
    text = rt.text(f"voice.{key}", locale, **params)
    return float(channel.context.prompts.duration(Say(text, locale, key)))


async def run_sipp(rt: Runtime, tmp_path: Path, scenario: str, *, calls_n: int = 1,
                   timeout: float = 150) -> tuple[int, str]:
    path = tmp_path / "caller.xml"
    path.write_text(scenario)
    media = free_port_pair()
    proc = await asyncio.create_subprocess_exec(
        "sipp", "127.0.0.1", "-p", str(free_udp_port()), "-m", str(calls_n),
        "-l", str(calls_n), "-r", str(calls_n), "-sf", str(path),
        "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", str(media),
        "-s", "hotline", "-rsa", f"127.0.0.1:{sip_port(rt)}", "-nostdin",
        "-trace_err", "-error_file", str(tmp_path / "sipp-errors.log"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    errors = tmp_path / "sipp-errors.log"
    return proc.returncode or 0, out.decode(errors="replace") + (
        errors.read_text(errors="replace") if errors.exists() else ""
    )


async def wait_for_end(rt: Runtime, count: int = 1, timeout: float = 30) -> list[Any]:
    for _ in range(int(timeout * 10)):
        async with rt.db.read() as conn:
            rows = (await conn.execute(select(calls).order_by(calls.c.id))).all()
        if len(rows) >= count and all(r.ended_at is not None for r in rows):
            return list(rows)
        await asyncio.sleep(0.1)
    raise AssertionError(f"calls did not end: {rows}")


async def test_a_caller_reports_a_broken_street_light_by_voice(sip_rt: Runtime, tmp_path: Path) -> None:
    rt = sip_rt
    wav = tmp_path / "speech.wav"
    speak_to_wav(SPEECH, "en", wav)
    pcm, _ = read_wav(wav)
    speech_pcap = tmp_path / "speech.pcap"
    speech_seconds = write_rtp_pcap(speech_pcap, pcm)
    describe = duration(rt, "describe_problem", "en")
    steps = [
        Step(1.0, dtmf_pcap("2")),  # English (pressed while the prompt plays)
        Step(1.5, dtmf_pcap("2")),  # report a problem
        Step(describe + 1.5, speech_pcap),  # speak after the tone
        Step(speech_seconds + 4.0, dtmf_pcap("1")),  # confirm the category
    ]
    code, log = await run_sipp(rt, tmp_path, uac_scenario(steps))
    assert code == 0, log
    (call,) = await wait_for_end(rt)
    assert call.dtmf == "221"
    assert call.path[:3] == ["language", "english", "welcome"]
    assert "describe" in call.path and "report" in call.path and call.path[-1] == "goodbye"
    assert call.outcome == "ticket" and call.from_number == "+8613800000000"
    assert call.answered_at is not None and call.ended_at is not None
    # the recording holds the speech (sipp sends no packets in silence)
    assert speech_seconds - 0.3 <= call.recording_seconds <= speech_seconds + 0.5
    assert Path(call.recording_path).is_file()
    transcript = call.transcript.lower()
    assert "street light" in transcript and "broken" in transcript, transcript
    async with rt.db.read() as conn:
        ticket = (await conn.execute(select(tickets))).one()
        conversation = (await conn.execute(
            select(conversations).where(conversations.c.id == call.conversation_id))).one()
        sms = (await conn.execute(select(messages).where(messages.c.channel == "sms"))).all()
    assert rt.directory.category_by_id[ticket.category_id].code == "street_light"
    assert ticket.origin_channel == "voice" and ticket.state == "dispatched"
    assert ticket.description == call.transcript and ticket.locale == "en"
    assert conversation.kind == "call" and conversation.channel == "sip"
    assert conversation.ticket_id == ticket.id and conversation.state == "closed"
    assert len(sms) == 1 and ticket.number in sms[0].body  # mobile caller: SMS confirmation
