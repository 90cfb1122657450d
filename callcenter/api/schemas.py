"""Request and response shapes of the JSON API; the OpenAPI document is made from these."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from callcenter.domain.ids import MAX_ID
from callcenter.domain.workflow import WORKFLOW, Priority, Step, TicketState, TicketType


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# a row id in a query or a body: both databases store ids as 64-bit integers from 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)


def _written_as(pattern: re.Pattern[str], example: str) -> Any:
    """Query values are text, and pydantic reads ``0.5`` as a Unix time: only the
    written form the document names (RFC 3339) is taken."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and not pattern.fullmatch(value.strip()):
            raise ValueError(f"expected a date written like {example}")
        return value

    return BeforeValidator(check)


QueryDateTime = Annotated[datetime, _written_as(_ISO_DATETIME, "2026-11-27T10:00:00+08:00")]
QueryDate = Annotated[date, _written_as(_ISO_DATE, "2026-11-27")]


# --- shared -----------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorOut(BaseModel):
    error: ErrorDetail


class Page(BaseModel):
    page: int
    per_page: int
    total: int


class Ref(BaseModel):
    id: int
    code: str
    name: str


class DepartmentRef(Ref):
    kind: str


# --- directory --------------------------------------------------------------------


class DepartmentOut(BaseModel):
    id: int
    code: str
    kind: str
    kind_label: str
    name: str
    name_zh: str
    name_en: str
    parent_id: int | None
    is_area: bool


class CategoryOut(BaseModel):
    id: int
    code: str
    name: str
    name_zh: str
    name_en: str
    department_kind: str
    default_type: TicketType


class GridCellFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: int
    properties: dict[str, Any]
    geometry: dict[str, Any]


class GridOut(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[GridCellFeature]


# --- tickets ----------------------------------------------------------------------


class Location(BaseModel):
    address: str | None
    lat: float | None
    lon: float | None
    grid_cell: str | None
    street: DepartmentRef | None
    district: DepartmentRef | None


class ExtensionRequest(BaseModel):
    days: int
    reason: str | None


class TicketOut(BaseModel):
    id: int
    number: str
    type: TicketType
    type_label: str
    priority: Priority
    state: TicketState
    state_label: str
    category: Ref | None
    title: str
    description: str
    citizen_id: int | None
    conversation_id: int | None
    origin_channel: str
    locale: str
    location: Location
    department: DepartmentRef | None
    routing: dict[str, Any] | None
    routing_explanation: str
    created_at: datetime
    updated_at: datetime
    dispatched_at: datetime | None
    sign_due_at: datetime | None
    accepted_at: datetime | None
    due_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    reply: str | None
    closure: str | None
    light: Literal["green", "yellow", "red"] | None
    sign_light: Literal["green", "yellow", "red"] | None
    handle_light: Literal["green", "yellow", "red"] | None
    extension_days: int
    extension_request: ExtensionRequest | None
    return_count: int
    reopen_count: int
    urge_count: int
    supervised: bool
    merged_into_id: int | None
    last_reason: str | None
    version: int
    allowed_steps: list[Step]


class HistoryActor(BaseModel):
    id: int | None
    role: str
    name: str


class HistoryEvent(BaseModel):
    seq: int
    at: datetime
    action: str
    actor: HistoryActor
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any] | None


class TicketDetailOut(TicketOut):
    history: list[HistoryEvent]


class TicketListOut(BaseModel):
    items: list[TicketOut]
    page: Page


class TicketQuery(Strict):
    state: str | None = Field(None, description="one state or several separated by commas")
    department_id: Id | None = None
    category: str | None = None
    type: TicketType | None = None
    priority: Priority | None = None
    citizen_id: Id | None = None
    overdue: bool | None = None
    open: bool | None = Field(None, description="only tickets not closed, merged or cancelled")
    q: str | None = Field(None, max_length=100)
    created_from: QueryDateTime | None = None
    created_to: QueryDateTime | None = None
    sort: Literal["urgency", "newest"] = "urgency"
    page: int = Field(1, ge=1, le=100000)
    per_page: int = Field(20, ge=1, le=100)
    lang: str | None = None


class TicketCreate(Strict):
    description: str = Field(min_length=1, max_length=4000)
    type: TicketType | None = None
    category: str | None = Field(None, max_length=64)
    priority: Priority | None = Field(None, description="defaults to the category's priority")
    title: str | None = Field(None, max_length=200)
    address: str | None = Field(None, max_length=400)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    citizen_id: Id | None = None
    conversation_id: Id | None = None
    origin_channel: str = Field("desk", max_length=20)
    dispatch: bool = Field(False, description="send to the routed department at once")


_STEP_FIELDS: dict[str, Any] = {
    "department_id": (Id | None, Field(None, description="defaults to the routed department")),
    "reason": (str, Field(min_length=1, max_length=4000)),
    "text": (str, Field(min_length=1, max_length=4000)),
    "days": (int, Field(ge=1, le=365)),
    "into_ticket_id": (str, Field(min_length=1, max_length=20, description="id or number")),
}
_OPTIONAL_NOTE = (str | None, Field(None, max_length=4000))


def _step_model(step: Step) -> type[BaseModel]:
    rule = WORKFLOW[step]
    fields: dict[str, Any] = {
        "version": (int | None, Field(None, description="the version you read; 409 if stale"))
    }
    for name in rule.requires:
        fields[name] = _STEP_FIELDS[name]
    if step in (Step.URGE, Step.SUPERVISE, Step.CLOSE, Step.SIGN_FOR, Step.APPROVE_EXTENSION):
        fields["note"] = _OPTIONAL_NOTE
    name = "".join(part.title() for part in step.value.split("_")) + "Step"
    return create_model(name, __base__=Strict, **fields)


STEP_BODIES: dict[Step, type[BaseModel]] = {step: _step_model(step) for step in Step}


# --- routing ----------------------------------------------------------------------


class RoutingQuery(Strict):
    description: str = Field(min_length=1, max_length=4000)
    category: str | None = Field(None, max_length=64)
    address: str | None = Field(None, max_length=400)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class ClassificationOut(BaseModel):
    category: str | None
    confidence: float
    matched: list[str]
    runner_up: str | None
    ticket_type: TicketType | None


class RoutingOut(BaseModel):
    category: Ref | None
    type: TicketType
    department: DepartmentRef | None
    to_desk: bool
    rule: str
    explanation: str
    classification: ClassificationOut | None
    decision: dict[str, Any]


# --- citizens, conversations, messages --------------------------------------------


class Identity(BaseModel):
    kind: str
    value: str


class ConversationOut(BaseModel):
    id: int
    citizen_id: int
    channel: str
    address: str
    state: str
    queue: str | None
    agent_id: int | None
    ticket_id: int | None
    locale: str
    created_at: datetime
    updated_at: datetime
    queued_at: datetime | None
    closed_at: datetime | None
    last_message_at: datetime | None


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    channel: str
    direction: Literal["in", "out"]
    body: str
    status: str
    kind: str
    provider_id: str | None
    author_id: int | None
    error: str | None
    created_at: datetime
    sent_at: datetime | None


class ConversationDetailOut(ConversationOut):
    messages: list[MessageOut]


class ConversationListOut(BaseModel):
    items: list[ConversationOut]
    page: Page


class ConversationQuery(Strict):
    state: Literal["bot", "queued", "assigned", "closed"] | None = None
    channel: str | None = Field(None, max_length=20)
    queue: str | None = Field(None, max_length=64)
    citizen_id: Id | None = None
    page: int = Field(1, ge=1, le=100000)
    per_page: int = Field(20, ge=1, le=100)
    lang: str | None = None


class MessageCreate(Strict):
    body: str = Field(min_length=1, max_length=4000)


class CallOut(BaseModel):
    id: int
    conversation_id: int
    from_number: str | None
    started_at: datetime
    ended_at: datetime | None
    transcript: str | None
    outcome: str | None


class CitizenOut(BaseModel):
    id: int
    name: str | None
    phone: str | None
    locale: str
    created_at: datetime
    identities: list[Identity]
    conversations: list[ConversationOut]
    calls: list[CallOut]
    tickets: list[TicketOut]


class CitizenSummary(BaseModel):
    id: int
    name: str | None
    phone: str | None
    locale: str
    created_at: datetime


class CitizenQuery(Strict):
    phone: str | None = Field(None, max_length=40)
    q: str | None = Field(None, max_length=100)
    lang: str | None = None


# --- system -----------------------------------------------------------------------


class MeOut(BaseModel):
    id: int | None
    name: str
    role: str
    department_id: int | None
    locale: str


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
    database: str
    jobs: dict[str, int]
    media: dict[str, Any]  # mode, up (None when off), and each node's state


class BrokenLinkOut(BaseModel):
    seq: int
    reason: str


class AuditVerifyOut(BaseModel):
    checked: int
    ok: bool
    broken: BrokenLinkOut | None
    message: str


class LangQuery(Strict):
    lang: str | None = None
