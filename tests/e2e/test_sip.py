"""Real SIP clients call the real SIP adapter (pyVoIP) and walk the default IVR flow.

sipp places the calls: keys from the RFC 2833 pcaps Debian ships, speech from a
pcap made of espeak-ng audio. sipp's pcap replay needs root, as CI has.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
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
from ivr.audio import read_wav, write_wav
from ivr.engine import Say
from ivr.tts import speak_to_wav
from tests.conftest import T0, load_test_city, make_settings
from tests.voice.tools import (
    Step,
    dtmf_pcap,
    free_port_pair,
    free_udp_port,
    sipp_path,
    uac_scenario,
    write_rtp_pcap,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sipp_path() is None, reason="sipp (Debian sip-tester) is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="sipp's pcap replay needs root"),
]

HERE = Path(__file__).resolve().parents[1] / "voice"
SPEECH = "I want to report a broken street light on Main Street"


async def start_sip(
    tmp_path: Path, sqlite_url: str, voice: dict[str, Any] | None = None, **sip: Any
) -> Runtime:
    rtp = free_port_pair()
    options = {
        "mode": "direct",
        "host": "127.0.0.1",
        "port": free_udp_port(),
        "rtp_low": rtp,
        "rtp_high": rtp + 200,
        **sip,
    }
    settings = make_settings(
        tmp_path,
        sqlite_url,
        channels=["channels.simulated:SimulatedSms", "channels.sip:SipChannel"],
        channel_options={"sip": options},
        voice={"recognizers": {"en": "pocketsphinx", "zh-CN": "vosk"}, **(voice or {})},
    )
    # the city first: recognisers build their vocabulary from its categories at start-up
    plain = build_runtime(make_settings(tmp_path, sqlite_url), clock=ManualClock(T0), seed=7)
    await start_runtime(plain, start_jobs=False)
    await load_test_city(plain)
    await close_runtime(plain)
    runtime = build_runtime(settings, clock=ManualClock(T0), seed=7)
    await start_runtime(runtime, start_jobs=False, listen=True)
    return runtime


@pytest_asyncio.fixture
async def sip_rt(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Runtime]:
    runtime = await start_sip(tmp_path, sqlite_url)
    yield runtime
    await close_runtime(runtime)


def sip_port(rt: Runtime) -> int:
    return int(rt.settings.channel_options["sip"]["port"])


def duration(rt: Runtime, key: str, locale: str, **params: Any) -> float:
    channel: Any = rt.channels.get("sip")
    text = rt.text(f"voice.{key}", locale, **params)
    return float(channel.context.prompts.duration(Say(text, locale, key)))


async def run_sipp(
    rt: Runtime,
    tmp_path: Path,
    scenario: str,
    *,
    calls_n: int = 1,
    limit: float = 150,
    target: int | None = None,
) -> tuple[int, str]:
    path = tmp_path / "caller.xml"
    path.write_text(scenario)
    media = free_port_pair()
    proc = await asyncio.create_subprocess_exec(
        "sipp",
        "127.0.0.1",
        "-p",
        str(free_udp_port()),
        "-m",
        str(calls_n),
        "-l",
        str(calls_n),
        "-r",
        str(calls_n),
        "-sf",
        str(path),
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-mp",
        str(media),
        "-s",
        "hotline",
        "-rsa",
        f"127.0.0.1:{target or sip_port(rt)}",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(tmp_path / "sipp-errors.log"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    errors = tmp_path / "sipp-errors.log"
    return proc.returncode or 0, out.decode(errors="replace") + (
        errors.read_text(errors="replace") if errors.exists() else ""
    )


async def wait_for_end(rt: Runtime, count: int = 1, limit: float = 30) -> list[Any]:
    for _ in range(int(limit * 10)):
        async with rt.db.read() as conn:
            rows = (await conn.execute(select(calls).order_by(calls.c.id))).all()
        if len(rows) >= count and all(r.ended_at is not None for r in rows):
            return list(rows)
        await asyncio.sleep(0.1)
    raise AssertionError(f"calls did not end: {rows}")


def speech(tmp_path: Path, text: str, locale: str) -> tuple[Path, float]:
    """A pcap of ``text`` spoken by espeak-ng as PCMU RTP, and its length in seconds."""
    wav = tmp_path / "speech.wav"
    speak_to_wav(text, locale, wav)
    pcm, _ = read_wav(wav)
    pcap = tmp_path / "speech.pcap"
    return pcap, write_rtp_pcap(pcap, pcm)


async def test_a_caller_reports_a_broken_street_light_by_voice(
    sip_rt: Runtime, tmp_path: Path
) -> None:
    rt = sip_rt
    speech_pcap, speech_seconds = speech(tmp_path, SPEECH, "en")
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
    assert await asyncio.to_thread(Path(call.recording_path).is_file)
    transcript = call.transcript.lower()
    assert "street light" in transcript and "broken" in transcript, transcript
    async with rt.db.read() as conn:
        ticket = (await conn.execute(select(tickets))).one()
        conversation = (
            await conn.execute(
                select(conversations).where(conversations.c.id == call.conversation_id)
            )
        ).one()
        sms = (await conn.execute(select(messages).where(messages.c.channel == "sms"))).all()
    assert rt.directory.category_by_id[ticket.category_id].code == "street_light"
    assert ticket.origin_channel == "voice" and ticket.state == "dispatched"
    assert ticket.description == call.transcript and ticket.locale == "en"
    assert conversation.kind == "call" and conversation.channel == "sip"
    assert conversation.ticket_id == ticket.id and conversation.state == "closed"
    assert len(sms) == 1 and ticket.number in sms[0].body  # mobile caller: SMS confirmation


async def test_a_caller_who_hangs_up_right_after_speaking_is_not_lost(
    sip_rt: Runtime, tmp_path: Path
) -> None:
    """The transcript, the recording and a ticket (unconfirmed) survive the hang-up."""
    rt = sip_rt
    speech_pcap, speech_seconds = speech(tmp_path, SPEECH, "en")
    steps = [
        Step(1.0, dtmf_pcap("2")),
        Step(1.5, dtmf_pcap("2")),
        Step(duration(rt, "describe_problem", "en") + 1.5, speech_pcap),
    ]
    # BYE 0.3 s after the last word: before the recogniser's end of turn
    scenario = uac_scenario(steps, hang_up_after=speech_seconds + 0.3)
    code, log = await run_sipp(rt, tmp_path, scenario)
    assert code == 0, log
    (call,) = await wait_for_end(rt)
    assert call.outcome == "ticket" and call.end_node == "describe"
    assert "street light" in call.transcript.lower(), call.transcript
    assert call.recording_path and await asyncio.to_thread(Path(call.recording_path).is_file)
    recordings = list((Path(rt.settings.data_dir) / "recordings").rglob("*.wav"))
    assert [str(p) for p in recordings] == [call.recording_path]  # none left orphaned
    async with rt.db.read() as conn:
        ticket = (await conn.execute(select(tickets))).one()
    assert ticket.state == "new" and ticket.description == call.transcript
    assert ticket.title.startswith("[not confirmed by the caller]")


async def test_a_call_that_sends_no_audio_is_ended_and_offered_to_no_one(
    tmp_path: Path, sqlite_url: str
) -> None:
    rt = await start_sip(tmp_path, sqlite_url, voice={"no_media_seconds": 3})
    try:
        began = asyncio.get_running_loop().time()
        code, log = await run_sipp(rt, tmp_path, uac_scenario([], wait_bye_ms=30_000))
        assert code == 0, log  # the hotline hung up on it
        (call,) = await wait_for_end(rt)
        assert asyncio.get_running_loop().time() - began < 15
        assert call.outcome == "no_media" and call.recording_path is None
        async with rt.db.read() as conn:
            waiting = (
                await conn.execute(select(conversations).where(conversations.c.state == "queued"))
            ).all()
            offered = (await conn.execute(select(messages))).all()
        assert waiting == [] and offered == []
    finally:
        await close_runtime(rt)


async def test_whisper_hears_a_spoken_address_and_the_ticket_goes_to_its_street(
    tmp_path: Path, sqlite_url: str, whisper_model: Path
) -> None:
    """The real recogniser in a real call: the place said routes like a typed address."""
    rt = await start_sip(
        tmp_path,
        sqlite_url,
        voice={"recognizers": {"en": "whisper"}, "whisper_model": str(whisper_model)},
    )
    try:
        speech_pcap, speech_seconds = speech(
            tmp_path, "The street light outside number twelve Harbour Road is broken", "en"
        )
        steps = [
            Step(1.0, dtmf_pcap("2")),
            Step(1.5, dtmf_pcap("2")),
            Step(duration(rt, "describe_problem", "en") + 1.5, speech_pcap),
            Step(speech_seconds + 6.0, dtmf_pcap("1")),  # confirm, once Whisper has answered
        ]
        code, log = await run_sipp(rt, tmp_path, uac_scenario(steps))
        assert code == 0, log
        (call,) = await wait_for_end(rt)
        assert call.dtmf == "221" and call.outcome == "ticket", call
        assert "harbour road" in call.transcript.lower(), call.transcript
        async with rt.db.read() as conn:
            ticket = (await conn.execute(select(tickets))).one()
        assert rt.directory.category_by_id[ticket.category_id].code == "street_light"
        assert ticket.address == "Harbour Road" and ticket.state == "dispatched"
        assert rt.directory.by_id[ticket.street_id].code == "XG-GW"
    finally:
        await close_runtime(rt)


async def test_a_call_over_the_cap_hears_the_lines_are_busy(
    tmp_path: Path, sqlite_url: str
) -> None:
    rt = await start_sip(tmp_path, sqlite_url, voice={"max_calls": 1})
    try:
        first_dir, second_dir = tmp_path / "first", tmp_path / "second"
        first_dir.mkdir()
        second_dir.mkdir()
        holding = uac_scenario([Step(1.0, dtmf_pcap("1"))], hang_up_after=14.0)
        turned_away = uac_scenario([], caller="+8613900000077", wait_bye_ms=30_000)

        async def later() -> tuple[int, str]:
            await asyncio.sleep(3.0)
            return await run_sipp(rt, second_dir, turned_away)

        (code1, log1), (code2, log2) = await asyncio.gather(
            run_sipp(rt, first_dir, holding), later()
        )
        assert code1 == 0, log1
        assert code2 == 0, log2  # answered, told, and hung up on by the hotline
        rows = await wait_for_end(rt, 2)
        busy = [r for r in rows if r.from_number == "+8613900000077"]
        assert len(busy) == 1 and busy[0].outcome == "busy"
        assert [r.outcome for r in rows if r not in busy] == ["abandoned"]
    finally:
        await close_runtime(rt)


async def test_a_pcma_caller_waits_in_the_queue_and_hangs_up(
    sip_rt: Runtime, tmp_path: Path
) -> None:
    """PCMA only (pyVoIP would encode it as PCMU), keys during prompts, abandoning the queue."""
    rt = sip_rt
    steps = [Step(1.0, dtmf_pcap("1")), Step(1.5, dtmf_pcap("0"))]
    code, log = await run_sipp(
        rt, tmp_path, uac_scenario(steps, codecs="8 101", caller="13900000003", hang_up_after=8.0)
    )
    assert code == 0, log
    (call,) = await wait_for_end(rt)
    assert call.dtmf == "10" and call.path[-1] == "queue"
    assert call.outcome == "abandoned" and call.queue_wait_s is not None
    async with rt.db.read() as conn:
        conversation = (
            await conn.execute(
                select(conversations).where(conversations.c.id == call.conversation_id)
            )
        ).one()
    assert conversation.state == "closed" and conversation.queue == "voice"
    assert conversation.locale == "zh-CN" and conversation.address == "+8613900000003"
    channel: Any = rt.channels.get("sip")
    # the call's thread lets go of its line just after the call's end is recorded
    deadline = time.monotonic() + 10
    for _ in range(100):
        if not channel.active_calls or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert channel.active_calls == 0


async def test_a_call_through_kamailio_as_registrar(tmp_path: Path, sqlite_url: str) -> None:
    kamailio = shutil.which("kamailio")
    if kamailio is None:
        pytest.skip("kamailio is not installed")
    port = free_udp_port()
    config = tmp_path / "kamailio.cfg"
    config.write_text((HERE / "kamailio.cfg").read_text().replace("__PORT__", str(port)))
    registrar = await asyncio.create_subprocess_exec(
        kamailio,
        "-f",
        str(config),
        "-DD",
        "-E",
        "-n",
        "1",
        "-Y",
        str(tmp_path / "kam"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=(tmp_path / "kamailio.log").open("wb"),
    )
    (tmp_path / "kam").mkdir(exist_ok=True)
    rt: Runtime | None = None
    try:
        await asyncio.sleep(1.0)
        assert registrar.returncode is None, (tmp_path / "kamailio.log").read_text()
        rt = await start_sip(
            tmp_path,
            sqlite_url,
            mode="register",
            server="127.0.0.1",
            server_port=port,
            username="hotline",
            password="",
        )
        from callcenter.actions.tickets import TicketDraft, create_ticket
        from callcenter.domain.workflow import SYSTEM

        ticket = await create_ticket(
            rt, TicketDraft("Pothole", category="road_damage"), actor=SYSTEM, dispatch=True
        )
        keys = ["2", "1", *ticket["number"].replace("-", ""), "#"]
        steps = [Step(1.0, dtmf_pcap(keys[0])), Step(1.5, dtmf_pcap(keys[1]))]
        steps += [Step(0.4, dtmf_pcap(k)) for k in keys[2:]]
        code, log = await run_sipp(rt, tmp_path, uac_scenario(steps), target=port)
        assert code == 0, log + (tmp_path / "kamailio.log").read_text()[-3000:]
        (call,) = await wait_for_end(rt)
        assert call.dtmf == "".join(keys)
        assert call.path[-2:] == ["ticket_status", "goodbye"]
        # sipp called the registrar's port; only its location lookup knew the adapter's
        channel: Any = rt.channels.get("sip")
        assert channel.phone.get_status().name == "REGISTERED"
        assert channel.port != port and call.provider_call_id
    finally:
        if rt is not None:
            await close_runtime(rt)
        registrar.terminate()
        await registrar.wait()


def baresip_config(folder: Path, sip_port_: int, ctrl_port: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "snd").mkdir(exist_ok=True)
    (folder / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                f"sip_listen 127.0.0.1:{sip_port_}",
                "audio_player aubridge,hotline",
                f"audio_source aufile,{folder / 'quiet.wav'}",
                "audio_alert aubridge,hotline",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aubridge.so",
                "module aufile.so",
                "module sndfile.so",
                "module_app account.so",
                "module_app menu.so",
                "module_app ctrl_tcp.so",
                f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
                f"snd_path {folder / 'snd'}",
                "",
            ]
        )
    )
    write_wav(folder / "quiet.wav", b"\x00\x00" * 8000 * 60)
    (folder / "accounts").write_text("<sip:+8613700000000@127.0.0.1>;regint=0\n")


async def baresip_command(port: int, command: str, params: str = "") -> None:
    import json

    deadline = time.monotonic() + 15  # a loaded machine starts baresip slowly
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
    writer.write(f"{len(body)}:".encode() + body + b",")
    await writer.drain()
    await asyncio.wait_for(reader.read(4096), 5)
    writer.close()


async def test_baresip_hears_the_prompt_and_its_keys_are_read(
    sip_rt: Runtime, tmp_path: Path
) -> None:
    """A second, independent SIP client: it dials, presses keys and records what it hears."""
    import numpy as np

    baresip = shutil.which("baresip")
    if baresip is None:
        pytest.skip("baresip (Debian baresip-core) is not installed")
    rt = sip_rt
    folder = tmp_path / "baresip"
    ctrl = free_udp_port()
    baresip_config(folder, free_udp_port(), ctrl)
    process = await asyncio.create_subprocess_exec(
        baresip,
        "-f",
        str(folder),
        "-e",
        f"/dial sip:hotline@127.0.0.1:{sip_port(rt)}",
        stdout=(tmp_path / "baresip.log").open("wb"),
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        language = duration(rt, "language_zh", "zh-CN") + duration(rt, "language_en", "en")
        await asyncio.sleep(2.0 + language)
        await baresip_command(ctrl, "sndcode", "2")  # English
        await asyncio.sleep(3.0)
        await baresip_command(ctrl, "sndcode", "0")  # an agent
        await asyncio.sleep(3.0)
        await baresip_command(ctrl, "hangup")
        (call,) = await wait_for_end(rt)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
    log = (tmp_path / "baresip.log").read_text(errors="replace")
    assert call.dtmf == "20", log
    assert call.path[:3] == ["language", "english", "welcome"] and "queue" in call.path
    # what baresip heard begins with the language prompt, as the hotline rendered it
    heard = sorted((folder / "snd").glob("*dec*.wav"))
    assert heard, log
    pcm, rate = read_wav(heard[0])
    assert rate == 8000
    got = np.frombuffer(pcm, "<i2").astype(np.float32)
    channel: Any = rt.channels.get("sip")
    text = rt.text("voice.language_zh", "zh-CN")
    sent = np.frombuffer(
        channel.context.prompts.render(Say(text, "zh-CN", "language_zh"), "s16"), "<i2"
    ).astype(np.float32)
    window = got[: len(sent) + 3 * 8000]
    corr = np.correlate(window, sent, mode="valid")
    energy = np.sqrt(np.convolve(window**2, np.ones(len(sent)), mode="valid"))
    score = float(np.max(corr / (energy * np.linalg.norm(sent) + 1e-9)))
    assert score > 0.6, score
