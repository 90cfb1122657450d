"""A ticket's history as a person reads it: who did what, in the viewer's language, with
the facts that matter (the department, the days, the reason), never raw event names,
ids or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callcenter.runtime import Runtime

# what each step's entry shows beneath its headline: (label key, where, name)
_DETAILS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "reply": (("ui.ticket.text", "details", "text"),),
    "direct_answer": (("ui.ticket.answer", "details", "text"),),
    "return": (("ui.ticket.reason", "details", "reason"),),
    "deny_extension": (("ui.ticket.reason", "details", "reason"),),
    "reopen": (("ui.ticket.reason", "details", "reason"),),
    "cancel": (("ui.ticket.reason", "details", "reason"),),
    "request_extension": (
        ("ui.ticket.days", "details", "days"),
        ("ui.ticket.reason", "details", "reason"),
    ),
    "urge": (("ui.ticket.note", "details", "note"),),
    "supervise": (("ui.ticket.note", "details", "note"),),
    "sign_for": (("ui.ticket.note", "details", "note"),),
    "close": (("ui.ticket.note", "details", "note"),),
    "approve_extension": (("ui.ticket.note", "details", "note"),),
}


@dataclass
class Entry:
    at: datetime
    headline: str
    who: str
    kind: str
    lines: list[tuple[str, str]] = field(default_factory=list)


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def who(rt: Runtime, actor: dict[str, Any], locale: str) -> str:
    role = actor.get("role") or "system"
    if role == "system":
        return rt.text("ui.timeline.system", locale)
    return rt.text(
        "ui.timeline.who",
        locale,
        name=actor.get("name") or "",
        role=rt.catalog.label("role", role, locale),
    )


def entry(rt: Runtime, event: dict[str, Any], locale: str) -> Entry:
    action = str(event["action"])
    step = action.removeprefix("ticket.")
    details = event.get("details") or {}
    after = event.get("after") or {}
    directory = rt.directory
    lines: list[tuple[str, str]] = []
    if step == "create":
        channel = after.get("origin_channel") or ""
        headline = rt.text(
            "ui.timeline.created",
            locale,
            channel=rt.catalog.label("ui.channel", channel, locale),
        )
        category = directory.category_by_id.get(after.get("category_id") or -1)
        if category is not None:
            lines.append((rt.text("ui.ticket.category", locale), category.name(locale)))
    elif step == "dispatch":
        dept = directory.by_id.get(details.get("department_id") or after.get("department_id") or -1)
        headline = rt.text(
            "ui.timeline.dispatched", locale, department=dept.name(locale) if dept else "—"
        )
        due = _time(after.get("due_at"))
        if due is not None:
            lines.append((rt.text("ui.ticket.due", locale), rt.local_text(due)))
    elif step == "approve_extension":
        headline = rt.catalog.label("step", step, locale)
        due = _time(after.get("due_at"))
        if due is not None:
            lines.append((rt.text("ui.ticket.new_due", locale), rt.local_text(due)))
    elif step == "merge":
        headline = rt.catalog.label("step", step, locale)
        target = details.get("into_number") or details.get("into_ticket_id")
        if target is not None:
            lines.append((rt.text("ui.ticket.merged_into", locale), str(target)))
    else:
        headline = rt.catalog.label("step", step, locale)
    for key, where, name in _DETAILS.get(step, ()):
        source = details if where == "details" else after
        value = source.get(name)
        if value not in (None, ""):
            lines.append((rt.text(key, locale), str(value)))
    at = _time(event["at"]) or datetime.min
    return Entry(at, headline, who(rt, event.get("actor") or {}, locale), step, lines)


def timeline(rt: Runtime, history: list[dict[str, Any]], locale: str) -> list[Entry]:
    return [entry(rt, event, locale) for event in history]
