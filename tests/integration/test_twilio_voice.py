"""Twilio Voice: signed webhooks walk the default flow; the TwiML is read back as Twilio would.

Webhooks are signed with the twilio package's own RequestValidator, exactly as
Twilio signs them; TwiML is parsed as XML and checked verb by verb.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from callcenter.runtime import Runtime
from callcenter.store.tables import calls, conversations, messages, tickets
from channels.twilio.webhooks import TwilioWebhook
from tests.conftest import T0, load_test_city, make_settings

TOKEN = "test-auth-token"
PUBLIC = "https://hotline.example.gov.cn"


class Phone:
    """Plays Twilio: posts signed webhooks for one call and follows the TwiML."""

    def __init__(self, client: TestClient, sid: str, caller: str = "+8613800000000") -> None:
        self.client = client
        self.sid = sid
        self.caller = caller
        self.signer = TwilioWebhook(TOKEN, PUBLIC)
        self.twiml: ET.Element | None = None

    async def post(self, url: str, **params: str) -> ET.Element:
        path = url[len(PUBLIC) :] if url.startswith(PUBLIC) else url
        form = {"CallSid": self.sid, "From": self.caller, "To": "+8612345", **params}
        signature = self.signer.sign(PUBLIC + path, form)
        response = await self.client.post(
            path,
            data=urlencode(form),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        text = await response.text()
        assert response.status == 200, text
        assert response.content_type == "text/xml"
        self.twiml = ET.fromstring(text)
        return self.twiml

    async def call(self) -> ET.Element:
        return await self.post("/channels/twilio/voice", CallStatus="ringing")

    def gather(self) -> ET.Element:
        assert self.twiml is not None
        found = self.twiml.find("Gather")
        assert found is not None, ET.tostring(self.twiml)
        return found

    async def press(self, digits: str, **extra: str) -> ET.Element:
        return await self.post(self.gather().attrib["action"], Digits=digits, **extra)

    async def say(self, speech: str, confidence: str = "0.92") -> ET.Element:
        return await self.post(
            self.gather().attrib["action"], SpeechResult=speech, Confidence=confidence
        )

    async def silence(self) -> ET.Element:
        assert self.twiml is not None
        redirect = self.twiml.find("Redirect")
        assert redirect is not None
        return await self.post(redirect.text or "")

    def spoken(self) -> list[tuple[str, str]]:
        assert self.twiml is not None
        return [(s.attrib.get("language", ""), s.text or "") for s in self.twiml.iter("Say")]

    def verbs(self) -> list[str]:
        assert self.twiml is not None
        return [child.tag for child in self.twiml]


@pytest_asyncio.fixture
async def voice(
    tmp_path: Path, database_url: str, aiohttp_client: Any
) -> AsyncIterator[tuple[Runtime, TestClient]]:
    settings = make_settings(
        tmp_path,
        database_url,
        channels=["channels.simulated:SimulatedSms", "channels.twilio.voice:TwilioVoice"],
        channel_options={"twilio_voice": {"auth_token": TOKEN, "public_url": PUBLIC}},
    )
    runtime = build_runtime(settings, clock=ManualClock(T0), seed=7)
    client = await aiohttp_client(create_app(settings, runtime=runtime, start_jobs=False))
    await load_test_city(runtime)
    yield runtime, client


async def the_call(rt: Runtime) -> Any:
    async with rt.db.read() as conn:
        return (await conn.execute(select(calls))).one()


async def test_a_caller_reports_a_problem_in_chinese(voice: tuple[Runtime, TestClient]) -> None:
    rt, client = voice
    phone = Phone(client, "CA-zh-1")
    twiml = await phone.call()
    gather = phone.gather()
    assert gather.attrib["input"] == "dtmf" and gather.attrib["numDigits"] == "1"
    assert phone.spoken() == [("cmn-CN", "中文服务请按1。"), ("en-US", "For English, press 2.")]
    # a voice that speaks Mandarin says the Chinese (Amazon Polly's, through Twilio)
    assert [s.attrib.get("voice") for s in twiml.iter("Say")] == ["Polly.Zhiyu", "Polly.Joanna"]
    assert phone.verbs() == ["Gather", "Redirect"]

    await phone.press("1")
    assert [lang for lang, _ in phone.spoken()] == ["cmn-CN", "cmn-CN"]
    assert "查询工单请按1" in phone.spoken()[1][1]

    await phone.press("2")
    gather = phone.gather()
    assert gather.attrib["input"] == "speech dtmf"
    assert gather.attrib["language"] == "cmn-Hans-CN" and "路灯" in gather.attrib["hints"]
    assert "请在提示音后说出" in phone.spoken()[0][1]
    # ... and the tone follows the prompt, inside the Gather, before the caller speaks
    assert [child.tag for child in gather] == ["Say", "Play"]
    tone = gather.find("Play")
    assert tone is not None and tone.text == f"{PUBLIC}/channels/twilio/voice/tone.wav"
    response = await client.get("/channels/twilio/voice/tone.wav")
    assert response.status == 200 and response.content_type == "audio/wav"
    import io
    import wave

    import numpy as np

    with wave.open(io.BytesIO(await response.read())) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (8000, 1)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(samples))
    assert 0.2 <= len(samples) / 8000 <= 1.0
    assert abs(np.argmax(spectrum) * 8000 / len(samples) - 1000) < 20  # a 1 kHz tone

    await phone.say("我家门口的路灯坏了")
    assert "路灯故障" in phone.spoken()[0][1]  # the recognised category, to confirm
    twiml = await phone.press("1")
    said = " ".join(text for _, text in phone.spoken())
    assert phone.verbs()[-1] == "Hangup" and twiml.find("Gather") is None
    assert "工单号是二零二六，幺幺二七，杠，零零零幺" in said
    assert "明湖市市政设施管理处" in said and "短信" in said

    call = await the_call(rt)
    assert call.dtmf == "121" and call.transcript == "我家门口的路灯坏了"
    assert call.confidence == pytest.approx(0.92) and call.outcome == "ticket"
    assert call.channel == "twilio_voice" and call.provider_call_id == "CA-zh-1"
    async with rt.db.read() as conn:
        ticket = (await conn.execute(select(tickets))).one()
        sms = (await conn.execute(select(messages).where(messages.c.channel == "sms"))).one()
    assert rt.directory.category_by_id[ticket.category_id].code == "street_light"
    assert ticket.origin_channel == "voice" and ticket.locale == "zh-CN"
    assert "20261127-0001" in sms.body

    await phone.post("/channels/twilio/voice/status", CallStatus="completed")
    call = await the_call(rt)
    assert call.ended_at is not None and call.outcome == "ticket"


async def test_a_caller_checks_a_ticket_in_english(voice: tuple[Runtime, TestClient]) -> None:
    rt, client = voice
    from callcenter.actions.tickets import TicketDraft, create_ticket
    from callcenter.domain.workflow import SYSTEM

    ticket = await create_ticket(
        rt,
        TicketDraft("Pothole on Hubin Road", category="road_damage"),
        actor=SYSTEM,
        dispatch=True,
    )
    phone = Phone(client, "CA-en-1", caller="+14155550100")
    await phone.call()
    await phone.press("2")
    assert phone.spoken()[0] == ("en-US", "Welcome to the one two three four five citizen hotline.")
    # said as a person reads it out: in groups, with pauses
    await phone.press("1")
    gather = phone.gather()
    assert gather.attrib["finishOnKey"] == "#" and gather.attrib["numDigits"] == "16"
    await phone.press(ticket["number"].replace("-", ""), FinishedOnKey="#")
    said = " ".join(text for _, text in phone.spoken())
    number = "two zero two six, one one two seven, dash, zero zero zero one"
    assert f"Ticket {number} is Dispatched" in said
    assert "Minghu Municipal Facilities Office" in said
    assert phone.verbs()[-1] == "Hangup"
    call = await the_call(rt)
    assert call.dtmf == "21202611270001#"
    async with rt.db.read() as conn:
        conversation = (await conn.execute(select(conversations))).all()
    assert [c.locale for c in conversation if c.kind == "call"] == ["en"]


async def test_waiting_caller_hears_the_queue_and_leaves_a_callback(
    voice: tuple[Runtime, TestClient],
) -> None:
    rt, client = voice
    first = Phone(client, "CA-q-1", caller="+8613900000001")
    await first.call()
    await first.press("2")
    await first.press("0")
    assert first.verbs()[-1] == "Enqueue"
    enqueue = first.twiml.find("Enqueue")  # type: ignore[union-attr]
    assert enqueue is not None and enqueue.text == "voice"
    rt.clock.advance(seconds=30)  # type: ignore[attr-defined]

    second = Phone(client, "CA-q-2", caller="+8613900000002")
    await second.call()
    await second.press("2")
    await second.press("0")
    wait_url = second.twiml.find("Enqueue").attrib["waitUrl"]  # type: ignore[union-attr]
    await second.post(wait_url, QueuePosition="2", QueueTime="30")
    said = " ".join(text for _, text in second.spoken())
    assert "You are number two in the queue" in said and "about six minutes" in said
    assert "press 1" in said

    # the first caller asks to be called back and keeps their place
    await first.post(first.twiml.find("Enqueue").attrib["waitUrl"])  # type: ignore[union-attr]
    assert "number one" in " ".join(t for _, t in first.spoken())
    left = await first.press("1")
    assert [c.tag for c in left] == ["Leave"]
    await first.post(
        f"{PUBLIC}/channels/twilio/voice/input?call=CA-q-1&queued=1",
        QueueResult="leave",
    )
    assert "We will call you back at" in first.spoken()[0][1]
    await first.press("1")
    assert "call you back in your turn" in " ".join(t for _, t in first.spoken())
    assert first.verbs()[-1] == "Hangup"

    async with rt.db.read() as conn:
        rows = (await conn.execute(select(conversations).order_by(conversations.c.id))).all()
    callback = [r for r in rows if r.kind == "callback"]
    assert len(callback) == 1 and callback[0].state == "queued"
    assert callback[0].address == "+8613900000001"
    first_call = next(r for r in rows if r.kind == "call")
    assert callback[0].queued_at == first_call.queued_at and first_call.state == "closed"
    # the second caller is still behind the callback request
    await second.post(wait_url)
    assert "number two" in " ".join(t for _, t in second.spoken())


async def test_a_caller_who_presses_nothing_reaches_an_agent(
    voice: tuple[Runtime, TestClient],
) -> None:
    rt, client = voice
    phone = Phone(client, "CA-silent")
    await phone.call()
    for _ in range(10):
        if phone.verbs()[-1] != "Redirect":
            break
        await phone.silence()
    assert phone.verbs()[-1] == "Enqueue"
    said = " ".join(t for _, t in phone.spoken())
    assert "转接人工服务" in said
    call = await the_call(rt)
    assert call.outcome == "queued" and call.dtmf == ""
    assert call.path[-1] == "queue" and "main" in call.path


async def test_a_bad_signature_is_refused_and_changes_nothing(
    voice: tuple[Runtime, TestClient],
) -> None:
    rt, client = voice
    response = await client.post(
        "/channels/twilio/voice",
        data=urlencode({"CallSid": "CA-forged", "From": "+8613800000000"}),
        headers={
            "X-Twilio-Signature": "forged",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "invalid_signature"
    async with rt.db.read() as conn:
        assert (await conn.execute(select(calls))).first() is None


async def test_a_retried_first_webhook_is_one_call(voice: tuple[Runtime, TestClient]) -> None:
    rt, client = voice
    phone = Phone(client, "CA-retry")
    first = ET.tostring(await phone.call())
    again = ET.tostring(await phone.call())
    assert first == again
    async with rt.db.read() as conn:
        assert len((await conn.execute(select(calls))).all()) == 1


async def all_calls(rt: Runtime) -> list[Any]:
    async with rt.db.read() as conn:
        return list((await conn.execute(select(calls).order_by(calls.c.id))).all())


async def hang_up(phone: Phone) -> None:
    await phone.post("/channels/twilio/voice/status", CallStatus="completed")


async def test_a_caller_who_hangs_up_before_confirming_still_has_a_ticket(
    voice: tuple[Runtime, TestClient],
) -> None:
    """What the caller said is filed, unconfirmed, for the dispatch desk; they get the SMS."""
    rt, client = voice
    phone = Phone(client, "CA-gone")
    await phone.call()
    await phone.press("1")
    await phone.press("2")
    await phone.say("港湾路的路灯坏了三天了")
    assert "确认请按1" in phone.spoken()[0][1]
    await hang_up(phone)  # before pressing 1
    call = await the_call(rt)
    async with rt.db.read() as conn:
        ticket = (await conn.execute(select(tickets))).one()
        sms = (await conn.execute(select(messages).where(messages.c.channel == "sms"))).all()
    assert ticket.description == "港湾路的路灯坏了三天了" and ticket.origin_channel == "voice"
    assert ticket.title.startswith("【来电未确认】") and ticket.state == "new"
    assert rt.directory.category_by_id[ticket.category_id].code == "street_light"
    assert len(sms) == 1 and ticket.number in sms[0].body
    assert call.outcome == "ticket" and call.end_node == "report"
    assert call.transcript == ticket.description


async def test_a_caller_who_hangs_up_mid_flow_abandoned_it_there(
    voice: tuple[Runtime, TestClient],
) -> None:
    rt, client = voice
    phone = Phone(client, "CA-left")
    await phone.call()
    await phone.press("2")
    await hang_up(phone)
    call = (await all_calls(rt))[0]
    assert call.outcome == "abandoned" and call.end_node == "main"
    async with rt.db.read() as conn:
        assert (await conn.execute(select(tickets))).first() is None  # nothing was said
    # a call the IVR itself ended is completed
    from callcenter.actions.tickets import TicketDraft, create_ticket
    from callcenter.domain.workflow import SYSTEM

    ticket = await create_ticket(rt, TicketDraft("Pothole", category="road_damage"), actor=SYSTEM)
    done = Phone(client, "CA-done")
    await done.call()
    await done.press("2")
    await done.press("1")
    await done.press(ticket["number"].replace("-", ""), FinishedOnKey="#")
    assert done.verbs()[-1] == "Hangup"
    await hang_up(done)
    async with rt.db.read() as conn:
        row = (await conn.execute(select(calls).where(calls.c.provider_call_id == "CA-done"))).one()
    assert row.outcome == "completed" and row.end_node == "goodbye"


async def test_an_unknown_ticket_number_can_be_typed_again_or_an_agent_reached(
    voice: tuple[Runtime, TestClient],
) -> None:
    rt, client = voice
    from callcenter.actions.tickets import TicketDraft, create_ticket
    from callcenter.domain.workflow import SYSTEM

    ticket = await create_ticket(
        rt, TicketDraft("Pothole", category="road_damage"), actor=SYSTEM, dispatch=True
    )
    phone = Phone(client, "CA-typo", caller="+14155550100")
    await phone.call()
    await phone.press("2")
    await phone.press("1")
    await phone.press("202611279999", FinishedOnKey="#")
    said = " ".join(t for _, t in phone.spoken())
    assert "We could not find ticket" in said and "press 0 for an agent" in said
    assert phone.gather().attrib["finishOnKey"] == "#"  # asked again, not hung up on
    await phone.press(ticket["number"].replace("-", ""), FinishedOnKey="#")
    assert "is Dispatched" in " ".join(t for _, t in phone.spoken())
    # and 0 reaches an agent at once
    other = Phone(client, "CA-zero", caller="+14155550101")
    await other.call()
    await other.press("2")
    await other.press("1")
    await other.press("0", FinishedOnKey="#")
    assert other.verbs()[-1] == "Enqueue"


async def test_silence_at_a_speech_prompt_is_not_called_misunderstanding(
    voice: tuple[Runtime, TestClient],
) -> None:
    _, client = voice
    phone = Phone(client, "CA-quiet")
    await phone.call()
    await phone.press("2")
    await phone.press("2")
    assert phone.gather().attrib["input"] == "speech dtmf"
    await phone.silence()
    said = " ".join(t for _, t in phone.spoken())
    assert "I did not hear anything" in said and "could not understand" not in said


async def test_calls_over_the_cap_hear_the_lines_are_busy_and_are_counted(
    tmp_path: Path, sqlite_url: str, aiohttp_client: Any
) -> None:
    settings = make_settings(
        tmp_path,
        sqlite_url,
        channels=["channels.simulated:SimulatedSms", "channels.twilio.voice:TwilioVoice"],
        channel_options={"twilio_voice": {"auth_token": TOKEN, "public_url": PUBLIC}},
        voice={"max_calls": 1},
    )
    rt = build_runtime(settings, clock=ManualClock(T0), seed=7)
    client = await aiohttp_client(create_app(settings, runtime=rt, start_jobs=False))
    await load_test_city(rt)
    first = Phone(client, "CA-cap-1")
    await first.call()
    second = Phone(client, "CA-cap-2", caller="+8613900000002")
    await second.call()
    assert second.verbs() == ["Say", "Hangup"]
    assert "线路全忙" in second.spoken()[0][1] and "短信到幺二三四五" in second.spoken()[0][1]
    await hang_up(first)
    third = Phone(client, "CA-cap-3", caller="+8613900000003")
    await third.call()
    assert third.verbs() == ["Gather", "Redirect"]  # a line is free again
    async with rt.db.read() as conn:
        rows = (await conn.execute(select(calls).order_by(calls.c.id))).all()
    assert [(r.provider_call_id, r.outcome) for r in rows] == [
        ("CA-cap-1", "abandoned"),
        ("CA-cap-2", "busy"),
        ("CA-cap-3", None),
    ]
    assert rows[1].ended_at is not None


async def test_a_spoken_address_routes_like_a_typed_one(
    voice: tuple[Runtime, TestClient],
) -> None:
    rt, client = voice
    phone = Phone(client, "CA-place", caller="+14155550100")
    await phone.call()
    await phone.press("2")
    await phone.press("2")
    await phone.say("The street light outside number twelve Harbor Road is broken")
    await phone.press("1")
    async with rt.db.read() as conn:
        ticket = (await conn.execute(select(tickets))).one()
    street = rt.directory.by_id[ticket.street_id]
    assert ticket.address == "Harbour Road" and street.code == "XG-GW"  # 港湾街道
    assert ticket.routing["rule"] != "no_location"


async def test_each_step_of_a_call_is_one_log_line(
    voice: tuple[Runtime, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    _, client = voice
    phone = Phone(client, "CA-log")
    with caplog.at_level(logging.INFO, logger="ivr.engine"):
        await phone.call()
        await phone.press("2")
        await phone.press("9")
        await hang_up(phone)
    lines = [r.getMessage() for r in caplog.records if r.name == "ivr.engine"]
    assert len(lines) == 4, lines  # the start, two keys, the end
    assert lines[1].startswith("call 1: at language pressed '2' -> main")
    assert "pressed '9' -> main" in lines[2] and "invalid_choice" in lines[2]
    assert lines[3] == "call 1: ended (abandoned) at main"


async def test_an_empty_voice_message_is_offered_to_no_one(
    voice: tuple[Runtime, TestClient],
) -> None:
    rt, client = voice
    rt.clock.advance(hours=10)  # type: ignore[attr-defined]  # 20:00 in Shanghai: closed
    phone = Phone(client, "CA-empty-vm")
    await phone.call()
    await phone.press("2")
    await phone.press("0")
    assert phone.verbs()[-2:] == ["Record", "Redirect"]
    await phone.silence()  # the recording timed out: nothing was said
    said = " ".join(t for _, t in phone.spoken())
    assert "No message was recorded" in said and phone.verbs()[-1] == "Hangup"
    async with rt.db.read() as conn:
        queued = (
            await conn.execute(select(conversations).where(conversations.c.state == "queued"))
        ).all()
        kept = (await conn.execute(select(messages).where(messages.c.kind == "voicemail"))).all()
    assert queued == [] and kept == []


async def _queued_phone(client: TestClient, sid: str, caller: str) -> tuple[Phone, str]:
    phone = Phone(client, sid, caller=caller)
    await phone.call()
    await phone.press("2")  # English
    await phone.press("0")  # a person
    enqueue = phone.twiml.find("Enqueue")  # type: ignore[union-attr]
    assert enqueue is not None
    return phone, enqueue.attrib["waitUrl"]


async def test_a_waiting_caller_hears_music_then_is_dialled_to_the_agent_who_took_it(
    voice: tuple[Runtime, TestClient],
) -> None:
    from callcenter.actions import acd
    from callcenter.actions.calls import read_leg_user
    from callcenter.store.tables import offers
    from tests.helpers import actor

    rt, client = voice
    phone, wait_url = await _queued_phone(client, "CA-agent-1", "+8613900000021")
    await phone.post(wait_url)
    gather = phone.gather()
    plays = [p.text or "" for p in gather.iter("Play")]
    assert plays == [f"{PUBLIC}/channels/twilio/voice/music.wav"]  # music, not silence
    assert gather.attrib["timeout"] == "1"
    music = await client.get("/channels/twilio/voice/music.wav")
    assert music.status == 200 and music.content_type == "audio/wav"
    body = await music.read()
    assert len(body) - 44 == 2 * 8000 * int(rt.settings.voice.hold_announce_seconds)

    agent = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=agent)
    await acd.distribute(rt)
    async with rt.db.read() as conn:
        offer = (await conn.execute(select(offers))).one()
    await acd.accept_offer(rt, offer.id, actor=agent)
    left = await phone.post(wait_url)
    assert [c.tag for c in left] == ["Leave"]
    await phone.post(
        f"{PUBLIC}/channels/twilio/voice/input?call=CA-agent-1&queued=1", QueueResult="leave"
    )
    assert "Connecting you to an agent now." in [t for _, t in phone.spoken()]
    dial = phone.twiml.find("Dial")  # type: ignore[union-attr]
    assert dial is not None
    uri = dial.find("Sip").text or ""  # type: ignore[union-attr]
    user = uri.removeprefix("sip:").split("@")[0]
    call = await the_call(rt)
    assert read_leg_user(rt, user) == ("agent", call.conversation_id, agent.id)
    assert call.outcome == "answered" and call.agent_answered_at == rt.clock.now()

    # the dial did not connect (the agent's softphone never answered): back in the queue
    await phone.post(dial.attrib["action"], DialCallStatus="no-answer")
    said = " ".join(t for _, t in phone.spoken())
    assert "You are back in the queue, in your place." in said
    assert phone.verbs()[-1] == "Enqueue"
    call = await the_call(rt)
    async with rt.db.read() as conn:
        conversation = (await conn.execute(select(conversations))).one()
    assert conversation.state == "queued" and call.outcome == "queued"


async def test_a_bridged_call_the_agent_ends_says_goodbye(
    voice: tuple[Runtime, TestClient],
) -> None:
    from callcenter.actions import acd
    from callcenter.store.tables import offers
    from tests.helpers import actor

    rt, client = voice
    phone, wait_url = await _queued_phone(client, "CA-agent-2", "+8613900000022")
    agent = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=agent)
    await acd.distribute(rt)
    async with rt.db.read() as conn:
        offer = (await conn.execute(select(offers))).one()
    await acd.accept_offer(rt, offer.id, actor=agent)
    await phone.post(wait_url)
    await phone.post(
        f"{PUBLIC}/channels/twilio/voice/input?call=CA-agent-2&queued=1", QueueResult="leave"
    )
    dial = phone.twiml.find("Dial")  # type: ignore[union-attr]
    assert dial is not None
    rt.clock.advance(seconds=95)  # type: ignore[attr-defined]
    await phone.post(dial.attrib["action"], DialCallStatus="completed")
    assert phone.verbs() == ["Say", "Hangup"]
    await phone.post("/channels/twilio/voice/status", CallStatus="completed")
    call = await the_call(rt)
    assert call.talk_s == 95 and call.outcome == "answered"


async def test_a_chinese_caller_is_told_in_chinese_that_an_agent_answers(
    voice: tuple[Runtime, TestClient],
) -> None:
    from callcenter.actions import acd
    from callcenter.store.tables import offers
    from tests.helpers import actor

    rt, client = voice
    phone = Phone(client, "CA-zh-1", caller="+8613900000023")
    await phone.call()
    await phone.press("1")  # 中文
    await phone.press("0")  # 人工
    wait_url = phone.twiml.find("Enqueue").attrib["waitUrl"]  # type: ignore[union-attr]
    await phone.post(wait_url)
    said = " ".join(t for _, t in phone.spoken())
    assert "您现在排在第一位" in said
    assert [p.text for p in phone.gather().iter("Play")][-1].endswith("/music.wav")
    agent = await actor(rt, "agent1")
    await acd.set_presence(rt, "available", actor=agent)
    await acd.distribute(rt)
    async with rt.db.read() as conn:
        offer = (await conn.execute(select(offers))).one()
    await acd.accept_offer(rt, offer.id, actor=agent)
    await phone.post(wait_url)
    await phone.post(
        f"{PUBLIC}/channels/twilio/voice/input?call=CA-zh-1&queued=1", QueueResult="leave"
    )
    assert ("cmn-CN", "正在为您接通坐席。") in phone.spoken()
    assert phone.twiml.find("Dial/Sip") is not None  # type: ignore[union-attr]
