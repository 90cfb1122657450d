"""The IVR engine: walks a flow for one call, knowing nothing of the transport.

A transport (SIP, Twilio Voice) asks the engine for a :class:`Turn` — what to
say and what to wait for — carries it out in its own way (audio over RTP, or
TwiML), and hands back a :class:`Reply` (keys pressed, speech transcript,
recording, or a timeout). The engine moves through the flow's nodes, calls
the core's call actions (progress, queue, callback, ticket, voice message),
and returns the next turn. All its state is in the :class:`Session`, so a
transport that serves calls over many requests (Twilio's webhooks) keeps
sessions between them.

Every input node counts its tries; when they run out the caller is taken to
the node's ``on_fail`` or the flow's ``safe`` node, never left in silence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from callcenter.actions import calls as call_actions
from callcenter.domain.errors import HotlineError
from callcenter.queueing import queue_spot
from callcenter.runtime import Runtime
from ivr.categories import recognise_category
from ivr.flow import Flow
from ivr.places import Gazetteer
from ivr.spoken import spoken_code, spoken_date, spoken_number, spoken_phone

log = logging.getLogger(__name__)

ExpectKind = Literal["digits", "speech", "record", "hold", "bridge", "hangup"]


@dataclass(frozen=True)
class Say:
    """One thing to say. ``key`` names a catalog text, for recorded overrides."""

    text: str
    locale: str
    key: str | None = None


@dataclass(frozen=True)
class Expect:
    kind: ExpectKind
    max_digits: int = 1
    terminator: str | None = None
    timeout: float = 6.0
    max_seconds: float = 0.0
    grammar: str | None = None
    language: str = "zh-CN"
    leave_digit: str | None = None  # hold: the key that leaves the queue
    recognizer: str | None = None  # speech: the backend this node asks for (else the default)


@dataclass
class Turn:
    says: list[Say]
    expect: Expect


@dataclass(frozen=True)
class Reply:
    digits: str = ""
    timed_out: bool = False
    transcript: str | None = None
    confidence: float | None = None
    recording: str | None = None
    seconds: float | None = None
    lost: bool = False  # bridge: the agent's leg dropped while the caller stayed on


@dataclass
class Session:
    call: call_actions.CallInfo
    locale: str
    node: str = ""
    phase: str = ""
    tries: int = 0
    vars: dict[str, Any] = field(default_factory=dict)
    dtmf: str = ""
    path: list[str] = field(default_factory=list)
    hold_since: datetime | None = None
    finished: bool = False  # the IVR ended the call (a hangup node), not the caller
    saved: tuple[str, int] = ("", 0)  # what was last stored: (dtmf, len(path))
    said: str = ""  # what the caller last said, kept until it became a ticket or a message
    kept: bool = False  # what the caller said became a ticket, a message or a callback


class Engine:
    """Runs one flow for any number of calls (each with its own :class:`Session`)."""

    def __init__(self, rt: Runtime, flow: Flow, *, speech_available: Callable[[str], bool]) -> None:
        self.rt = rt
        self.flow = flow
        self.speech_available = speech_available
        self._gazetteer: tuple[object, Gazetteer] | None = None

    @property
    def gazetteer(self) -> Gazetteer:
        """The city's places, built again when the directory is reloaded."""
        directory = self.rt.directory
        if self._gazetteer is None or self._gazetteer[0] is not directory:
            self._gazetteer = (directory, Gazetteer(directory.departments))
        return self._gazetteer[1]

    # --- texts ------------------------------------------------------------------

    def say(self, session: Session, key: str, locale: str | None = None, **params: Any) -> Say:
        chosen = locale or session.locale
        return Say(self.rt.text(f"voice.{key}", chosen, **params), chosen, None if params else key)

    def lines_busy(self, session: Session) -> Say:
        """What a caller over the cap of simultaneous calls hears before the line drops."""
        return self.say(session, "lines_busy", **self._common(session))

    def _prompts(self, session: Session, node: Any) -> list[Say]:
        return [self.say(session, p.key, p.locale) for p in node.prompts]

    def _common(self, session: Session) -> dict[str, Any]:
        return {"hotline": spoken_code(self.rt, self.rt.settings.hotline_number, session.locale)}

    # --- the walk -------------------------------------------------------------------

    async def start(self, session: Session) -> Turn:
        await call_actions.record_call_progress(self.rt, session.call.call_id, answered=True)
        turn = await self._enter(session, self.flow.start, [])
        self._log_step(session, None, turn)
        return turn

    async def resume(self, session: Session, reply: Reply) -> Turn:
        if session.finished:
            return Turn([], Expect("hangup"))
        node = self.flow.node(session.node)
        handler = getattr(self, f"_reply_{node.type}")
        before = session.node
        try:
            turn: Turn = await handler(session, node, reply)
        except HotlineError:
            log.exception("call %s: an action failed", session.call.call_id)
            turn = await self._enter(session, self.flow.safe, [self.say(session, "error")])
        await self._save(session)
        self._log_step(session, reply, turn, before)
        return turn

    def _log_step(
        self, session: Session, reply: Reply | None, turn: Turn, before: str | None = None
    ) -> None:
        """One line per step of a call (seen with ``callcenter -v``)."""
        got = "answered"
        if reply is not None:
            if reply.transcript:
                got = f"said {reply.transcript[:60]!r}"
            elif reply.digits:
                got = f"pressed {reply.digits!r}"
            elif reply.recording:
                got = f"recorded {reply.seconds or 0:.1f} s"
            else:
                got = "nothing (timeout)"
        says = ",".join(s.key or "text" for s in turn.says)
        log.info(
            "call %s: at %s %s -> %s, says [%s], expects %s",
            session.call.call_id,
            before or "start",
            got,
            session.node,
            says,
            turn.expect.kind,
        )

    async def end(
        self, session: Session, *, outcome: str | None = None, last: Reply | None = None
    ) -> None:
        """The call is over: keep what the caller gave, then store the end.

        ``last`` is a reply that came as the caller hung up (speech recorded up
        to the hang-up). A caller who hung up after saying something, before
        it became a ticket, a message or a callback request, still has it
        filed: a ticket marked unconfirmed, at the dispatch desk. The outcome
        is ``completed`` when the IVR ended the call, ``abandoned`` (with the
        node) when the caller hung up on it.
        """
        ended_by_caller = not session.finished
        session.finished = True
        try:
            if last is not None and session.node:
                await self._keep_last(session, last)
            await self._save(session)
            if ended_by_caller and session.said and not session.kept:
                await self._file_unconfirmed(session)
        finally:
            if outcome is None:
                outcome = "abandoned" if ended_by_caller else "completed"
            await call_actions.end_call(
                self.rt, session.call.call_id, outcome=outcome, end_node=session.node or None
            )
        log.info("call %s: ended (%s) at %s", session.call.call_id, outcome, session.node)

    async def _keep_last(self, session: Session, reply: Reply) -> None:
        node = self.flow.node(session.node)
        if node.type == "record":
            await self._store_speech(session, node, reply)
        elif node.type == "voicemail" and (reply.recording or reply.transcript):
            await self._voicemail(session, reply)
        elif reply.digits:
            self._press(session, reply.digits)

    async def _file_unconfirmed(self, session: Session) -> None:
        category = session.vars.get("category")
        place = session.vars.get("place")
        await call_actions.report_problem(
            self.rt,
            session.call.call_id,
            session.said,
            category=category,
            address=place,
            confirmed=False,
        )
        session.kept = True

    async def _save(self, session: Session) -> None:
        state = (session.dtmf, len(session.path))
        if state != session.saved:
            await call_actions.record_call_progress(
                self.rt, session.call.call_id, dtmf=session.dtmf, path=session.path
            )
            session.saved = state

    async def _enter(self, session: Session, node_id: str, says: list[Say]) -> Turn:
        """Run nodes that need no input until one does; return what to do next."""
        for _ in range(200):  # a flow that loops without input is a flow error
            node = self.flow.node(node_id)
            session.node, session.phase, session.tries = node_id, "", 0
            session.path.append(node_id)
            step = getattr(self, f"_enter_{node.type}")
            outcome = await step(session, node, says)
            if isinstance(outcome, Turn):
                await self._save(session)
                return outcome
            node_id, says = outcome
        raise RuntimeError(f"flow {self.flow.name!r} loops without asking the caller anything")

    def _fail(self, node: Any) -> str:
        return getattr(node, "on_fail", None) or self.flow.safe

    async def _retry(
        self, session: Session, node: Any, reply: Reply, ask: Callable[[list[Say]], Turn]
    ) -> Turn:
        """A wrong or missing answer: say so and ask again, or give up to the safe path."""
        session.tries += 1
        says = [self.say(session, "no_input" if not reply.digits else "invalid_choice")]
        if session.tries > node.retries:
            says.append(self.say(session, "too_many_tries"))
            return await self._enter(session, self._fail(node), says)
        return ask(says)

    def _press(self, session: Session, digits: str) -> None:
        session.dtmf += digits

    # --- nodes without input ------------------------------------------------------------

    async def _enter_play(self, session: Session, node: Any, says: list[Say]) -> Any:
        params = self._common(session)
        return node.next, says + [
            self.say(session, p.key, p.locale, **params) for p in node.prompts
        ]

    async def _enter_language(self, session: Session, node: Any, says: list[Say]) -> Any:
        session.locale = node.set
        await call_actions.record_call_progress(self.rt, session.call.call_id, locale=node.set)
        return node.next, says + self._prompts(session, node)

    async def _enter_branch(self, session: Session, node: Any, says: list[Say]) -> Any:
        return (node.then if self.condition(session, node.condition) else node.otherwise), says

    def condition(self, session: Session, name: str) -> bool:
        now = self.rt.clock.now()
        if name == "business_hours":
            return self.rt.calendar.is_working_time(now)
        if name == "holiday":
            return self.rt.calendar.is_holiday(self.rt.local(now).date())
        if name == "known_caller":
            return session.call.known_caller
        if name == "language_en":
            return session.locale == "en"
        if name == "language_zh":
            return session.locale == "zh-CN"
        if name == "speech_available":
            return self.speech_available(session.locale)
        if name == "mobile_caller":
            return session.call.mobile
        raise ValueError(name)

    async def _enter_ticket_status(self, session: Session, node: Any, says: list[Say]) -> Any:
        entered = str(session.vars.get(node.var, ""))
        found = await call_actions.ticket_status(self.rt, entered)
        locale = session.locale
        if found is None:
            says = [
                *says,
                self.say(session, "ticket_unknown", number=spoken_code(self.rt, entered, locale)),
            ]
            misses = session.vars[f"{session.node}_misses"] = (
                int(session.vars.get(f"{session.node}_misses", 0)) + 1
            )
            if node.retry and misses <= node.retries:
                return node.retry, [*says, self.say(session, "ticket_try_again")]
            if node.retry:
                says.append(self.say(session, "too_many_tries"))
                return self._fail(node), says
            return node.next, says + self._prompts(session, node)
        says = [
            *says,
            self.say(
                session,
                "ticket_status",
                number=spoken_code(self.rt, found.number, locale),
                state=self.rt.catalog.label("state", found.state, locale),
            ),
        ]
        department = found.department_zh if locale == "zh-CN" else found.department_en
        if department:
            says.append(self.say(session, "ticket_department", department=department))
        if found.replied:
            says.append(self.say(session, "ticket_replied"))
        elif found.due_at is not None and found.state not in ("closed", "merged", "cancelled"):
            says.append(
                self.say(session, "ticket_due", due=spoken_date(self.rt, found.due_at, locale))
            )
        return node.next, says + self._prompts(session, node)

    async def _enter_hangup(self, session: Session, node: Any, says: list[Say]) -> Turn:
        session.finished = True
        return Turn(says + self._prompts(session, node), Expect("hangup", language=session.locale))

    # --- menu ---------------------------------------------------------------------------

    def _menu_turn(self, session: Session, node: Any, says: list[Say]) -> Turn:
        return Turn(
            says + self._prompts(session, node),
            Expect("digits", max_digits=1, timeout=node.timeout, language=session.locale),
        )

    async def _enter_menu(self, session: Session, node: Any, says: list[Say]) -> Turn:
        return self._menu_turn(session, node, says)

    async def _reply_menu(self, session: Session, node: Any, reply: Reply) -> Turn:
        key = reply.digits[:1]
        if key:
            self._press(session, key)
        if key in node.choices:
            return await self._enter(session, node.choices[key], [])
        return await self._retry(
            session, node, reply, lambda says: self._menu_turn(session, node, says)
        )

    # --- digits -----------------------------------------------------------------------

    def _digits_turn(self, session: Session, node: Any, says: list[Say]) -> Turn:
        return Turn(
            says + self._prompts(session, node),
            Expect(
                "digits",
                max_digits=node.max_length,
                terminator=node.terminator,
                timeout=node.timeout,
                language=session.locale,
            ),
        )

    async def _enter_digits(self, session: Session, node: Any, says: list[Say]) -> Turn:
        return self._digits_turn(session, node, says)

    async def _reply_digits(self, session: Session, node: Any, reply: Reply) -> Turn:
        self._press(session, reply.digits)
        entered = reply.digits.split(node.terminator)[0] if node.terminator else reply.digits
        if entered in node.choices:
            return await self._enter(session, node.choices[entered], [])
        if node.min_length <= len(entered) <= node.max_length and entered.isdigit():
            session.vars[node.var] = entered
            return await self._enter(session, node.next, [])
        return await self._retry(
            session, node, reply, lambda says: self._digits_turn(session, node, says)
        )

    # --- speech -------------------------------------------------------------------------

    def _record_turn(self, session: Session, node: Any, says: list[Say]) -> Turn:
        return Turn(
            says + self._prompts(session, node),
            Expect(
                "speech",
                max_seconds=node.max_seconds,
                grammar=node.grammar,
                language=session.locale,
                terminator="#",
                recognizer=self.rt.settings.voice.node_recognizers.get(session.node, {}).get(
                    session.locale
                ),
            ),
        )

    async def _enter_record(self, session: Session, node: Any, says: list[Say]) -> Any:
        if not self.speech_available(session.locale):
            return self._fail(node), [*says, self.say(session, "speech_unavailable")]
        return self._record_turn(session, node, says)

    async def _store_speech(self, session: Session, node: Any, reply: Reply) -> str:
        """Keep what was said (and its recording) on the call; returns the transcript."""
        if reply.digits:
            self._press(session, reply.digits)
        text = (reply.transcript or "").strip()
        await call_actions.record_call_progress(
            self.rt,
            session.call.call_id,
            transcript=text if text else None,
            confidence=reply.confidence,
            recording_path=reply.recording,
            recording_seconds=reply.seconds,
        )
        if text:
            session.vars[node.var] = text
            session.vars[f"{node.var}_confidence"] = reply.confidence
            session.said, session.kept = text, False
            place = self.gazetteer.find(text)
            if place is not None:  # routed like a typed address
                session.vars["place"] = place.address
                log.info(
                    "call %s: place %r heard as %r", session.call.call_id, place.name, place.heard
                )
        return text

    async def _reply_record(self, session: Session, node: Any, reply: Reply) -> Turn:
        if await self._store_speech(session, node, reply):
            return await self._enter(session, node.next, [])
        session.tries += 1
        heard_nothing = reply.timed_out and not reply.recording
        says = [self.say(session, "no_speech" if heard_nothing else "not_understood")]
        if session.tries > node.retries:
            return await self._enter(session, self._fail(node), says)
        return self._record_turn(session, node, says)

    # --- report (a ticket from the call) -----------------------------------------------

    def _category_name(self, session: Session, code: str) -> str:
        category = self.rt.directory.category_by_code.get(code)
        return category.name(session.locale) if category else code

    def _category_menu(self, session: Session, node: Any, says: list[Say]) -> Turn:
        session.phase = "choose"
        menu = [
            self.say(
                session,
                "category_choice",
                category=self._category_name(session, code),
                digit=spoken_number(int(digit), session.locale),
            )
            for digit, code in sorted(node.categories.items())
        ]
        menu.append(self.say(session, "category_other"))
        return Turn(
            says + menu,
            Expect("digits", max_digits=1, timeout=node.timeout, language=session.locale),
        )

    def _confirm_turn(self, session: Session, node: Any, says: list[Say]) -> Turn:
        session.phase = "confirm"
        name = self._category_name(session, session.vars["category"])
        return Turn(
            [*says, self.say(session, "category_confirm", category=name)],
            Expect("digits", max_digits=1, timeout=node.timeout, language=session.locale),
        )

    async def _enter_report(self, session: Session, node: Any, says: list[Say]) -> Any:
        transcript = session.vars.get(node.var)
        if transcript:
            found = recognise_category(self.rt, transcript)
            voice = self.rt.settings.voice
            if found.category_code and found.confidence >= voice.min_category_confidence:
                session.vars["category"] = found.category_code
                session.vars["category_confidence"] = found.confidence
                if found.confidence >= voice.confirm_below:
                    return await self._create_ticket(session, node, says, found.category_code)
                return self._confirm_turn(session, node, says)
        return self._category_menu(session, node, says)

    async def _reply_report(self, session: Session, node: Any, reply: Reply) -> Turn:
        key = reply.digits[:1]
        if key:
            self._press(session, key)
        if session.phase == "confirm":
            if key == "1":
                return await self._create_ticket(session, node, [], session.vars["category"])
            if key == "2":
                session.tries = 0
                return self._category_menu(session, node, [])
            ask = lambda says: self._confirm_turn(session, node, says)  # noqa: E731
        else:
            if key in node.categories:
                return await self._create_ticket(session, node, [], node.categories[key])
            if key == "0":
                return await self._create_ticket(session, node, [], None)
            ask = lambda says: self._category_menu(session, node, says)  # noqa: E731
        session.tries += 1
        says = [self.say(session, "no_input" if not key else "invalid_choice")]
        if session.tries > node.retries:
            if session.vars.get(node.var):
                # what the caller said is kept: the dispatch desk will sort it out
                return await self._create_ticket(session, node, says, None)
            says.append(self.say(session, "too_many_tries"))
            return await self._enter(session, self.flow.safe, says)
        return ask(says)

    async def _create_ticket(
        self, session: Session, node: Any, says: list[Say], category: str | None
    ) -> Turn:
        locale = session.locale
        description = session.vars.get(node.var) or self.rt.text(
            "voice.reported_by_keypad",
            locale,
            category=self._category_name(session, category) if category else "",
        )
        ticket = await call_actions.report_problem(
            self.rt,
            session.call.call_id,
            description,
            category=category,
            address=session.vars.get("place"),
        )
        session.vars["ticket"] = ticket["number"]
        session.kept = True
        says = [
            *says,
            self.say(
                session, "ticket_created", number=spoken_code(self.rt, ticket["number"], locale)
            ),
        ]
        dept = self.rt.directory.by_id.get(ticket["department_id"] or -1)
        if dept is not None and ticket["state"] == "dispatched":
            says.append(
                self.say(
                    session,
                    "ticket_dispatched",
                    department=dept.name(locale),
                    due=spoken_date(self.rt, ticket["due_at"], locale),
                )
            )
        if session.call.mobile and self.rt.channels.get("sms") is not None:
            says.append(self.say(session, "ticket_sms"))
        return await self._enter(session, node.next, says)

    # --- queue ---------------------------------------------------------------------------

    async def _agent_answered(self, session: Session) -> bool:
        link = await call_actions.call_link(self.rt, session.call.call_id)
        if link is None or link.state != "assigned" or link.agent_id is None:
            return False
        session.vars["agent_id"] = link.agent_id
        return True

    def _bridge_turn(self, session: Session, says: list[Say]) -> Turn:
        """An agent took the call: tell the caller, then the transport bridges them."""
        session.phase = "bridged"
        says = [*says, self.say(session, "queue_connecting")]
        if self.rt.settings.voice.record_calls and not session.vars.get("told_recorded"):
            session.vars["told_recorded"] = True
            says.append(self.say(session, "call_recorded"))
        return Turn(says, Expect("bridge", language=session.locale))

    async def _hold_turn(self, session: Session, node: Any, says: list[Say]) -> Turn:
        if await self._agent_answered(session):
            return self._bridge_turn(session, says)
        spot = await queue_spot(self.rt, session.vars["queued_conversation"])
        if spot is not None:
            says = [
                *says,
                self.say(
                    session,
                    "queue_position",
                    position=spoken_number(spot.position, session.locale),
                    minutes=spoken_number(spot.expected_wait_minutes, session.locale),
                ),
            ]
        if node.callback_digit and node.on_callback:
            says.append(self.say(session, "queue_callback_offer"))
        return Turn(
            says,
            Expect(
                "hold",
                timeout=self.rt.settings.voice.hold_announce_seconds,
                leave_digit=node.callback_digit if node.on_callback else None,
                language=session.locale,
            ),
        )

    async def _enter_queue(self, session: Session, node: Any, says: list[Say]) -> Turn:
        session.vars["queued_conversation"] = await call_actions.enqueue_call(
            self.rt, session.call.call_id, queue=node.queue
        )
        session.hold_since = self.rt.clock.now()
        says = says + self._prompts(session, node) + [self.say(session, "queue_hold")]
        return await self._hold_turn(session, node, says)

    async def _reply_queue(self, session: Session, node: Any, reply: Reply) -> Turn:
        if session.phase == "bridged":  # the bridge to the agent is over
            session.phase = ""
            bridged_to = session.vars.get("agent_id")
            link = await call_actions.call_link(self.rt, session.call.call_id)
            if link is not None and not link.ended and link.outcome != "completed":
                if link.state == "queued":  # transferred to a queue: the caller waits there
                    session.hold_since = self.rt.clock.now()
                    return await self._hold_turn(session, node, [self.say(session, "queue_hold")])
                if link.state == "assigned" and link.agent_id != bridged_to:
                    session.vars["agent_id"] = link.agent_id  # transferred to another agent
                    return self._bridge_turn(session, [])
            if reply.lost and await call_actions.agent_lost(self.rt, session.call.call_id):
                session.hold_since = self.rt.clock.now()
                return await self._hold_turn(session, node, [self.say(session, "queue_agent_lost")])
            session.finished = True
            return Turn([self.say(session, "goodbye")], Expect("hangup"))
        if await self._agent_answered(session):
            return self._bridge_turn(session, [])
        key = reply.digits[:1]
        if key:
            self._press(session, key)
        if key and key == node.callback_digit and node.on_callback:
            return await self._enter(session, node.on_callback, [])
        waited = (self.rt.clock.now() - (session.hold_since or self.rt.clock.now())).total_seconds()
        if waited >= self.rt.settings.voice.max_hold_seconds:
            target = node.on_timeout or self.flow.safe
            if target == session.node:
                return Turn([self.say(session, "goodbye")], Expect("hangup"))
            return await self._enter(session, target, [self.say(session, "queue_timeout")])
        return await self._hold_turn(session, node, [])

    # --- callback -----------------------------------------------------------------------

    def _callback_confirm(self, session: Session, node: Any, says: list[Say]) -> Turn:
        session.phase = "confirm"
        number = spoken_phone(self.rt, session.call.caller, session.locale)
        return Turn(
            [*says, self.say(session, "callback_confirm", number=number)],
            Expect("digits", max_digits=1, timeout=node.timeout, language=session.locale),
        )

    def _callback_enter(self, session: Session, node: Any, says: list[Say]) -> Turn:
        session.phase = "enter"
        return Turn(
            [*says, self.say(session, "callback_enter")],
            Expect(
                "digits",
                max_digits=20,
                terminator="#",
                timeout=node.timeout,
                language=session.locale,
            ),
        )

    async def _enter_callback(self, session: Session, node: Any, says: list[Say]) -> Turn:
        says = says + self._prompts(session, node)
        if session.call.caller.startswith("+"):
            return self._callback_confirm(session, node, says)
        return self._callback_enter(session, node, says)

    async def _reply_callback(self, session: Session, node: Any, reply: Reply) -> Turn:
        self._press(session, reply.digits)
        number: str | None = None
        if session.phase == "confirm":
            key = reply.digits[:1]
            if key == "1":
                number = session.call.caller
            elif key == "2":
                session.tries = 0
                return self._callback_enter(session, node, [])
        else:
            typed = reply.digits.split("#")[0]
            if typed:
                number = typed
        if number is not None:
            try:
                await call_actions.request_callback(self.rt, session.call.call_id, number)
                session.kept = True  # the request carries what the caller said
            except HotlineError:
                number = None
                says = [self.say(session, "callback_no_number")]
            else:
                return await self._enter(session, node.next, [self.say(session, "callback_done")])
        else:
            says = [self.say(session, "no_input" if not reply.digits else "invalid_choice")]
        session.tries += 1
        if session.tries > node.retries:
            return await self._enter(session, self._fail(node), says)
        if session.phase == "confirm":
            return self._callback_confirm(session, node, says)
        return self._callback_enter(session, node, says)

    # --- voice message -----------------------------------------------------------------

    async def _enter_voicemail(self, session: Session, node: Any, says: list[Say]) -> Turn:
        return Turn(
            says + self._prompts(session, node),
            Expect("record", max_seconds=node.max_seconds, terminator="#", language=session.locale),
        )

    async def _voicemail(self, session: Session, reply: Reply) -> None:
        await call_actions.leave_voice_message(
            self.rt,
            session.call.call_id,
            recording_path=reply.recording,
            seconds=reply.seconds,
            transcript=reply.transcript,
            confidence=reply.confidence,
            said_before=session.said if not session.kept else None,
        )
        session.kept = True

    async def _reply_voicemail(self, session: Session, node: Any, reply: Reply) -> Turn:
        if reply.digits:
            self._press(session, reply.digits)
        if not reply.recording and not (reply.transcript or "").strip():
            # nothing recorded: no empty message is offered to an agent
            return await self._enter(session, node.next, [self.say(session, "voicemail_empty")])
        await self._voicemail(session, reply)
        return await self._enter(session, node.next, [self.say(session, "voicemail_done")])

    # nodes whose input never comes back (hangup) or that take none
    async def _reply_hangup(self, session: Session, node: Any, reply: Reply) -> Turn:
        return Turn([], Expect("hangup"))
