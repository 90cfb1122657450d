"""Read side of the wallboard, the department portal's counters and the KPI reports.

Nothing here writes. The formulas are in :mod:`callcenter.domain.kpi`; this
module gathers the facts they count (audit events, surveys, queue stays,
calls, tickets) for a period. See ``docs/kpi.md``.
"""

from __future__ import annotations

import csv
import io
import time as monotonic_clock
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, select

from callcenter.domain.kpi import (
    TICKET_KPIS,
    Contact,
    Episode,
    Ratio,
    SurveyAnswer,
    contact_kpis,
    episodes_from_events,
    rank,
    score,
    ticket_kpis,
)
from callcenter.domain.workflow import Ticket
from callcenter.queueing import agent_views, waiting_entries
from callcenter.runtime import Runtime
from callcenter.store.db import Conn
from callcenter.store.queries import local_bucket
from callcenter.store.tables import (
    audit_events,
    calls,
    conversations,
    queue_entries,
    surveys,
    tickets,
)
from callcenter.views import light_condition, overdue_condition

# closed with an answer (办结: replied and closed, or answered directly), not merged or
# cancelled; said by ``closure``, so that SQLite reads the closed_at index, not the state's
CLOSED_AT_DESK = tickets.c.closure.in_(["replied", "direct_answer"])
AREA_KINDS = frozenset({"city", "district", "community", "dispatch_desk", "street"})


def local_day_start(rt: Runtime, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=rt.calendar.zone)


def period(rt: Runtime, start: date | None, end: date | None) -> tuple[datetime, datetime]:
    """[start, end] as local dates (end included); default: this month so far."""
    today = rt.local(rt.clock.now()).date()
    first = start or today.replace(day=1)
    last = end or today
    return local_day_start(rt, first), local_day_start(rt, last + timedelta(days=1))


# --- facts -----------------------------------------------------------------------------


async def load_episodes(conn: Conn, start: datetime, end: datetime) -> list[Episode]:
    """Dispatch episodes that started in [start, end), rebuilt from the whole history of
    their tickets."""
    started = (
        select(audit_events.c.entity_id)
        .where(
            audit_events.c.entity_type == "ticket",
            audit_events.c.action.in_(["ticket.dispatch", "ticket.reopen"]),
            audit_events.c.at >= start,
            audit_events.c.at < end,
        )
        .distinct()
    )
    rows = (
        await conn.execute(
            select(
                audit_events.c.entity_id,
                audit_events.c.seq,
                audit_events.c.at,
                audit_events.c.action,
                audit_events.c.after,
            ).where(audit_events.c.entity_type == "ticket", audit_events.c.entity_id.in_(started))
        )
    ).all()
    episodes = episodes_from_events(dict(r._mapping) for r in rows)
    return [e for e in episodes if start <= e.started_at < end]


async def load_answers(conn: Conn, start: datetime, end: datetime) -> list[SurveyAnswer]:
    rows = (
        await conn.execute(
            select(surveys.c.department_id, surveys.c.score, surveys.c.solved).where(
                surveys.c.state == "answered",
                surveys.c.answered_at >= start,
                surveys.c.answered_at < end,
            )
        )
    ).all()
    return [SurveyAnswer(r.department_id, r.score, r.solved) for r in rows]


async def load_contacts(conn: Conn, start: datetime, end: datetime) -> list[Contact]:
    """Text conversations that began waiting in [start, end) (one contact per conversation,
    however often it overflowed or was transferred), and calls queued for an agent (from
    their ``calls`` row, which also knows when the caller hung up)."""
    rows = (
        await conn.execute(
            select(
                queue_entries.c.conversation_id,
                func.min(queue_entries.c.queued_at).label("queued_at"),
                func.min(queue_entries.c.assigned_at).label("assigned_at"),
            )
            .join(conversations, conversations.c.id == queue_entries.c.conversation_id)
            .where(
                queue_entries.c.queued_at >= start,
                queue_entries.c.queued_at < end,
                conversations.c.kind != "call",
            )
            .group_by(queue_entries.c.conversation_id)
        )
    ).all()
    outcomes: dict[int, set[str]] = {}
    if rows:
        for r in (
            await conn.execute(
                select(queue_entries.c.conversation_id, queue_entries.c.outcome).where(
                    queue_entries.c.conversation_id.in_([r.conversation_id for r in rows])
                )
            )
        ).all():
            outcomes.setdefault(r.conversation_id, set()).add(r.outcome or "")
    contacts = [
        Contact(
            r.queued_at,
            r.assigned_at,
            abandoned=r.assigned_at is None and "abandoned" in outcomes.get(r.conversation_id, ()),
            left_message=r.assigned_at is None
            and "left_message" in outcomes.get(r.conversation_id, ()),
        )
        for r in rows
    ]
    call_rows = (
        await conn.execute(
            select(calls.c.queued_at, calls.c.agent_answered_at, calls.c.ended_at).where(
                calls.c.queued_at >= start, calls.c.queued_at < end
            )
        )
    ).all()
    contacts += [
        Contact(
            c.queued_at,
            c.agent_answered_at,
            abandoned=c.agent_answered_at is None and c.ended_at is not None,
        )
        for c in call_rows
    ]
    return contacts


# --- department KPIs and the score ---------------------------------------------------


def _department_rows(
    rt: Runtime,
    episodes: Sequence[Episode],
    answers: Sequence[SurveyAnswer],
    now: datetime,
    locale: str,
) -> list[dict[str, Any]]:
    by_dept: dict[int, list[Episode]] = {}
    for e in episodes:
        if e.department_id is not None:
            by_dept.setdefault(e.department_id, []).append(e)
    answers_by: dict[int, list[SurveyAnswer]] = {}
    for a in answers:
        if a.department_id is not None:
            answers_by.setdefault(a.department_id, []).append(a)
    weights = rt.settings.kpi.weights
    rows = []
    for dept_id in sorted(set(by_dept) | set(answers_by)):
        dept = rt.directory.by_id.get(dept_id)
        if dept is None:
            continue
        kpis = ticket_kpis(
            by_dept.get(dept_id, []),
            answers_by.get(dept_id, []),
            now,
            satisfied_min=rt.settings.kpi.satisfied_min_score,
        )
        rows.append(
            {
                "department_id": dept_id,
                "code": dept.code,
                "name": dept.name(locale),
                "kind": dept.kind,
                "episodes": len(by_dept.get(dept_id, [])),
                "surveys": len(answers_by.get(dept_id, [])),
                "kpis": {name: kpis[name].as_dict() for name in TICKET_KPIS},
                "score": score(kpis, weights),
            }
        )
    return rows


async def mediation_stats(
    conn: Conn, rt: Runtime, start: datetime, end: datetime
) -> dict[str, Any]:
    """Mediations requested in the period, overall and per local month (矛盾纠纷调解)."""
    from callcenter.domain.mediation import CaseFigures, mediation_figures
    from callcenter.store.tables import mediations

    rows = (
        await conn.execute(
            select(mediations).where(
                mediations.c.created_at >= start, mediations.c.created_at < end
            )
        )
    ).all()
    cases = [
        (
            rt.local(r.created_at).strftime("%Y-%m"),
            CaseFigures(r.state, r.outcome, r.created_at, r.scheduled_at, r.started_at),
        )
        for r in rows
    ]
    months = sorted({month for month, _ in cases})
    return {
        "overall": mediation_figures([c for _, c in cases]),
        "months": [
            {"month": month, **mediation_figures([c for m, c in cases if m == month])}
            for month in months
        ],
    }


MEDIATION_COLUMNS = (
    "requested", "held", "agreements", "partial", "no_show", "cancelled", "agreement_rate",
    "no_show_rate", "days_to_session",
)  # fmt: skip


def mediations_csv(stats: dict[str, Any]) -> str:
    rows = [[m["month"], *(m[c] for c in MEDIATION_COLUMNS)] for m in stats["months"]]
    rows.append(["total", *(stats["overall"][c] for c in MEDIATION_COLUMNS)])
    return _csv(["month", *MEDIATION_COLUMNS], rows)


async def kpi_report(
    conn: Conn, rt: Runtime, start: datetime, end: datetime, locale: str
) -> dict[str, Any]:
    now = rt.clock.now()
    episodes = await load_episodes(conn, start, end)
    answers = await load_answers(conn, start, end)
    rows = _department_rows(rt, episodes, answers, now, locale)
    overall = ticket_kpis(episodes, answers, now, satisfied_min=rt.settings.kpi.satisfied_min_score)
    contacts = contact_kpis(
        await load_contacts(conn, start, end), rt.settings.kpi.service_level_seconds
    )
    return {
        "from": start,
        "to": end,
        "weights": dict(rt.settings.kpi.weights),
        "overall": {
            **{name: overall[name].as_dict() for name in TICKET_KPIS},
            "score": score(overall, rt.settings.kpi.weights),
        },
        "contacts": contacts.as_dict(),
        "min_episodes": rt.settings.kpi.min_episodes,
        **_rankings(rt, "departments", [r for r in rows if r["kind"] not in AREA_KINDS]),
        **_rankings(rt, "streets", [r for r in rows if r["kind"] == "street"]),
        "mediations": await mediation_stats(conn, rt, start, end),
    }


def _rankings(rt: Runtime, name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows with enough tickets to judge, ranked; the others apart, by name, unranked."""
    enough = rt.settings.kpi.min_episodes
    judged = [r for r in rows if r["episodes"] >= enough]
    apart = sorted((r for r in rows if r["episodes"] < enough), key=lambda r: str(r["code"]))
    return {
        name: rank(judged),
        f"{name}_unranked": [{**r, "rank": None} for r in apart],
    }


# --- live numbers ------------------------------------------------------------------------


async def _running_tickets(conn: Conn, department_id: int | None = None) -> list[Any]:
    conditions: list[Any] = [tickets.c.state.in_(["dispatched", "accepted"])]
    if department_id is not None:
        conditions.append(tickets.c.department_id == department_id)
    return list((await conn.execute(select(tickets).where(*conditions))).all())


async def wallboard(conn: Conn, rt: Runtime, locale: str) -> dict[str, Any]:
    """What the supervisors' wall shows, at the clock's now."""
    now = rt.clock.now()
    today = local_day_start(rt, rt.local(now).date())
    waiting = await waiting_entries(conn)
    agents = await agent_views(conn, rt, now)
    states = Counter(a.state(now) for a in agents)
    by_queue = Counter(w.queue for w in waiting)
    contacts = contact_kpis(
        await load_contacts(conn, today, now + timedelta(seconds=1)),
        rt.settings.kpi.service_level_seconds,
    )
    opened = await conn.scalar(
        select(func.count()).select_from(tickets).where(tickets.c.created_at >= today)
    )
    closed = await conn.scalar(
        select(func.count())
        .select_from(tickets)
        .where(tickets.c.closed_at >= today, CLOSED_AT_DESK)
    )
    # red is exactly "a running deadline has passed": counted where the rows are. Grouped
    # by an expression, so that SQLite seeks the running states instead of walking every
    # ticket in department order
    by_department = (tickets.c.department_id + 0).label("department")
    overdue: Counter[int] = Counter(
        {
            int(dept): int(count)
            for dept, count in (
                await conn.execute(
                    select(by_department, func.count())
                    .where(overdue_condition(now))
                    .group_by(by_department)
                )
            ).all()
            if dept is not None
        }
    )
    label = rt.catalog.label
    return {
        "at": now,
        "waiting": len(waiting),
        "longest_wait_seconds": (
            max((now - w.queued_at).total_seconds() for w in waiting) if waiting else 0
        ),
        "oldest_queued_at": min((w.queued_at for w in waiting), default=None),
        "queues": [
            {"queue": q, "label": label("queue", q, locale), "waiting": by_queue.get(q, 0)}
            for q in sorted(set(rt.settings.acd.queues) | set(by_queue))
        ],
        "agents": {
            state: states.get(state, 0) for state in ("available", "busy", "wrap_up", "away")
        },
        "agent_labels": {
            state: label("presence", state, locale)
            for state in ("available", "busy", "wrap_up", "away")
        },
        "today": contacts.as_dict(),
        "tickets_opened_today": int(opened or 0),
        "tickets_closed_today": int(closed or 0),
        "overdue_by_department": [
            {
                "department_id": dept_id,
                "name": rt.directory.by_id[dept_id].name(locale)
                if dept_id in rt.directory.by_id
                else str(dept_id),
                "overdue": count,
            }
            for dept_id, count in overdue.most_common()
        ],
        "overdue_total": sum(overdue.values()),
        "mediations": await _mediations_now(conn, rt, now),
        "calls": await _calls_now(conn, rt, now, today, waiting),
    }


async def _calls_now(
    conn: Conn, rt: Runtime, now: datetime, today: datetime, waiting: Sequence[Any]
) -> dict[str, Any]:
    """Calls apart from text, for the wall: waiting, talking, on hold, the longest wait,
    and today's service level (calls an agent answered within the service-level time,
    of the calls that waited for one)."""
    queued = [w for w in waiting if w.voice]
    held = (
        await conn.execute(
            select(calls.c.held_at)
            .join(conversations, conversations.c.id == calls.c.conversation_id)
            .where(
                conversations.c.kind == "call",
                conversations.c.state == "assigned",
                calls.c.ended_at.is_(None),
            )
        )
    ).all()
    on_hold = sum(1 for r in held if r.held_at is not None)
    limit = rt.settings.kpi.service_level_seconds
    waited, in_time = (
        await conn.execute(
            select(
                func.count(),
                func.count(
                    case(
                        (
                            calls.c.agent_answered_at.is_not(None)
                            & (calls.c.queue_wait_s <= limit),
                            1,
                        )
                    )
                ),
            ).where(calls.c.queued_at >= today)
        )
    ).one()
    return {
        "waiting": len(queued),
        "talking": len(held) - on_hold,
        "on_hold": on_hold,
        "longest_wait_seconds": (
            max((now - w.queued_at).total_seconds() for w in queued) if queued else 0
        ),
        "service_level": (int(in_time) / int(waited)) if waited else None,
    }


async def _mediations_now(conn: Conn, rt: Runtime, now: datetime) -> dict[str, Any]:
    """For the wall: sessions today and now, and this month's figures so far."""
    from callcenter.store.tables import mediations

    local = rt.local(now)
    today = local_day_start(rt, local.date())
    month = local_day_start(rt, local.date().replace(day=1))
    counts = dict(
        (
            await conn.execute(
                select(mediations.c.state, func.count())
                .where(
                    mediations.c.scheduled_at >= today,
                    mediations.c.scheduled_at < today + timedelta(days=1),
                )
                .group_by(mediations.c.state)
            )
        ).all()
    )
    in_session = await conn.scalar(
        select(func.count()).select_from(mediations).where(mediations.c.state == "in_session")
    )
    return {
        "today": int(sum(counts.values())),
        "today_held": int(counts.get("concluded", 0)),
        "in_session": int(in_session or 0),
        "month": (await mediation_stats(conn, rt, month, now + timedelta(seconds=1)))["overall"],
    }


async def department_summary(conn: Conn, rt: Runtime, department_id: int) -> dict[str, Any]:
    """The portal's counters: open, signed for, overdue (red) and due soon (yellow)."""
    now = rt.clock.now()
    mine = tickets.c.department_id == department_id
    states: Counter[str] = Counter(
        dict(
            (
                await conn.execute(
                    select(tickets.c.state, func.count())
                    .where(mine, tickets.c.state.in_(["dispatched", "accepted"]))
                    .group_by(tickets.c.state)
                )
            ).all()
        )
    )
    lights: Counter[str] = Counter()
    for light in ("red", "yellow"):
        lights[light] = int(
            await conn.scalar(
                select(func.count()).select_from(tickets).where(mine, light_condition(now, light))
            )
            or 0
        )
    lights["green"] = sum(states.values()) - lights["red"] - lights["yellow"]
    return {
        "department_id": department_id,
        "open": sum(states.values()),
        "to_sign": states.get("dispatched", 0),
        "in_hand": states.get("accepted", 0),
        "overdue": lights.get("red", 0),
        "due_soon": lights.get("yellow", 0),
        "on_track": lights.get("green", 0),
    }


# --- CSV ----------------------------------------------------------------------------------


def csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV for a spreadsheet: UTF-8 with a byte-order mark, no cell read as a formula."""
    return _csv(header, rows)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else _safe_cell(v) for v in row])
    return "\ufeff" + out.getvalue()  # a BOM, so spreadsheet programs read UTF-8


def _safe_cell(value: Any) -> Any:
    """Cells that a spreadsheet would run as a formula are quoted (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def kpis_csv(report: dict[str, Any], locale: str, rt: Runtime) -> str:
    header = ["group", "rank", "code", "department", "episodes", "surveys"]
    for name in TICKET_KPIS:
        header += [name, f"{name}_numerator", f"{name}_denominator"]
    header.append("score")
    rows = []
    for group in ("departments", "streets", "departments_unranked", "streets_unranked"):
        for r in report.get(group, []):
            line: list[Any] = [group, r["rank"], r["code"], r["name"], r["episodes"], r["surveys"]]
            for name in TICKET_KPIS:
                k = r["kpis"][name]
                line += [k["value"], k["numerator"], k["denominator"]]
            line.append(r["score"])
            rows.append(line)
    return _csv(header, rows)


async def tickets_csv(conn: Conn, rt: Runtime, start: datetime, end: datetime, locale: str) -> str:
    rows = (
        await conn.execute(
            select(tickets)
            .where(tickets.c.created_at >= start, tickets.c.created_at < end)
            .order_by(tickets.c.id)
        )
    ).all()
    now = rt.clock.now()
    directory = rt.directory
    label = rt.catalog.label

    def dept(dept_id: int | None) -> str:
        d = directory.by_id.get(dept_id) if dept_id is not None else None
        return d.name(locale) if d else ""

    out = []
    for r in rows:
        category = directory.category_by_id.get(r.category_id or -1)
        light = Ticket.from_row(r).light(now, rt.sla)
        out.append(
            [
                r.number,
                rt.local_text(r.created_at),
                label("ticket_type", r.type, locale),
                category.name(locale) if category else "",
                label("priority", r.priority, locale),
                label("state", r.state, locale),
                dept(r.department_id),
                dept(r.street_id),
                dept(r.district_id),
                r.origin_channel,
                rt.local_text(r.dispatched_at),
                rt.local_text(r.due_at),
                rt.local_text(r.replied_at),
                rt.local_text(r.closed_at),
                r.return_count,
                r.reopen_count,
                label("light", light.value, locale) if light else "",
                r.title,
            ]
        )
    header = [
        "number",
        "created_at",
        "type",
        "category",
        "priority",
        "state",
        "department",
        "street",
        "district",
        "channel",
        "dispatched_at",
        "due_at",
        "replied_at",
        "closed_at",
        "returns",
        "reopens",
        "light",
        "title",
    ]
    return _csv(header, out)


__all__ = ["Ratio", "department_summary", "kpi_report", "period", "wallboard"]


# --- trends -------------------------------------------------------------------------------


def _local_bucket(rt: Runtime, conn: Conn, column: Any, *, hour: bool = False) -> Any:
    """``column`` as its local day (``YYYY-MM-DD``) or hour (``HH``), in the database."""
    offset = rt.local(rt.clock.now()).utcoffset() or timedelta()
    return local_bucket(rt.db, column, zone=rt.settings.timezone, offset=offset, hour=hour)


# past days' buckets do not change (a ticket opened, closed or replied on a past day
# stays so), so they are kept for a while; today's are counted on every call. A reopened
# ticket leaves its earlier close in a past day's bucket until the entry expires.
_PAST_DAYS: dict[tuple[str, str, int], tuple[float, Any]] = {}
PAST_DAYS_TTL_S = 600.0


async def _day_counts(
    conn: Conn, rt: Runtime, start: datetime, end: datetime | None
) -> dict[str, dict[str, Any]]:
    """Per local day in [start, end): opened, closed, contacts, replies and on-time replies."""

    def window(column: Any) -> list[Any]:
        return [column >= start] + ([column < end] if end is not None else [])

    async def per_day(column: Any, *conditions: Any) -> dict[str, int]:
        bucket = _local_bucket(rt, conn, column).label("bucket")
        rows = await conn.execute(
            select(bucket, func.count()).where(*window(column), *conditions).group_by(bucket)
        )
        return {str(b): int(n) for b, n in rows.all()}

    reply_day = _local_bucket(rt, conn, tickets.c.replied_at).label("bucket")
    on_time_rows = await conn.execute(
        select(
            reply_day,
            func.count(),
            func.sum(case((tickets.c.replied_at <= tickets.c.due_at, 1), else_=0)),
        )
        .where(*window(tickets.c.replied_at), tickets.c.due_at.is_not(None))
        .group_by(reply_day)
    )
    return {
        "opened": await per_day(tickets.c.created_at),
        "closed": await per_day(tickets.c.closed_at, CLOSED_AT_DESK),
        "contacts": await per_day(conversations.c.created_at),
        "on_time": {str(b): (int(n), int(k or 0)) for b, n, k in on_time_rows.all()},
    }


async def trends(conn: Conn, rt: Runtime, days: int = 30) -> dict[str, Any]:
    """The wallboard's trend charts: per local day for ``days`` days, tickets opened and
    closed, the share of replies given on time, and contacts; contacts per hour today."""
    now = rt.clock.now()
    today = rt.local(now).date()
    first = today - timedelta(days=days - 1)
    start = local_day_start(rt, first)
    today_start = local_day_start(rt, today)
    day_names = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    key = (str(rt.db.url), today.isoformat(), days)
    cached = _PAST_DAYS.get(key)
    if cached is None or cached[0] < monotonic_clock.monotonic():
        for old in [k for k in _PAST_DAYS if k[0] == key[0]]:
            del _PAST_DAYS[old]
        cached = (
            monotonic_clock.monotonic() + PAST_DAYS_TTL_S,
            await _day_counts(conn, rt, start, today_start),
        )
        _PAST_DAYS[key] = cached
    past = cached[1]
    live = await _day_counts(conn, rt, today_start, None)
    merged = {name: {**past[name], **live[name]} for name in past}
    hour = _local_bucket(rt, conn, conversations.c.created_at, hour=True).label("bucket")
    hourly = dict(
        (
            await conn.execute(
                select(hour, func.count())
                .where(conversations.c.created_at >= today_start)
                .group_by(hour)
            )
        ).all()
    )
    on_time = merged["on_time"]
    return {
        "days": day_names,
        "opened": [merged["opened"].get(d, 0) for d in day_names],
        "closed": [merged["closed"].get(d, 0) for d in day_names],
        "contacts": [merged["contacts"].get(d, 0) for d in day_names],
        "on_time_rate": [
            round(on_time[d][1] / on_time[d][0], 4) if on_time.get(d, (0, 0))[0] else None
            for d in day_names
        ],
        "hours": [f"{h:02d}" for h in range(24)],
        "contacts_today": [int(hourly.get(f"{h:02d}", 0)) for h in range(24)],
    }
