"""One SIP call, carried out in its own thread: the IVR's turns as audio and keys.

The engine (async, on the server's event loop) decides; this thread speaks
prompts into the call, listens for RFC 2833 keys, records and feeds the
recogniser, and hands the result back. Nothing here runs on the event loop:
the loop only sees the engine's short coroutines.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from callcenter.actions.calls import (
    CallLink,
    CallStart,
    attach_call_recording,
    call_link,
    start_call,
)
from ivr.audio import (
    FRAME,
    RATE,
    hold_music,
    mix_s16,
    s16_to_u8,
    write_stereo_wav,
    write_wav,
)
from ivr.engine import Engine, Expect, Reply, Session, Turn
from ivr.stt import Recognizers
from ivr.tts import PromptAudio, tone
from ivr.vad import TurnDetector

from .bridge import AgentLeg, AgentLegs
from .stack import CallAudio

log = logging.getLogger(__name__)
T = TypeVar("T")

END_SILENCE_S = 1.2  # this much quiet after speech ends the utterance
NO_SPEECH_S = 6.0  # nothing said for this long: give up


BEEP = s16_to_u8(tone())  # pyVoIP sends 8-bit samples
LINK_CHECK_S = 0.5  # how often a waiting or bridged call reads whether an agent has it
LEG_SILENCE_S = 5.0  # an agent leg that sends no RTP for this long is gone (browsers and
# Janus send packets all along, silence included)
AHEAD = 3 * FRAME  # keep 60 ms queued in pyVoIP's sender


class NoMedia(Exception):
    """The caller's side sends no audio: a dead line, ended rather than held."""


@dataclass
class CallContext:
    loop: asyncio.AbstractEventLoop
    engine: Engine
    prompts: PromptAudio
    recognizers: Recognizers
    recordings: Path
    channel: str
    no_media_seconds: float = 10.0
    media_gap_seconds: float = 60.0
    legs: AgentLegs = field(default_factory=AgentLegs)
    leg_wait_seconds: float = 20.0  # an agent's leg that does not come: back to the queue
    music: bytes = field(default_factory=lambda: s16_to_u8(hold_music()))  # 8-bit, looped
    record_calls: bool = False  # both sides of a bridged call to one stereo file


class CallRunner:
    def __init__(
        self,
        ctx: CallContext,
        audio: CallAudio,
        call_id: str,
        caller: str | None,
        called: str | None,
    ):
        self.ctx = ctx
        self.audio = audio
        self.call_id = call_id
        self.caller = caller
        self.called = called
        self.pending_digits = ""
        self.session: Session | None = None
        self.answered_at = time.monotonic()
        self.music_at = 0  # where the hold music goes on from

    def sync(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.ctx.loop).result(timeout)

    def run(self, answer: Any, hangup: Any) -> None:
        engine = self.ctx.engine
        info = self.sync(
            start_call(
                engine.rt, CallStart(self.ctx.channel, self.call_id, self.caller, self.called)
            )
        )
        if info.duplicate:
            return
        self.session = Session(info, locale=info.locale)
        if self.audio.ended:  # cancelled while it rang
            self.sync(engine.end(self.session, outcome="cancelled"))
            return
        answer()
        self.answered_at = time.monotonic()
        outcome: str | None = None
        last: Reply | None = None  # what the caller gave as they hung up
        try:
            turn = self.sync(engine.start(self.session))
            while not self.audio.ended:
                if turn.expect.kind == "hangup":
                    self.play(turn, interrupt=False)
                    self.drain_out()
                    if not self.audio.ended:
                        hangup()
                    outcome = "completed"
                    break
                reply = self.perform(turn)
                if self.audio.ended:
                    last = reply
                    break
                turn = self.sync(engine.resume(self.session, reply))
        except NoMedia:
            log.info("SIP call %s sends no audio: ended", self.call_id)
            outcome = "no_media"
            if not self.audio.ended:
                try:
                    hangup()
                except Exception:
                    log.debug("hangup of a call without media did not work", exc_info=True)
        except Exception:
            log.exception("SIP call %s failed", self.call_id)
            outcome = "failed"
            if not self.audio.ended:
                try:
                    hangup()
                except Exception:
                    log.debug("hangup after failure did not work", exc_info=True)
        finally:
            for listener in self.ctx.legs.listeners(self.session.call.conversation_id):
                self.ctx.legs.leave(listener)  # the call is over: so is listening in
            self.sync(engine.end(self.session, outcome=outcome, last=last))

    def busy(self, answer: Any, hangup: Any, say: Any) -> None:
        """Over the cap of simultaneous calls: say so, count the call, hang up."""
        engine = self.ctx.engine
        info = self.sync(
            start_call(
                engine.rt, CallStart(self.ctx.channel, self.call_id, self.caller, self.called)
            )
        )
        if info.duplicate or self.audio.ended:
            return
        session = Session(info, locale=info.locale)
        answer()
        self.answered_at = time.monotonic()
        try:
            self.stream_out(self.ctx.prompts.render(say(session), "u8"), interrupt=False)
            self.drain_out(10)
        except NoMedia:
            log.debug("SIP call %s sent no audio while told the lines are busy", self.call_id)
        finally:
            if not self.audio.ended:
                try:
                    hangup()
                except Exception:
                    log.debug("hangup after the busy prompt did not work", exc_info=True)
            session.finished = True
            self.sync(engine.end(session, outcome="busy"))

    # --- audio out ---------------------------------------------------------------------------

    def play(self, turn: Turn, *, interrupt: bool, watch: bool = False) -> bool:
        """Speak every prompt of the turn; returns True when a key (or, ``watch``: an
        agent taking the call) cut it short."""
        for say in turn.says:
            data = self.ctx.prompts.render(say, "u8")
            if self.stream_out(data, interrupt=interrupt, watch=watch):
                return True
        return False

    def stream_out(self, data: bytes, *, interrupt: bool, watch: bool = False) -> bool:
        """Write audio at the pace it is played, listening for keys meanwhile."""
        ahead = AHEAD
        position = 0
        check = time.monotonic() + LINK_CHECK_S
        while position < len(data) and not self.audio.ended:
            self.listen()
            if interrupt and self.pending_digits:
                self.audio.flush_out()
                return True
            if watch and time.monotonic() >= check:
                check = time.monotonic() + LINK_CHECK_S
                link = self.link()
                if link is not None and link.state == "assigned":
                    self.audio.flush_out()  # an agent took the call: no more waiting texts
                    return True
            if self.audio.queued_out() < ahead:
                self.audio.write_u8(data[position : position + FRAME])
                position += FRAME
            else:
                time.sleep(0.01)
        return False

    def drain_out(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.audio.queued_out() > 0 and not self.audio.ended and time.monotonic() < deadline:
            self.listen()
            time.sleep(0.02)

    # --- audio and keys in -------------------------------------------------------------------

    def listen(self) -> bytes:
        """Collect keys pressed; return the caller audio that arrived (discarded unless used).

        Raises :class:`NoMedia` when the caller's side has sent nothing at all
        for ``no_media_seconds``, or nothing more for ``media_gap_seconds``.
        """
        self.pending_digits += self.audio.dtmf()
        last = self.audio.last_packet_at
        now = time.monotonic()
        if last is None and now - self.answered_at > self.ctx.no_media_seconds:
            raise NoMedia
        if last is not None and now - last > self.ctx.media_gap_seconds:
            raise NoMedia
        return self.audio.read(8000)

    def perform(self, turn: Turn) -> Reply:
        expect = turn.expect
        interrupt = expect.kind in ("digits", "hold")
        cut = self.play(turn, interrupt=interrupt, watch=expect.kind == "hold")
        if cut and expect.kind == "hold" and not self.pending_digits:
            return Reply(timed_out=True)  # an agent took the call: the engine bridges
        if expect.kind == "digits":
            return self.collect(expect)
        if expect.kind in ("speech", "record"):
            self.drain_out()
            self.pending_digits = ""
            return self.record(expect)
        if expect.kind == "hold":
            return self.hold(expect)
        if expect.kind == "bridge":
            self.drain_out()
            return self.bridge()
        raise ValueError(expect.kind)

    def collect(self, expect: Expect) -> Reply:
        """Keys until the terminator, the most digits, or a pause of ``timeout`` seconds."""
        deadline = time.monotonic() + expect.timeout
        seen = len(self.pending_digits)
        while not self.audio.ended:
            self.listen()
            digits = self.pending_digits
            if expect.terminator and expect.terminator in digits:
                break
            if len(digits) >= expect.max_digits:
                break
            if len(digits) != seen:  # each key restarts the wait for the next one
                seen = len(digits)
                deadline = time.monotonic() + expect.timeout
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        digits, self.pending_digits = self._split(self.pending_digits, expect)
        return Reply(digits=digits, timed_out=not digits)

    @staticmethod
    def _split(pending: str, expect: Expect) -> tuple[str, str]:
        if expect.terminator and expect.terminator in pending:
            cut = pending.index(expect.terminator) + 1
            return pending[:cut], pending[cut:]
        return pending[: expect.max_digits], pending[expect.max_digits :]

    def music(self) -> None:
        """Keep the hold music going (call often: it tops up pyVoIP's sender)."""
        music = self.ctx.music
        while self.audio.queued_out() < AHEAD and not self.audio.ended:
            self.audio.write_u8(music[self.music_at : self.music_at + FRAME])
            self.music_at = (self.music_at + FRAME) % len(music)  # a whole number of frames

    def link(self) -> CallLink | None:
        assert self.session is not None
        return self.sync(call_link(self.ctx.engine.rt, self.session.call.call_id))

    def hold(self, expect: Expect) -> Reply:
        """Music until the next announcement, a key that leaves the queue, or an agent."""
        deadline = time.monotonic() + expect.timeout
        check = time.monotonic() + LINK_CHECK_S
        while not self.audio.ended and time.monotonic() < deadline:
            self.listen()
            if expect.leave_digit and expect.leave_digit in self.pending_digits:
                self.pending_digits = ""
                self.audio.flush_out()
                return Reply(digits=expect.leave_digit)
            if time.monotonic() >= check:
                check = time.monotonic() + LINK_CHECK_S
                link = self.link()
                if link is not None and link.state == "assigned":
                    break  # an agent took the call: the engine says so and bridges
            self.music()
            time.sleep(0.01)
        self.audio.flush_out()
        self.pending_digits = ""
        return Reply(timed_out=True)

    def bridge(self) -> Reply:
        """Caller and agent hear each other until one hangs up (the caller hears music
        while the agent holds them). A leg that never comes or drops: ``lost``."""
        assert self.session is not None
        link = self.link()
        if link is None or link.state != "assigned" or link.agent_id is None:
            return Reply(lost=True)
        conversation_id = self.session.call.conversation_id
        deadline = time.monotonic() + self.ctx.leg_wait_seconds
        leg: AgentLeg | None = None
        while leg is None and not self.audio.ended and time.monotonic() < deadline:
            self.listen()
            self.music()
            leg = self.ctx.legs.take(conversation_id, link.agent_id, timeout=0.05)
        if leg is None:
            self.audio.flush_out()
            return Reply(lost=not self.audio.ended)
        self.audio.flush_out()
        log.info("SIP call %s: bridged to agent %s", self.call_id, leg.agent_id)
        tracks: tuple[bytearray, bytearray] | None = (
            (bytearray(), bytearray()) if self.ctx.record_calls else None
        )
        try:
            self.pump(leg, tracks)
        finally:
            self.ctx.legs.leave(leg)
            if tracks is not None and (tracks[0] or tracks[1]):
                self.keep_recording(leg, tracks)
        if self.audio.ended:
            return Reply()
        after = self.link()
        hung_up = after is not None and after.outcome == "completed"
        return Reply(lost=not hung_up)

    def keep_recording(self, leg: AgentLeg, tracks: tuple[bytearray, bytearray]) -> None:
        """One stereo file per bridged leg: the caller left, the agent right."""
        assert self.session is not None
        name = hashlib.sha256(self.call_id.encode()).hexdigest()[:24]
        path = (
            self.ctx.recordings
            / "calls"
            / time.strftime("%Y%m%d")
            / f"{name}-agent{leg.agent_id}-{int(time.time())}.wav"
        )
        write_stereo_wav(path, bytes(tracks[0]), bytes(tracks[1]))
        seconds = max(len(tracks[0]), len(tracks[1])) / 2 / RATE
        self.sync(
            attach_call_recording(
                self.ctx.engine.rt, self.session.call.call_id, path=str(path), seconds=seconds
            )
        )

    def pump(self, leg: AgentLeg, tracks: tuple[bytearray, bytearray] | None = None) -> None:
        check = time.monotonic()
        held = False
        agent = leg.audio
        agent.discard_in()  # what the agent's side sent before the bridge is stale
        self.audio.discard_in()
        while not (self.audio.ended or agent.ended or leg.done.is_set()):
            now = time.monotonic()
            last = agent.last_packet_at
            if last is not None and now - last > LEG_SILENCE_S:
                log.info(
                    "SIP call %s: agent %s's leg sends nothing: gone", self.call_id, leg.agent_id
                )
                return
            if now >= check:
                check = now + LINK_CHECK_S
                link = self.link()
                if link is None or link.outcome == "completed" or link.state != "assigned":
                    return  # the agent hung up from the desk, or the call went elsewhere
                if link.agent_id != leg.agent_id:
                    return
                if link.on_hold != held:
                    held = link.on_hold
                    self.audio.flush_out()
            self.pending_digits += self.audio.dtmf()
            from_caller = self.audio.read(1600)
            from_agent = agent.read(1600)
            if held:
                self.music()
            else:
                if from_caller:
                    agent.write(from_caller)
                if from_agent:
                    self.audio.write(from_agent)
                if from_caller or from_agent:
                    for listener in self.ctx.legs.listeners(leg.conversation_id):
                        listener.audio.discard_in()  # a listener is not heard
                        listener.audio.write(mix_s16(from_caller, from_agent))
                if tracks is not None:  # the two sides kept in step, silence for a gap
                    tracks[0].extend(from_caller)
                    tracks[1].extend(from_agent)
                    level = max(len(tracks[0]), len(tracks[1]))
                    for track in tracks:
                        track.extend(b"\x00" * (level - len(track)))
            time.sleep(0.01)

    def record(self, expect: Expect) -> Reply:
        """Record after a beep until silence, '#', or the time limit; transcribe as it comes."""
        self.stream_out(BEEP, interrupt=False)
        self.drain_out()
        self.listen()  # what came before the beep is not part of the answer
        self.pending_digits = ""
        recognizer = self.ctx.recognizers.get(expect.language, expect.recognizer)
        stream = recognizer.stream(expect.grammar) if recognizer is not None else None
        turn = TurnDetector(end_silence_s=END_SILENCE_S)
        chunks: list[bytes] = []
        started = time.monotonic()
        last_audio = started
        while not self.audio.ended:
            pcm = self.listen()
            now = time.monotonic()
            if pcm:
                chunks.append(pcm)
                last_audio = now
                turn.feed(pcm)
                if stream is not None:
                    stream.feed(pcm)
            if expect.terminator and expect.terminator in self.pending_digits:
                break
            if now - started >= expect.max_seconds:
                break
            if not turn.spoke and now - started >= NO_SPEECH_S:
                break
            # the detector's quiet frames, or no audio at all (a peer silent in silence)
            if turn.spoke and (turn.finished or now - last_audio >= END_SILENCE_S):
                break
            time.sleep(0.02)
        digits, self.pending_digits = self.pending_digits, ""
        audio = b"".join(chunks)
        seconds = len(audio) / 2 / RATE
        path = None
        if audio:
            name = hashlib.sha256(self.call_id.encode()).hexdigest()[:24]
            stamp = time.strftime("%Y%m%d")
            path = (
                self.ctx.recordings
                / stamp
                / f"{name}-{len(self.session.path) if self.session else 0}.wav"
            )
            write_wav(path, audio)
        transcript = stream.finish() if stream is not None else None
        return Reply(
            digits=digits,
            timed_out=not turn.spoke,
            transcript=transcript.text if transcript else None,
            confidence=transcript.confidence if transcript else None,
            recording=str(path) if path else None,
            seconds=round(seconds, 2) if audio else None,
        )
