"""A mediation party without a smartphone, by telephone (docs/mediation.md).

Calls to the SIP channel's ``mediation_user`` (``sip:mediation@<hotline>``; a PBX routes
a published number there) come here instead of the IVR. The caller is recognised by
their number as a party of a session that is open now, then asked for their PIN (the
same check, counting and lock as the web page's), then for consent to recording by
key, and waits for the mediator to admit them, exactly like a browser. Once admitted,
their audio is in the room and they hear the room
(:class:`callcenter.media.phonebridge.PhoneBridge`) until they hang up, the mediator
removes them, or the session ends.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from callcenter.actions import mediations as med
from callcenter.actions.calls import CallStart, end_call, start_call
from callcenter.domain.errors import HotlineError
from callcenter.runtime import Runtime
from ivr.audio import FRAME, s16_to_ulaw
from ivr.engine import Expect, Say

from .runner import CallRunner, NoMedia

log = logging.getLogger(__name__)

PIN_TRIES = 3
POLL_SECONDS = 1.0  # the seat's heartbeat, and the room's publishers looked at again
FINAL = ("pin_locked", "session_over", "link_expired", "declined", "removed", "too_early")


class MediationCall:
    def __init__(self, rt: Runtime, runner: CallRunner) -> None:
        self.rt = rt
        self.runner = runner
        self.locale: str = rt.settings.default_locale
        self.name = ""
        self.bridge: Any = None  # a PhoneBridge while the caller is in the room

    def say(self, key: str, **params: Any) -> None:
        text = self.rt.text(f"channels.sip.mediation.{key}", self.locale, name=self.name,
                            hotline=self.rt.settings.hotline_number, **params)  # fmt: skip
        self.speak(text, key)

    def speak(self, text: str, key: str | None = None) -> None:
        data = self.runner.ctx.prompts.render(Say(text, self.locale, key), "u8")
        self.runner.stream_out(data, interrupt=False)
        self.runner.drain_out()

    def run(self, answer: Any, hangup: Any) -> None:
        runner, rt = self.runner, self.rt
        start = CallStart(runner.ctx.channel, runner.call_id, runner.caller, runner.called)
        info = runner.sync(start_call(rt, start))  # the call is kept like any other
        if info.duplicate:
            return
        outcome = "mediation"
        try:
            party = runner.sync(med.phone_party(rt, runner.caller))
            if runner.audio.ended:
                outcome = "cancelled"
                return
            self.answered(party, answer, hangup)
        finally:
            runner.sync(end_call(rt, info.call_id, outcome=outcome))

    def answered(self, party: med.PhoneParty | None, answer: Any, hangup: Any) -> None:
        runner, rt = self.runner, self.rt
        answer()
        runner.answered_at = time.monotonic()
        link = seat = None
        try:
            if party is None:
                self.say("no_session")
                return
            self.locale, self.name = party.locale, party.name
            link = party.link
            self.say("welcome")
            seat = self.pin(link)
            if seat is None:
                return
            self.say("consent")
            consent = self.keys(Expect("digits", max_digits=1, timeout=10))
            runner.sync(med.enter_waiting_room(rt, link, seat, consent=consent == "1"))
            self.say("waiting")
            self.in_session(link, seat)
        except NoMedia:
            log.info("mediation call %s sends no audio: ended", runner.call_id)
        except Exception:
            log.exception("mediation call %s failed", runner.call_id)
        finally:
            if link and seat:
                # removed, or the session is over: then there is nothing to leave
                with contextlib.suppress(HotlineError):
                    runner.sync(med.leave(rt, link, seat))
            if not runner.audio.ended:
                try:
                    hangup()
                except Exception:
                    log.debug("hangup of a mediation call did not work", exc_info=True)

    def keys(self, expect: Expect) -> str:
        """Keys pressed (those typed ahead during a prompt count)."""
        return self.runner.collect(expect).digits.rstrip("#")

    def pin(self, link: str) -> str | None:
        """The seat for a right PIN; every refusal is said, and some end the call."""
        for _ in range(PIN_TRIES):
            self.say("pin")
            digits = self.keys(Expect("digits", max_digits=7, terminator="#", timeout=10))
            try:
                return self.runner.sync(med.check_pin(self.rt, link, digits))
            except HotlineError as error:
                self.speak(self.rt.text(f"errors.{error.code}", self.locale, **error.params))
                if error.code in FINAL:
                    return None
        self.say("goodbye")
        return None

    def in_session(self, link: str, seat: str) -> None:
        """Wait to be admitted, then carry audio both ways until it is over."""
        runner, rt = self.runner, self.rt
        display = f"{self.name} ☎"
        next_poll = 0.0
        try:
            while not runner.audio.ended:
                heard = runner.listen()
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + POLL_SECONDS
                    try:
                        state = runner.sync(med.heartbeat(rt, link, seat))
                    except HotlineError as error:
                        self.leave_room()
                        self.say("removed" if error.code == "removed" else "ended")
                        return
                    if state["state"] not in ("scheduled", "in_session"):
                        self.leave_room()
                        self.say("ended")
                        return
                    if self.bridge is None and "janus" in state:
                        self.bridge = runner.sync(med.open_phone_bridge(rt, link, seat, display))
                        if self.bridge is not None:
                            self.say("in_room")
                    elif "janus" not in state:
                        self.leave_room()
                    elif self.bridge is not None:
                        runner.sync(self.bridge.refresh())
                    if self.bridge is not None:
                        self.bridge.record(bool(state["recording"]))
                if self.bridge is None:
                    time.sleep(0.02)
                    continue
                if heard:
                    self.bridge.send(s16_to_ulaw(heard))
                while runner.audio.queued_out() < 3 * FRAME:
                    mixed = self.bridge.receive(FRAME)
                    if mixed is None:
                        break
                    runner.audio.write(mixed)
                time.sleep(0.01)
        finally:
            self.leave_room()

    def leave_room(self) -> None:
        """Out of the room's audio (the others see the caller's feed go at once)."""
        if self.bridge is not None:
            bridge, self.bridge = self.bridge, None
            self.runner.sync(bridge.close())
