"""Automatic contact distribution (ACD): who gets the next waiting conversation.

Pure logic, no I/O. :func:`plan` looks at the waiting conversations, the agents
and the queues' rules at one instant and says what to do: which offers ran
out, which conversations overflow to another queue, and which agent each
waiting conversation is offered to. :mod:`callcenter.actions.acd` loads the
picture from the database, calls :func:`plan` and applies the result in one
transaction. See ``docs/acd.md``.

- **Presence**: ``available`` agents get offers while they have a free slot
  (``capacity`` minus conversations they hold minus offers they have not
  answered). ``busy`` and ``away`` agents get none. ``wrap_up`` follows the end
  of a conversation for the queue's ``wrap_up`` time, then the agent is
  available again on their own.
- **Skills**: an agent with a list of languages takes only those; an agent
  with a list of queues serves only those. Categories are a preference: when
  some candidates know the conversation's category, only they are considered.
- **Strategies**, per queue: ``longest_idle`` (the agent whose last contact, or
  return to availability, is oldest), ``round_robin`` (the next agent by id
  after the one this queue picked last), ``fewest_contacts`` (fewest contacts
  taken today, then fewest held now, then longest idle).
- **Calls** (``Waiting.voice``) go only to agents with the voice skill, and a call
  takes an agent's whole capacity: it is offered only to an agent who holds and is
  offered nothing, and an agent on a call (or offered one) gets nothing else.
- **Offers** run out after ``offer_timeout``; a declined or timed-out offer
  is not made to the same agent again during that stay in the queue.
- **Overflow**: a conversation that waited ``overflow_after`` in a queue with
  ``overflow_to`` moves to that queue (and may be offered to its agents).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Presence(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    AWAY = "away"


# what an agent may choose; wrap-up is entered by ending a conversation
SETTABLE_PRESENCE = frozenset({Presence.AVAILABLE, Presence.BUSY, Presence.AWAY})


class Strategy(StrEnum):
    LONGEST_IDLE = "longest_idle"
    ROUND_ROBIN = "round_robin"
    FEWEST_CONTACTS = "fewest_contacts"


@dataclass(frozen=True)
class QueueRule:
    name: str
    strategy: Strategy = Strategy.LONGEST_IDLE
    overflow_to: str | None = None
    overflow_after: timedelta = timedelta(minutes=5)
    offer_timeout: timedelta = timedelta(seconds=30)
    wrap_up: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class AgentView:
    """An agent as the ACD sees them at one instant."""

    agent_id: int
    presence: Presence
    presence_since: datetime
    capacity: int
    active: int = 0  # conversations the agent holds
    pending: int = 0  # offers made to the agent and not yet answered
    contacts_today: int = 0
    last_contact_at: datetime | None = None
    wrap_up_until: datetime | None = None
    languages: frozenset[str] = frozenset()  # empty: every language
    categories: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()  # empty: every queue
    voice: bool = True  # the voice skill: takes calls
    on_call: bool = False  # holds a call, or is offered one: the whole capacity is taken
    # at most this many at once on a channel (e.g. one call, three chats), within
    # ``capacity``; a channel not named is limited by ``capacity`` alone
    channel_capacity: tuple[tuple[str, int], ...] = ()
    # what the agent holds or is offered now, per channel
    channel_load: tuple[tuple[str, int], ...] = ()

    def free_for(self, channel: str, now: datetime) -> int:
        """Free slots for a conversation on ``channel``."""
        slots = self.free_slots(now)
        cap = dict(self.channel_capacity).get(channel)
        if cap is None:
            return slots
        return min(slots, max(0, cap - dict(self.channel_load).get(channel, 0)))

    def offered(self, channel: str, delta: int) -> AgentView:
        """The agent with one offer more (``delta`` 1) or less (-1) on ``channel``."""
        load = dict(self.channel_load)
        load[channel] = max(0, load.get(channel, 0) + delta)
        return replace(
            self,
            pending=max(0, self.pending + delta),
            channel_load=tuple(sorted(load.items())),
        )

    def presence_at(self, now: datetime) -> Presence:
        """Wrap-up ends by itself when its time is up."""
        if self.presence is Presence.WRAP_UP and (
            self.wrap_up_until is None or self.wrap_up_until <= now
        ):
            return Presence.AVAILABLE
        return self.presence

    def available_since(self, now: datetime) -> datetime:
        if self.presence is Presence.WRAP_UP and self.presence_at(now) is Presence.AVAILABLE:
            return self.wrap_up_until or self.presence_since
        return self.presence_since

    def idle_since(self, now: datetime) -> datetime:
        """The later of: back to available, last contact taken or ended."""
        since = self.available_since(now)
        if self.last_contact_at is not None and self.last_contact_at > since:
            return self.last_contact_at
        return since

    def free_slots(self, now: datetime) -> int:
        if self.presence_at(now) is not Presence.AVAILABLE or self.on_call:
            return 0
        return max(0, self.capacity - self.active - self.pending)

    def takes_call(self, channel: str, now: datetime) -> bool:
        """A call needs the whole agent: the voice skill, available, room on the call's
        channel, holding and offered nothing else."""
        return self.voice and self.free_for(channel, now) > 0 and self.active + self.pending == 0

    def state(self, now: datetime) -> str:
        """What a wallboard shows: an available agent with every slot taken is busy."""
        presence = self.presence_at(now)
        if presence is Presence.AVAILABLE and (self.on_call or self.active >= self.capacity):
            return Presence.BUSY.value
        return presence.value

    def serves(self, queue: str, language: str) -> bool:
        if self.queues and queue not in self.queues:
            return False
        return not self.languages or language in self.languages


@dataclass(frozen=True)
class Waiting:
    """One conversation's stay in a queue, not yet with an agent."""

    entry_id: int
    conversation_id: int
    queue: str
    entered_at: datetime
    queued_at: datetime  # when the citizen started waiting (kept across overflow)
    language: str = "zh-CN"
    category: str | None = None
    channel: str = ""  # sms, webchat, voice...: an agent's capacity may differ per channel
    voice: bool = False  # a live call (takes the agent's whole capacity)
    offer_id: int | None = None  # the offer that is out, if any
    offered_to: int | None = None
    offer_expires_at: datetime | None = None
    tried: frozenset[int] = frozenset()  # agents who declined or let an offer run out
    # when each of them last did: an agent who is available again since then is offered
    # it again (a missed offer sends the agent away; coming back means "give it to me")
    tried_at: Mapping[int, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class NewOffer:
    entry_id: int
    conversation_id: int
    agent_id: int
    queue: str
    expires_at: datetime


@dataclass(frozen=True)
class ExpiredOffer:
    offer_id: int
    entry_id: int
    agent_id: int


@dataclass(frozen=True)
class Overflow:
    entry_id: int
    conversation_id: int
    from_queue: str
    to_queue: str


@dataclass
class Plan:
    expired: list[ExpiredOffer] = field(default_factory=list)
    overflows: list[Overflow] = field(default_factory=list)
    offers: list[NewOffer] = field(default_factory=list)
    next_check: datetime | None = None

    @property
    def empty(self) -> bool:
        return not (self.expired or self.overflows or self.offers)


def rule_for(rules: Mapping[str, QueueRule], queue: str) -> QueueRule:
    return rules.get(queue) or QueueRule(queue)


def _passed_on(agent: AgentView, waiting: Waiting, now: datetime) -> bool:
    """The agent declined this conversation or let its offer run out, and has not become
    available again since."""
    if agent.agent_id not in waiting.tried:
        return False
    tried_at = waiting.tried_at.get(agent.agent_id)
    return tried_at is None or agent.available_since(now) < tried_at


def choose_agent(
    rule: QueueRule,
    waiting: Waiting,
    agents: Iterable[AgentView],
    now: datetime,
    *,
    last_agent_id: int | None = None,
) -> AgentView | None:
    """The agent to offer ``waiting`` to under the queue's strategy, or None."""
    candidates = [
        a
        for a in agents
        if (
            a.takes_call(waiting.channel, now)
            if waiting.voice
            else a.free_for(waiting.channel, now) > 0
        )
        and a.serves(waiting.queue, waiting.language)
        and not _passed_on(a, waiting, now)
    ]
    if waiting.category:
        skilled = [a for a in candidates if waiting.category in a.categories]
        if skilled:
            candidates = skilled
    if not candidates:
        return None
    if rule.strategy is Strategy.ROUND_ROBIN:
        ordered = sorted(candidates, key=lambda a: a.agent_id)
        if last_agent_id is not None:
            for agent in ordered:
                if agent.agent_id > last_agent_id:
                    return agent
        return ordered[0]
    if rule.strategy is Strategy.FEWEST_CONTACTS:
        return min(
            candidates,
            key=lambda a: (a.contacts_today, a.active + a.pending, a.idle_since(now), a.agent_id),
        )
    return min(candidates, key=lambda a: (a.idle_since(now), a.agent_id))


def plan(
    now: datetime,
    rules: Mapping[str, QueueRule],
    waiting: Sequence[Waiting],
    agents: Sequence[AgentView],
    *,
    last_agent: Mapping[str, int] | None = None,
) -> Plan:
    """Decide, at ``now``, every expiry, overflow and offer. Oldest waiting first."""
    result = Plan()
    by_id = {a.agent_id: a for a in agents}
    last = dict(last_agent or {})
    deadlines: list[datetime] = []
    still: list[Waiting] = []

    for item in waiting:
        expires_at = item.offer_expires_at
        if item.offer_id is not None and expires_at is not None:
            if expires_at <= now:
                assert item.offered_to is not None
                result.expired.append(ExpiredOffer(item.offer_id, item.entry_id, item.offered_to))
                agent = by_id.get(item.offered_to)
                if agent is not None:
                    by_id[agent.agent_id] = agent.offered(item.channel, -1)
                item = replace(
                    item,
                    offer_id=None,
                    offered_to=None,
                    offer_expires_at=None,
                    tried=item.tried | {item.offered_to},
                    tried_at={**item.tried_at, item.offered_to: now},
                )
            else:
                deadlines.append(expires_at)
        rule = rule_for(rules, item.queue)
        if rule.overflow_to and rule.overflow_to != item.queue:
            overflow_at = item.entered_at + rule.overflow_after
            if overflow_at <= now:
                result.overflows.append(
                    Overflow(item.entry_id, item.conversation_id, item.queue, rule.overflow_to)
                )
                if item.offered_to is not None and item.offered_to in by_id:
                    agent = by_id[item.offered_to]
                    by_id[agent.agent_id] = agent.offered(item.channel, -1)
                continue
            deadlines.append(overflow_at)
        still.append(item)

    for item in sorted(still, key=lambda w: (w.queued_at, w.entry_id)):
        if item.offer_id is not None:
            continue
        rule = rule_for(rules, item.queue)
        agent = choose_agent(rule, item, by_id.values(), now, last_agent_id=last.get(item.queue))
        if agent is None:
            continue
        expires = now + rule.offer_timeout
        result.offers.append(
            NewOffer(item.entry_id, item.conversation_id, agent.agent_id, item.queue, expires)
        )
        deadlines.append(expires)
        by_id[agent.agent_id] = replace(
            agent.offered(item.channel, 1), on_call=agent.on_call or item.voice
        )
        last[item.queue] = agent.agent_id

    for agent in agents:
        if agent.presence is Presence.WRAP_UP and agent.wrap_up_until and agent.wrap_up_until > now:
            deadlines.append(agent.wrap_up_until)
    result.next_check = min(deadlines) if deadlines else None
    return result


def positions(waiting: Iterable[Waiting]) -> dict[int, tuple[int, int]]:
    """Each waiting stay's place in its queue and how many wait there: ``{entry_id:
    (position, waiting)}``, 1 for the one that waited longest. One sort, O(n log n)."""
    by_queue: dict[str, list[Waiting]] = {}
    for item in waiting:
        by_queue.setdefault(item.queue, []).append(item)
    places: dict[int, tuple[int, int]] = {}
    for items in by_queue.values():
        items.sort(key=lambda w: (w.queued_at, w.entry_id))
        for place, item in enumerate(items, start=1):
            places[item.entry_id] = (place, len(items))
    return places


def queue_position(waiting: Sequence[Waiting], entry_id: int) -> int | None:
    """1 for the conversation that waited longest in its queue; None if not waiting."""
    place = positions(waiting).get(entry_id)
    return place[0] if place else None
