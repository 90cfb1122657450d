"""The KPI formulas on hand-made facts: episodes from audit events, rates, score, ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callcenter.domain.kpi import (
    Contact,
    Episode,
    Ratio,
    SurveyAnswer,
    contact_kpis,
    episodes_from_events,
    on_time_rate,
    rank,
    reopen_rate,
    resolution_rate,
    response_rate,
    return_rate,
    satisfaction_rate,
    score,
)

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def ev(ticket: int, seq: int, at: float, action: str, **after: object) -> dict[str, object]:
    values = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in after.items()}
    return {"entity_id": ticket, "seq": seq, "at": h(at), "action": action, "after": values}


def test_episodes_follow_dispatch_return_and_reopen() -> None:
    events = [
        ev(1, 1, 0, "ticket.create", state="new"),
        ev(1, 2, 1, "ticket.dispatch", department_id=7, sign_due_at=h(9), due_at=h(49)),
        ev(1, 3, 2, "ticket.return", department_id=None),
        ev(1, 4, 3, "ticket.dispatch", department_id=8, sign_due_at=h(11), due_at=h(51)),
        ev(1, 5, 12, "ticket.sign_for", accepted_at=h(12)),
        ev(1, 6, 20, "ticket.approve_extension", due_at=h(80)),
        ev(1, 7, 60, "ticket.reply", state="replied"),
        ev(1, 8, 61, "ticket.close", state="closed"),
        ev(1, 9, 70, "ticket.reopen", sign_due_at=h(78), due_at=h(118)),
        ev(1, 10, 71, "ticket.sign_for"),
    ]
    first, second, third = episodes_from_events(reversed(events))  # order does not matter
    assert (first.department_id, first.returned_at, first.responded_at) == (7, h(2), h(2))
    assert (second.department_id, second.signed_at, second.due_at) == (8, h(12), h(80))
    assert second.replied_at == h(60) and second.reopened
    assert (third.department_id, third.started_by, third.signed_at) == (8, "reopen", h(71))
    assert not third.reopened


def episode(**kw: object) -> Episode:
    values: dict[str, object] = {
        "ticket_id": 1,
        "department_id": 7,
        "started_at": h(0),
        "started_by": "dispatch",
        "sign_due_at": h(8),
        "due_at": h(48),
    }
    values.update(kw)
    return Episode(**values)  # type: ignore[arg-type]


def test_response_and_on_time_rates_count_only_what_is_due() -> None:
    episodes = [
        episode(signed_at=h(1), replied_at=h(40)),  # both on time
        episode(signed_at=h(9), replied_at=h(50)),  # both late
        episode(returned_at=h(2)),  # returned in time: a response, not in on-time
        episode(),  # nothing yet, deadlines passed at h(100)
        episode(sign_due_at=h(200), due_at=h(300)),  # nothing yet, nothing due
    ]
    now = h(100)
    assert response_rate(episodes, now) == Ratio(2, 4)
    assert on_time_rate(episodes, now) == Ratio(1, 3)
    assert return_rate(episodes) == Ratio(1, 5)
    assert reopen_rate(
        [episode(replied_at=h(5), reopened=True), episode(replied_at=h(5))]
    ) == Ratio(1, 2)
    assert response_rate([], now).value is None


def test_survey_rates() -> None:
    answers = [
        SurveyAnswer(7, 5, True),
        SurveyAnswer(7, 4, True),
        SurveyAnswer(7, 3, False),  # 基本满意 is 3: not satisfied at the default threshold
        SurveyAnswer(7, 1, None),
        SurveyAnswer(7, None, True),
    ]
    assert satisfaction_rate(answers) == Ratio(2, 4)
    assert satisfaction_rate(answers, satisfied_min=3) == Ratio(3, 4)
    assert resolution_rate(answers) == Ratio(3, 4)


def test_score_weights_and_missing_kpis() -> None:
    weights = {"response_rate": 50, "return_rate": 50}
    assert score({"response_rate": Ratio(9, 10), "return_rate": Ratio(1, 10)}, weights) == 90.0
    # return rate has nothing to count: the response rate alone makes the score
    assert score({"response_rate": Ratio(3, 4), "return_rate": Ratio(0, 0)}, weights) == 75.0
    assert score({}, weights) is None
    ranked = rank(
        [
            {"code": "a", "score": 80.0},
            {"code": "b", "score": None},
            {"code": "c", "score": 95.5},
            {"code": "d", "score": 80.0},
        ]
    )
    assert [(r["code"], r["rank"]) for r in ranked] == [("c", 1), ("a", 2), ("d", 2), ("b", None)]


def test_contact_centre_kpis() -> None:
    contacts = [
        Contact(h(0), h(0) + timedelta(seconds=10)),  # within 20 s
        Contact(h(0), h(0) + timedelta(seconds=50)),  # answered late
        Contact(h(0), abandoned=True),
        Contact(h(0), left_message=True),
        Contact(h(0)),  # still waiting: in none of them
    ]
    kpis = contact_kpis(contacts, threshold_seconds=20)
    assert kpis.answer_rate == Ratio(2, 4)
    assert kpis.service_level == Ratio(1, 2)
    assert kpis.abandonment_rate == Ratio(1, 4)
    assert kpis.average_wait_seconds == 30
    assert kpis.waiting == 1


def test_the_satisfaction_rate_reads_the_survey_s_own_scores() -> None:
    """One definition of what 满意 / 基本满意 / 不满意 score: the survey's."""
    from callcenter.domain.survey import Answer, parse_reply

    answers = []
    for text in ("满意", "基本满意", "不满意", "比较满意，已解决", "一般"):
        parsed = parse_reply(text)
        assert isinstance(parsed, Answer)
        answers.append(SurveyAnswer(1, parsed.score, parsed.solved))
    assert [a.score for a in answers] == [5, 4, 1, 4, 3]
    assert satisfaction_rate(answers) == Ratio(3, 5)  # 满意 and both 基本/比较满意
    assert satisfaction_rate(answers, satisfied_min=5) == Ratio(1, 5)
