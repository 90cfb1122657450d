"""A month of the demo city's hotline, played through the real actions.

:class:`History` walks a :class:`~callcenter.clock.ManualClock` through the past
month and, for each contact, takes the steps a working hotline takes, each
stage one method: a citizen calls, writes or texts (:meth:`History.contact`),
an agent answers from the queue (:meth:`~History.answer`), the desk dispatches
(:meth:`~History.dispatch`), the department signs for, asks for more time,
is urged, replies (:meth:`~History.sign`, :meth:`~History.extend`,
:meth:`~History.approve`, :meth:`~History.urge`, :meth:`~History.reply`), the
desk closes (:meth:`~History.close`) and the citizen answers the callback
survey (:meth:`~History.survey`). A stage returns when the next one comes and
which; the steps are the real actions, so the lists, the audit history and the
KPIs come out as a working hotline's.

What the month looks like is in the city's data file (``[month]``): contacts by
hour and weekday, channels, how often each category comes up, how often tickets
are returned, extended, urged, answered late, and how citizens score. Staff act
in working time (the Chinese calendar); citizens call at any hour.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from callcenter.actions import acd, agents, desk
from callcenter.actions.citizens import find_or_create_citizen
from callcenter.actions.intake import Inbound, receive_message
from callcenter.actions.messages import send_reply
from callcenter.actions.surveys import answer_survey
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.clock import ManualClock
from callcenter.domain.errors import HotlineError
from callcenter.domain.routing import Department
from callcenter.domain.workflow import Actor, Step
from callcenter.queueing import pending_offers
from callcenter.runtime import Runtime
from callcenter.store.records import TicketRecord
from callcenter.views import staff_actors, survey_waiting_for_answer

Next = tuple[datetime, str] | None  # when the next stage comes, and which


@dataclass
class Case:
    """One contact of the month, and the ticket it became."""

    index: int
    category: dict[str, Any]
    channel: str
    text: str
    street: Department | None  # where the citizen is, when they said it
    ticket: TicketRecord | None = None
    conversation_id: int | None = None
    survey_tries: int = 0
    answer_tries: int = 0


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    case: Case = field(compare=False)
    stage: str = field(compare=False)


class History:
    """Plays the month; one method per stage of a contact's life."""

    def __init__(self, rt: Runtime, source: dict[str, Any], rng: random.Random) -> None:
        if not isinstance(rt.clock, ManualClock):
            raise TypeError("the demo history needs a runtime with a ManualClock")
        self.rt = rt
        self.clock: ManualClock = rt.clock
        self.month = source["month"]
        self.descriptions: dict[str, list[str]] = source["descriptions"]
        self.people = source["people"]
        self.categories = [c for c in source["categories"] if c.get("month_weight", 1) > 0]
        self.rng = rng
        self.counts = {"tickets": 0, "steps": 0}
        self.by_role: dict[str, list[Actor]] = {}
        self.department_staff: dict[int, Actor] = {}
        self.callers: list[str] = []  # citizens call again: a phone seen before

    # --- the month ----------------------------------------------------------------------

    async def play(self, contacts: int, start: datetime, end: datetime) -> dict[str, int]:
        """Every contact from ``start`` to ``end``; the clock is left at ``end``."""
        await self._know_the_staff()
        due: list[_Due] = []
        for index, at in enumerate(self.arrivals(contacts, start, end)):
            case = self._new_case(index)
            heapq.heappush(due, _Due(at, index, case, "contact"))
        stages: dict[str, Callable[[Case], Awaitable[Next]]] = {
            name: getattr(self, name)
            for name in (
                "contact",
                "answer",
                "dispatch",
                "sign",
                "extend",
                "approve",
                "urge",
                "reply",
                "close",
                "survey",
            )
        }
        while due:
            item = heapq.heappop(due)
            if item.at >= end:
                continue  # the future: this ticket is still open today
            self.clock.set(item.at)
            try:
                following = await stages[item.stage](item.case)
            except HotlineError:
                following = None  # a step its state no longer allows: the case stops there
            if following is not None:
                at, stage = following
                heapq.heappush(due, _Due(max(at, item.at), item.seq, item.case, stage))
        self.clock.set(end)
        assert self.rt.runner is not None
        await self.rt.runner.drain()
        for agent in self.by_role.get("agent", []):  # the night shift has gone home
            await agents.set_presence(self.rt, "away", actor=agent)
        return dict(self.counts)

    def arrivals(self, contacts: int, start: datetime, end: datetime) -> list[datetime]:
        """When the contacts come: more on weekday mornings and afternoons, few at night."""
        hours, weekdays = self.month["hours"], self.month["weekdays"]
        slots: list[datetime] = []
        weights: list[float] = []
        at = start.replace(minute=0, second=0, microsecond=0)
        while at < end - timedelta(hours=1):
            local = self.rt.local(at)
            slots.append(at)
            weights.append(hours[local.hour] * weekdays[local.weekday()])
            at += timedelta(hours=1)
        chosen = self.rng.choices(slots, weights, k=contacts)
        return sorted(at + timedelta(seconds=self.rng.uniform(0, 3599)) for at in chosen)

    def _new_case(self, index: int) -> Case:
        rng = self.rng
        channels = self.month["channels"]
        channel = rng.choices(list(channels), list(channels.values()))[0]
        category = rng.choices(self.categories, [c["month_weight"] for c in self.categories])[0]
        street = rng.choice(self._streets)
        roads = [k for k in street.keywords if k.endswith(("路", "道", "大道")) or k.isascii()]
        template = rng.choice(self.descriptions[category["code"]])
        english = [r for r in roads if r.isascii()] or ["Lakeside Road"]
        chinese = [r for r in roads if not r.isascii()] or [street.name_zh]
        text = template.format(road=rng.choice(english if template.isascii() else chinese))
        if channel == "sms" and rng.random() < self.month["unrecognised_share"]:
            text = rng.choice(self.people["openers"])  # no category: an agent answers it
        return Case(index, category, channel, text, street)

    async def _know_the_staff(self) -> None:
        async with self.rt.db.read() as conn:
            actors = await staff_actors(conn)
        for actor in actors:
            self.by_role.setdefault(actor.role.value, []).append(actor)
            if actor.department_id is not None:
                self.department_staff[actor.department_id] = actor
        self._streets = [d for d in self.rt.directory.departments if d.kind == "street"]

    # --- time, as people spend it ---------------------------------------------------------

    def working(self, low: float, high: float) -> datetime:
        """``low``-``high`` working hours from now: when a department or the day desk acts."""
        amount = timedelta(hours=self.rng.uniform(low, high))
        return self.rt.calendar.add(self.clock.now(), amount)

    def later(self, low: float, high: float) -> datetime:
        """``low``-``high`` hours from now, day or night (the desk is staffed around the clock)."""
        return self.clock.now() + timedelta(hours=self.rng.uniform(low, high))

    def _agent(self) -> Actor:
        return self.rng.choice(self.by_role["agent"])

    def _phone(self) -> str:
        if self.callers and self.rng.random() < 0.15:
            return self.rng.choice(self.callers)  # someone who called before
        phone = f"+861{self.rng.choice('3578')}{self.rng.randrange(10**8, 10**9)}"
        self.callers.append(phone)
        return phone

    def _holder(self, case: Case) -> Actor | None:
        assert case.ticket is not None
        return self.department_staff.get(case.ticket["department_id"] or -1)

    async def _step(self, case: Case, step: Step, actor: Actor, **params: Any) -> None:
        assert case.ticket is not None
        case.ticket = await take_step(self.rt, case.ticket["id"], step, actor=actor, **params)
        self.counts["steps"] += 1

    # --- the stages -------------------------------------------------------------------------

    async def contact(self, case: Case) -> Next:
        """The citizen texts (auto-intake may open the ticket), or calls, writes on the web
        or on Telegram and an agent takes the ticket down."""
        rt, rng = self.rt, self.rng
        if case.channel == "sms":
            result = await receive_message(
                rt,
                Inbound("sms", "phone", self._phone(), case.text, provider_id=f"DEMO{case.index}"),
            )
            if result.ticket is None:  # waits for an agent, as unrecognised texts do
                case.conversation_id = result.conversation_id
                return self.later(0.01, 0.15), "answer"
            case.ticket = result.ticket
        else:
            agent = self._agent()
            async with rt.transaction() as tx:
                citizen, _ = await find_or_create_citizen(
                    tx,
                    rt,
                    kind="phone",
                    value=self._phone(),
                    actor=agent,
                    name=rng.choice(self.people["surnames"]) + rng.choice(self.people["given"]),
                )
            located = rng.random() >= self.month["no_location_share"]
            point = self._point(case) if located else None
            case.ticket = await create_ticket(
                rt,
                TicketDraft(
                    description=case.text,
                    category=case.category["code"],
                    priority=case.category.get("default_priority", "normal"),
                    lat=point[1] if point else None,
                    lon=point[0] if point else None,
                    address=None if point else self._address(case),
                    citizen_id=citizen.id,
                    origin_channel=case.channel,
                ),
                actor=agent,
                dispatch=False,
            )
            if (
                case.category["default_type"] == "inquiry"
                and rng.random() < self.month["direct_answer_share"]
            ):
                self.counts["tickets"] += 1
                await self._step(case, Step.DIRECT_ANSWER, agent, text="已按政策口径答复市民。")
                return None
        self.counts["tickets"] += 1
        if case.ticket["state"] == "new":
            return self.later(0.05, 1.5), "dispatch"
        return self.working(0.3, 6), "sign"

    async def answer(self, case: Case) -> Next:
        """An agent takes the waiting text through the queue, answers and ends it."""
        assert case.conversation_id is not None
        desk_agents = {a.id: a for a in self.by_role["agent"]}
        for agent in desk_agents.values():
            await agents.set_presence(self.rt, "available", actor=agent)
        await acd.distribute(self.rt)
        taker: Actor | None = None
        for agent in desk_agents.values():
            async with self.rt.db.read() as conn:
                offers = await pending_offers(conn, agent.id)
            offer = next((o for o in offers if o.conversation_id == case.conversation_id), None)
            if offer is not None:
                await desk.accept_offer(self.rt, offer.id, actor=agent)
                taker = agent
                break
        for agent in desk_agents.values() if taker is None else ():
            # offered to no one (an older text came first, or it overflowed): an agent
            # takes it from the queue table, as the desk's staff do
            try:
                await desk.pick_conversation(self.rt, case.conversation_id, actor=agent)
            except HotlineError:
                continue
            taker = agent
            break
        if taker is None:  # every agent full: the next free one takes it soon
            case.answer_tries += 1
            return (self.later(0.05, 0.3), "answer") if case.answer_tries < 20 else None
        answer = self.rng.choice(self.people["agent_answers"])
        await send_reply(self.rt, case.conversation_id, answer, actor=taker)
        await desk.end_conversation(
            self.rt, case.conversation_id, wrap_up_code="information", actor=taker
        )
        return None

    async def dispatch(self, case: Case) -> Next:
        """派单: to the routed department, or, where routing left it to the desk, to the
        department the category and the citizen's place call for."""
        assert case.ticket is not None
        agent = self._agent()
        if (case.ticket["routing"] or {}).get("to_desk"):
            target = self.responsible(case)
            if target is None:
                return None
            await self._step(case, Step.DISPATCH, agent, department_id=target.id)
        else:
            await self._step(case, Step.DISPATCH, agent)
        return self.working(0.3, 6), "sign"

    def responsible(self, case: Case) -> Department | None:
        """The department the dispatcher picks: the category's kind, in the citizen's
        district (a street or community kind: their street or one of its communities)."""
        directory = self.rt.directory
        kind = case.category["department_kind"]
        street = case.street
        if street is None:
            return None
        if kind == "street":
            return street
        if kind == "community":
            communities = [d for d in directory.departments if d.parent_id == street.id]
            return self.rng.choice(communities) if communities else None
        ours = [d for d in directory.departments if d.kind == kind]
        in_district = [d for d in ours if d.parent_id == street.parent_id]
        found = in_district or ours
        return found[0] if found else None

    async def sign(self, case: Case) -> Next:
        """签收, or 退单 when it is not the department's to handle."""
        holder = self._holder(case)
        if holder is None:
            return None
        if self.rng.random() < self.month["return_share"]:
            await self._step(case, Step.RETURN, holder, reason="不属于本单位职责范围")
            return self.later(0.2, 2), "dispatch"
        await self._step(case, Step.SIGN_FOR, holder)
        roll = self.rng.random()
        if roll < self.month["extension_share"]:
            return self.working(4, 20), "extend"
        if roll < self.month["extension_share"] + self.month["urge_share"]:
            return self._before_due(case, 0.6, 0.95), "urge"
        return self._reply_time(case), "reply"

    async def extend(self, case: Case) -> Next:
        """延期: the department asks for a few more working days."""
        holder = self._holder(case)
        if holder is None:
            return None
        await self._step(
            case,
            Step.REQUEST_EXTENSION,
            holder,
            days=self.rng.randint(2, 5),
            reason="需协调多个部门共同处置",
        )
        return self.working(0.5, 6), "approve"

    async def approve(self, case: Case) -> Next:
        """The supervisor grants the extension; the new deadline counts for the reply."""
        await self._step(case, Step.APPROVE_EXTENSION, self.by_role["supervisor"][0])
        return self._reply_time(case), "reply"

    async def urge(self, case: Case) -> Next:
        """催办: the desk presses a department that is near its deadline."""
        await self._step(case, Step.URGE, self._agent(), note="请尽快办理")
        return self._reply_time(case), "reply"

    async def reply(self, case: Case) -> Next:
        """答复: the department's result."""
        holder = self._holder(case)
        if holder is None:
            return None
        await self._step(case, Step.REPLY, holder, text="已现场核实并处理完毕，感谢您的监督。")
        return self.later(0.3, 4), "close"

    async def close(self, case: Case) -> Next:
        """办结: the desk accepts the reply; the survey goes out after the configured delay."""
        await self._step(case, Step.CLOSE, self._agent())
        delay = self.rt.settings.notify.survey_delay_minutes / 60
        return self.later(delay + 0.5, delay + 12), "survey"

    async def survey(self, case: Case) -> Next:
        """回访: the survey is sent and the citizen answers it, mostly content; a low score
        reopens the ticket (重办) and the department works on it again."""
        assert self.rt.runner is not None and case.ticket is not None
        await self.rt.runner.drain()
        async with self.rt.db.read() as conn:
            survey_id = await survey_waiting_for_answer(conn, case.ticket["id"])
        if survey_id is None:
            case.survey_tries += 1  # held for the quiet hours: the citizen answers once asked
            return (self.later(1, 4), "survey") if case.survey_tries < 4 else None
        if self.rng.random() < self.month["survey_silent_share"]:
            return None
        score = self.rng.choices([5, 4, 3, 2, 1], self.month["survey_scores"])[0]
        # content citizens say it was solved; the unsolved score it low
        solved = score >= 4 or (score == 3 and self.rng.random() < self.month["solved_share"])
        outcome = await answer_survey(self.rt, survey_id, score=score, solved=solved)
        if outcome["reopened"]:
            case.ticket = outcome["ticket"]
            return self.working(0.3, 6), "sign"
        return None

    # --- where and when -----------------------------------------------------------------------

    def _point(self, case: Case) -> tuple[float, float] | None:
        """A point in one of the citizen's street's grid cells (lon, lat)."""
        cells = [
            c
            for c in self.rt.directory.cells
            if case.street is not None
            and (owner := self.rt.directory.by_id.get(c.owner_id or -1)) is not None
            and owner.parent_id == case.street.id
        ]
        if not cells:
            return None
        point = self.rng.choice(cells).geometry.representative_point()
        return point.x, point.y

    def _address(self, case: Case) -> str:
        street = case.street
        roads = [k for k in street.keywords if k.endswith(("路", "道"))] if street else []
        road = self.rng.choice(roads) if roads else (street.name_zh if street else "")
        return f"{road}{self.rng.randint(1, 300)}号"

    def _before_due(self, case: Case, low: float, high: float) -> datetime:
        """A moment between now and the ticket's deadline: ``low``-``high`` of the time left
        (working time, or the clock's for an urgent ticket)."""
        assert case.ticket is not None
        now, due = self.clock.now(), case.ticket["due_at"]
        if due is None or due <= now:
            return self.working(1, 8)
        share = self.rng.uniform(low, high)
        if self.rt.sla.is_working(case.ticket["priority"]):
            return self.rt.calendar.add(now, self.rt.calendar.between(now, due) * share)
        return now + (due - now) * share

    def _reply_time(self, case: Case) -> datetime:
        """Most replies come before the deadline; the rest up to a working day late."""
        if self.rng.random() < self.month["on_time_share"]:
            return self._before_due(case, 0.15, 0.9)
        assert case.ticket is not None
        late = max(case.ticket["due_at"] or self.clock.now(), self.clock.now())
        return self.rt.calendar.add(late, timedelta(hours=self.rng.uniform(1, 24)))
