"""The ACD's decisions, on an injected clock: strategies, capacity, wrap-up, offers, overflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callcenter.domain.acd import (
    AgentView,
    Presence,
    QueueRule,
    Strategy,
    Waiting,
    choose_agent,
    plan,
    positions,
    queue_position,
)

T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def agent(agent_id: int, **kw: object) -> AgentView:
    values: dict[str, object] = {
        "agent_id": agent_id,
        "presence": Presence.AVAILABLE,
        "presence_since": T0,
        "capacity": 1,
    }
    values.update(kw)
    return AgentView(**values)  # type: ignore[arg-type]


def waiting(entry_id: int, queue: str = "general", waited: float = 0, **kw: object) -> Waiting:
    values: dict[str, object] = {
        "entry_id": entry_id,
        "conversation_id": 100 + entry_id,
        "queue": queue,
        "entered_at": at(-waited),
        "queued_at": at(-waited),
    }
    values.update(kw)
    return Waiting(**values)  # type: ignore[arg-type]


RULES = {
    "general": QueueRule("general", Strategy.LONGEST_IDLE, overflow_to="overflow"),
    "rr": QueueRule("rr", Strategy.ROUND_ROBIN),
    "few": QueueRule("few", Strategy.FEWEST_CONTACTS),
    "overflow": QueueRule("overflow", Strategy.FEWEST_CONTACTS),
}


def test_longest_idle_picks_the_agent_idle_longest() -> None:
    agents = [
        agent(1, presence_since=at(-1000), last_contact_at=at(-10)),
        agent(2, presence_since=at(-1000), last_contact_at=at(-300)),
        agent(3, presence_since=at(-100)),
    ]
    got = choose_agent(RULES["general"], waiting(1), agents, T0)
    assert got is not None and got.agent_id == 2
    # an agent who just came back is idle since then, not since their last contact
    agents[1] = agent(2, last_contact_at=at(-300), presence_since=at(-5))
    got = choose_agent(RULES["general"], waiting(1), agents, T0)
    assert got is not None and got.agent_id == 3


def test_round_robin_takes_turns_by_id() -> None:
    agents = [agent(5, capacity=5), agent(2, capacity=5), agent(9, capacity=5)]
    picks = []
    last = None
    for n in range(5):
        got = choose_agent(RULES["rr"], waiting(n, "rr"), agents, T0, last_agent_id=last)
        assert got is not None
        picks.append(got.agent_id)
        last = got.agent_id
    assert picks == [2, 5, 9, 2, 5]
    result = plan(T0, RULES, [waiting(i, "rr", waited=10 - i) for i in range(4)], agents)
    assert [o.agent_id for o in result.offers] == [2, 5, 9, 2]


def test_fewest_contacts_prefers_the_least_loaded_today() -> None:
    agents = [
        agent(1, capacity=3, contacts_today=7),
        agent(2, capacity=3, contacts_today=2, active=1),
        agent(3, capacity=3, contacts_today=2, active=0),
    ]
    got = choose_agent(RULES["few"], waiting(1, "few"), agents, T0)
    assert got is not None and got.agent_id == 3


def test_capacity_counts_held_conversations_and_open_offers() -> None:
    agents = [agent(1, capacity=3, active=1), agent(2, capacity=1, active=1)]
    result = plan(T0, RULES, [waiting(i, waited=30 - i) for i in range(4)], agents)
    # agent 1 has two free slots; agent 2 none; two conversations keep waiting
    assert [(o.entry_id, o.agent_id) for o in result.offers] == [(0, 1), (1, 1)]
    full = agent(1, capacity=3, active=1, pending=2)
    assert full.free_slots(T0) == 0
    assert agent(1, capacity=3, active=3).state(T0) == "busy"


def test_only_available_agents_get_offers() -> None:
    agents = [
        agent(1, presence=Presence.AWAY),
        agent(2, presence=Presence.BUSY),
        agent(3, presence=Presence.WRAP_UP, wrap_up_until=at(20)),
    ]
    assert plan(T0, RULES, [waiting(1)], agents).offers == []


def test_wrap_up_ends_by_itself_and_the_agent_is_offered_again() -> None:
    wrapping = agent(3, presence=Presence.WRAP_UP, presence_since=at(-10), wrap_up_until=at(20))
    first = plan(T0, RULES, [waiting(1)], [wrapping])
    assert first.offers == [] and first.next_check == at(20)
    assert wrapping.presence_at(at(19)) is Presence.WRAP_UP
    assert wrapping.presence_at(at(20)) is Presence.AVAILABLE
    later = plan(at(20), RULES, [waiting(1)], [wrapping])
    assert [o.agent_id for o in later.offers] == [3]
    # and counts as idle from the end of wrap-up
    assert wrapping.idle_since(at(25)) == at(20)


def test_language_and_queue_skills_are_required_categories_preferred() -> None:
    agents = [
        agent(1, languages=frozenset({"zh-CN"})),
        agent(2, languages=frozenset({"en"}), last_contact_at=at(-1)),
        agent(3, queues=frozenset({"rr"}), last_contact_at=at(-999)),
    ]
    got = choose_agent(RULES["general"], waiting(1, language="en"), agents, T0)
    assert got is not None and got.agent_id == 2
    got = choose_agent(RULES["general"], waiting(1, language="zh-CN"), agents, T0)
    assert got is not None and got.agent_id == 1
    skilled = [agent(1), agent(2, categories=frozenset({"noise"}), last_contact_at=at(-1))]
    got = choose_agent(RULES["general"], waiting(1, category="noise"), skilled, T0)
    assert got is not None and got.agent_id == 2
    got = choose_agent(RULES["general"], waiting(1, category="garbage"), skilled, T0)
    assert got is not None and got.agent_id == 1  # nobody knows garbage: anyone will do


def test_a_declined_or_timed_out_offer_goes_to_the_next_agent() -> None:
    agents = [agent(1, pending=1), agent(2, last_contact_at=at(-1))]
    out = waiting(1, offer_id=50, offered_to=1, offer_expires_at=at(30))
    still = plan(at(10), RULES, [out], agents)
    assert still.offers == [] and still.expired == [] and still.next_check == at(30)
    timed_out = plan(at(30), RULES, [out], agents)
    assert [(e.offer_id, e.agent_id) for e in timed_out.expired] == [(50, 1)]
    assert [o.agent_id for o in timed_out.offers] == [2]
    assert timed_out.offers[0].expires_at == at(60)
    declined = waiting(1, tried=frozenset({1, 2}))
    assert plan(T0, RULES, [declined], [agent(1), agent(2)]).offers == []


def test_overflow_after_the_queue_limit() -> None:
    rules = {
        "general": QueueRule(
            "general", overflow_to="overflow", overflow_after=timedelta(seconds=60)
        ),
        "overflow": QueueRule("overflow"),
    }
    item = waiting(1, waited=0)
    early = plan(at(59), rules, [item], [])
    assert early.overflows == [] and early.next_check == at(60)
    late = plan(at(60), rules, [item], [])
    assert [(o.entry_id, o.from_queue, o.to_queue) for o in late.overflows] == [
        (1, "general", "overflow")
    ]
    # a queue with no overflow keeps its conversation
    assert plan(at(9999), rules, [waiting(1, "overflow")], []).overflows == []


def test_oldest_waiting_is_served_first_and_positions() -> None:
    items = [waiting(1, waited=5), waiting(2, waited=50), waiting(3, "rr", waited=500)]
    result = plan(T0, RULES, items, [agent(1)])
    assert [o.entry_id for o in result.offers] == [3]
    result = plan(T0, RULES, items[:2], [agent(1)])
    assert [o.entry_id for o in result.offers] == [2]
    assert queue_position(items, 2) == 1
    assert queue_position(items, 1) == 2
    assert queue_position(items, 3) == 1
    assert queue_position(items, 99) is None


def test_positions_of_a_long_queue_in_one_sort() -> None:
    """Every place at once, as the queue list and the web chat need them (O(n log n))."""
    items = [waiting(i, "general" if i % 3 else "voice", waited=10_000 - i) for i in range(1, 3001)]
    places = positions(items)
    general = [w.entry_id for w in items if w.queue == "general"]
    assert places[general[0]] == (1, len(general)) and places[general[-1]] == (2000, 2000)
    assert places[3] == (1, 1000) and places[3000] == (1000, 1000)
    same_time = [waiting(7, waited=5), waiting(4, waited=5)]  # a tie: the older stay first
    assert positions(same_time) == {4: (1, 2), 7: (2, 2)}


def test_capacity_per_channel() -> None:
    """Three at once, but one call: a second call waits for another agent, a chat does not."""
    busy_on_a_call = agent(
        1,
        capacity=3,
        active=1,
        channel_capacity=(("sip", 1),),
        channel_load=(("sip", 1),),
    )
    rules = {"general": QueueRule("general")}
    call = waiting(1, channel="sip")
    chat = waiting(2, channel="webchat", waited=-1)
    decided = plan(at(10), rules, [call, chat], [busy_on_a_call])
    assert [(o.entry_id, o.agent_id) for o in decided.offers] == [(2, 1)]
    # one offer of a call out to an agent with room for one call: no second call offered
    free = agent(2, capacity=3, channel_capacity=(("sip", 1),))
    two_calls = plan(at(10), rules, [waiting(3, channel="sip"), waiting(4, channel="sip")], [free])
    assert [o.entry_id for o in two_calls.offers] == [3]
    assert free.free_for("webchat", at(10)) == 3 and free.free_for("sip", at(10)) == 1
