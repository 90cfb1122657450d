"""The callback satisfaction survey (回访): sending it, reminding, expiring, reading answers.
Scheduling it after a closure is :mod:`callcenter.actions.schedules`.

A closed ticket gets a survey: ``notify.survey_delay_minutes`` after closure
(moved out of the quiet hours) the citizen is asked, on the channel they can be
reached on, to score the service 1-5 and to say whether the problem was solved.
Without an answer, one reminder follows after ``survey_reminder_hours``; after
another ``survey_expire_hours`` the survey is marked unanswered.

Answers come back as text (parsed by :mod:`callcenter.domain.survey`, see
:func:`answer_from_text`) or as buttons (Telegram, the web; :func:`answer_survey`).
A score of 1-2 or "not solved" reopens the ticket (重办) through the workflow,
which tells the department and the citizen; other answers are thanked.
Answers feed the satisfaction and resolution rates (docs/kpi.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypedDict

from sqlalchemy import select, update

from callcenter.actions import audit, notify
from callcenter.actions.messages import is_opted_out, queue_outbound
from callcenter.actions.schedules import (  # noqa: F401  (schedule_survey: found here before)
    SURVEY_EXPIRE,
    SURVEY_REMIND,
    SURVEY_SEND,
    schedule_survey,
)
from callcenter.actions.tickets import apply_step
from callcenter.domain.errors import Conflict, InvalidInput, NotFound
from callcenter.domain.ids import parse_id
from callcenter.domain.survey import AMBIGUOUS, Answer, parse_reply
from callcenter.domain.workflow import SYSTEM, Actor, Step
from callcenter.jobs.outbox import Job, JobOutcome, enqueue
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.queries import row_by_id
from callcenter.store.records import TicketRecord, ticket_record
from callcenter.store.tables import surveys, tickets

SEND, REMIND, EXPIRE = SURVEY_SEND, SURVEY_REMIND, SURVEY_EXPIRE
PENDING = ("sent", "reminded")


async def _set_state(tx: Tx, survey: Any, state: str, **values: Any) -> None:
    await tx.execute(update(surveys).where(surveys.c.id == survey.id).values(state=state, **values))
    await audit.record(
        tx,
        actor=SYSTEM,
        entity_type="survey",
        entity_id=survey.id,
        action=f"survey.{state}",
        before={"state": survey.state},
        after={"state": state, **values},
    )


def _buttons(survey_id: int) -> dict[str, Any]:
    """Quick replies for channels that show buttons (the SMS text says the same)."""
    return {
        "survey_id": survey_id,
        "quick_replies": [
            *({"label": str(n), "data": f"survey:{survey_id}:score:{n}"} for n in range(1, 6)),
            {"label_key": "notify.survey_solved_yes", "data": f"survey:{survey_id}:solved:yes"},
            {"label_key": "notify.survey_solved_no", "data": f"survey:{survey_id}:solved:no"},
        ],
    }


async def _ask(tx: Tx, rt: Runtime, survey: Any, key: str) -> bool:
    ticket = ticket_record(await row_by_id(tx, tickets, survey.ticket_id))
    conversation = await notify.citizen_conversation(tx, rt, ticket)
    if conversation is None or await is_opted_out(
        tx.conn, conversation.channel, conversation.address
    ):
        await _set_state(tx, survey, "cancelled")
        return False
    params = notify.ticket_params(rt, ticket, conversation.locale)
    body = notify.render(rt, key, conversation.locale, params)
    await queue_outbound(
        tx,
        rt,
        conversation,
        body,
        actor=SYSTEM,
        kind="survey",
        essential=False,
        ticket_id=ticket["id"],
        meta=_buttons(survey.id),
    )
    return True


async def _survey_in(tx: Tx, job: Job, states: tuple[str, ...]) -> Any:
    """The job's survey if it is still in one of ``states`` (jobs may run late or twice)."""
    survey = await row_by_id(tx, surveys, int(job.payload["survey_id"]))
    return survey if survey is not None and survey.state in states else None


async def send_survey(rt: Runtime, job: Job) -> JobOutcome:
    """Job handler: ask the survey question, once."""
    async with rt.transaction() as tx:
        survey = await _survey_in(tx, job, ("scheduled",))
        if survey is None:
            return {"skipped": "no longer scheduled"}
        ticket = await row_by_id(tx, tickets, survey.ticket_id)
        if ticket.state != "closed":
            await _set_state(tx, survey, "cancelled")  # reopened before we asked
            return {"skipped": "ticket not closed"}
        if not await _ask(tx, rt, survey, "notify.survey"):
            return {"skipped": "cannot reach the citizen"}
        now = tx.state["now"]
        await _set_state(tx, survey, "sent", sent_at=now)
        await enqueue(
            tx,
            REMIND,
            {"survey_id": survey.id},
            key=f"survey:{survey.id}:remind",
            now=now,
            run_at=now + timedelta(hours=rt.settings.notify.survey_reminder_hours),
        )
        return {"sent": survey.id}


async def remind_survey(rt: Runtime, job: Job) -> JobOutcome:
    """Job handler: one reminder when the survey is still unanswered."""
    async with rt.transaction() as tx:
        survey = await _survey_in(tx, job, ("sent",))
        if survey is None:
            return {"skipped": "answered or over"}
        if not await _ask(tx, rt, survey, "notify.survey_reminder"):
            return {"skipped": "cannot reach the citizen"}
        now = tx.state["now"]
        await _set_state(tx, survey, "reminded")
        await enqueue(
            tx,
            EXPIRE,
            {"survey_id": survey.id},
            key=f"survey:{survey.id}:expire",
            now=now,
            run_at=now + timedelta(hours=rt.settings.notify.survey_expire_hours),
        )
        return {"reminded": survey.id}


async def expire_survey(rt: Runtime, job: Job) -> JobOutcome:
    """Job handler: no answer after the reminder: unanswered."""
    async with rt.transaction() as tx:
        survey = await _survey_in(tx, job, PENDING)
        if survey is None:
            return {"skipped": "answered or over"}
        await _set_state(tx, survey, "unanswered")
        return {"unanswered": survey.id}


async def pending_surveys(tx: Tx, citizen_id: int, channel: str) -> list[Any]:
    """The citizen's surveys awaiting an answer on a channel, newest first."""
    return list(
        (
            await tx.execute(
                select(surveys, tickets.c.number)
                .join(tickets, tickets.c.id == surveys.c.ticket_id)
                .where(
                    surveys.c.citizen_id == citizen_id,
                    surveys.c.channel == channel,
                    surveys.c.state.in_(PENDING),
                )
                .order_by(surveys.c.sent_at.desc(), surveys.c.id.desc())
            )
        ).all()
    )


class SurveyAnswered(TypedDict):
    """What an answer did: whether it reopened the ticket, and the ticket as it stands."""

    reopened: bool
    ticket: TicketRecord


async def record_answer(
    tx: Tx, rt: Runtime, survey: Any, answer: Answer, *, actor: Actor, text: str | None = None
) -> SurveyAnswered:
    """Store an answer; a low score or "not solved" reopens the ticket."""
    now = tx.state["now"]
    values = {
        "score": answer.score if answer.score is not None else survey.score,
        "solved": answer.solved if answer.solved is not None else survey.solved,
        "answer_text": text,
        "answered_at": now,
    }
    await tx.execute(
        update(surveys).where(surveys.c.id == survey.id).values(state="answered", **values)
    )
    await audit.record(
        tx,
        actor=actor,
        entity_type="survey",
        entity_id=survey.id,
        action="survey.answer",
        before={"state": survey.state},
        after={"state": "answered", **values},
    )
    ticket = ticket_record(await row_by_id(tx, tickets, survey.ticket_id))
    recorded = Answer(values["score"], values["solved"])
    if recorded.unhappy and ticket["state"] == "closed" and ticket["department_id"] is not None:
        reason = rt.text(
            "notify.reopen_reason",
            rt.settings.default_locale,
            score=values["score"] if values["score"] is not None else "-",
            solved=rt.text(
                "notify.solved_no" if values["solved"] is False else "notify.solved_unknown",
                rt.settings.default_locale,
            ),
        )
        updated = await apply_step(
            tx, rt, ticket["id"], Step.REOPEN, actor=SYSTEM, reason=reason, survey_id=survey.id
        )
        return {"reopened": True, "ticket": updated}
    await notify.notify_citizen(tx, rt, ticket, "notify.survey_thanks", kind="auto_reply")
    return {"reopened": False, "ticket": ticket}


async def answer_from_text(
    tx: Tx, rt: Runtime, citizen_id: int, channel: str, conversation: Any, body: str
) -> bool:
    """Read an inbound text as a survey answer if the citizen has one pending.

    Returns True when the text was taken as (or asked to clarify) an answer, so
    that intake does not treat it as a new report.
    """
    pending = await pending_surveys(tx, citizen_id, channel)
    if not pending:
        return False
    parsed = parse_reply(body)
    if parsed is None:
        return False
    newest = pending[0]
    if parsed is AMBIGUOUS:
        if newest.clarifications >= 1:
            return False  # asked once already: an agent will read it
        await tx.execute(update(surveys).where(surveys.c.id == newest.id).values(clarifications=1))
        ticket = (await row_by_id(tx, tickets, newest.ticket_id))._asdict()
        body_text = notify.render(
            rt,
            "notify.survey_clarify",
            conversation.locale,
            notify.ticket_params(rt, ticket, conversation.locale),
        )
        await queue_outbound(
            tx, rt, conversation, body_text, actor=SYSTEM, kind="auto_reply", ticket_id=ticket["id"]
        )
        return True
    assert isinstance(parsed, Answer)
    chosen = newest
    if parsed.ticket_number:
        chosen = next((s for s in pending if s.number == parsed.ticket_number), newest)
    await record_answer(tx, rt, chosen, parsed, actor=SYSTEM, text=body)
    return True


async def answer_survey(
    rt: Runtime,
    survey_id: int,
    *,
    score: int | None = None,
    solved: bool | None = None,
    actor: Actor = SYSTEM,
) -> SurveyAnswered:
    """An answer given by a button (Telegram, web): the same records as a text reply."""
    if score is not None and not 1 <= score <= 5:
        raise InvalidInput("invalid_field", field="score")
    if score is None and solved is None:
        raise InvalidInput("missing_field", field="score")
    async with rt.transaction() as tx:
        survey = await row_by_id(tx, surveys, survey_id)
        if survey is None:
            raise NotFound("survey_not_found", id=survey_id)
        if survey.state not in (*PENDING, "answered"):
            raise Conflict("survey_closed", state=survey.state)
        return await record_answer(tx, rt, survey, Answer(score, solved), actor=actor)


async def answer_button(tx: Tx, rt: Runtime, citizen_id: int, data: str) -> bool:
    """A survey button (``survey:<id>:score:<1-5>`` or ``survey:<id>:solved:yes|no``)
    pressed by the citizen it was sent to. False when the data is not such a
    button, or not theirs."""
    parts = data.split(":")
    survey_id = parse_id(parts[1]) if len(parts) == 4 and parts[0] == "survey" else None
    if survey_id is None:
        return False
    survey = await row_by_id(tx, surveys, survey_id)
    if survey is None or survey.citizen_id != citizen_id:
        return False
    if survey.state not in (*PENDING, "answered"):
        return False
    if parts[2] == "score" and parts[3] in {"1", "2", "3", "4", "5"}:
        answer = Answer(int(parts[3]), None)
    elif parts[2] == "solved" and parts[3] in ("yes", "no"):
        answer = Answer(None, parts[3] == "yes")
    else:
        return False
    await record_answer(tx, rt, survey, answer, actor=SYSTEM, text=data)
    return True
