"""The schema, in SQLAlchemy Core. Alembic migrations under ``migrations/`` create it.

Provider ids are unique keys (DESIGN rule 3): a retried webhook finds its row
and changes nothing.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
)

from callcenter.store.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite only autoincrements INTEGER

departments = Table(
    "departments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("kind", String(40), nullable=False, index=True),
    Column("name_zh", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("parent_id", Id, ForeignKey("departments.id"), nullable=True, index=True),
    Column("keywords", JSON, nullable=False, default=list),
    Column("duty_phone", String(32), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
)

categories = Table(
    "categories",
    metadata,
    Column("id", Id, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_zh", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("department_kind", String(40), nullable=False),
    Column("default_type", String(20), nullable=False, default="help"),
    Column("default_priority", String(10), nullable=False, default="normal"),
    # the category's own handling time in working days, instead of its ticket type's
    Column("handle_working_days", Float, nullable=True),
    Column("keywords_zh", JSON, nullable=False, default=list),
    Column("keywords_en", JSON, nullable=False, default=list),
    Column("active", Boolean, nullable=False, default=True),
)

grid_cells = Table(
    "grid_cells",
    metadata,
    Column("id", Id, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("owner_id", Id, ForeignKey("departments.id"), nullable=False, index=True),
    Column("geometry", JSON, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("department_id", Id, ForeignKey("departments.id"), nullable=True, index=True),
    Column("locale", String(10), nullable=False, default="zh-CN"),
    Column("phone", String(32), nullable=True),
    Column("token_hash", String(64), nullable=True, unique=True),
    Column("password_hash", String(200), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=True),
    Column("password_changed_at", UTCDateTime, nullable=True),
    Column("totp_secret", String(64), nullable=True),  # two-factor sign-in (RFC 6238)
    Column("totp_last_step", BigInteger, nullable=True),  # the last code's step: none twice
)

citizens = Table(
    "citizens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=True),
    Column("phone", String(32), nullable=True, index=True),
    Column("locale", String(10), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

citizen_identities = Table(
    "citizen_identities",
    metadata,
    Column("id", Id, primary_key=True),
    Column("citizen_id", Id, ForeignKey("citizens.id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),  # phone | telegram | web | email | open311
    Column("value", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "value"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("citizen_id", Id, ForeignKey("citizens.id"), nullable=False, index=True),
    Column("channel", String(20), nullable=False),  # sms | voice | telegram | webchat | open311
    Column("address", String(200), nullable=False),  # the citizen's address on that channel
    Column("service_address", String(200), nullable=True),  # the hotline's number / bot
    Column("state", String(20), nullable=False),  # bot | queued | assigned | closed
    # message | call | callback (a request to be called back, kept in the agents' queue)
    Column("kind", String(20), nullable=False, default="message", server_default="message"),
    Column("queue", String(64), nullable=True),
    Column("agent_id", Id, ForeignKey("users.id"), nullable=True),
    Column("ticket_id", Id, nullable=True),  # no FK: tickets reference conversations
    # where a channel's bot dialog stands (e.g. Telegram /new: category, description...)
    Column("bot_state", JSON, nullable=True),
    Column("locale", String(10), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("queued_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("last_message_at", UTCDateTime, nullable=True),
    Index("ix_conversations_open", "citizen_id", "channel", "address", "state"),
    Index("ix_conversations_state", "state", "queue"),
    Index("ix_conversations_created", "created_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True),
    # null for messages to staff (reminders): those name their recipient below
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=True, index=True),
    Column("channel", String(20), nullable=False),
    Column("direction", String(3), nullable=False),  # in | out
    Column("body", Text, nullable=False),
    Column("provider_id", String(128), nullable=True),
    # received | queued | sent | delivered | undelivered | failed | suppressed
    Column("status", String(20), nullable=False),
    Column("error", Text, nullable=True),
    Column("author_id", Id, ForeignKey("users.id"), nullable=True),
    Column("kind", String(32), nullable=False, default="text"),  # text | auto_reply | notice ...
    Column("essential", Boolean, nullable=False, default=True),
    # urgent messages ignore quiet hours (alerts about urgent tickets)
    Column("urgent", Boolean, nullable=False, default=False, server_default=false()),
    Column("to_address", String(200), nullable=True),  # when there is no conversation
    Column("recipient_user_id", Id, ForeignKey("users.id"), nullable=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=True, index=True),
    # a notification made by a job that may run twice carries a key: the second is not made
    Column("dedupe_key", String(200), nullable=True, unique=True),
    Column("meta", JSON, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    UniqueConstraint("channel", "direction", "provider_id"),
)

# inbound text as a provider delivered it, stored before the provider gets its answer
# (DESIGN rule 3) and turned into a message, conversation and ticket right after
inbox = Table(
    "inbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("channel", String(20), nullable=False),
    Column("provider_id", String(128), nullable=True),
    Column("payload", JSON, nullable=False),  # the adapter's Inbound, field by field
    Column("state", String(10), nullable=False),  # pending | done | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Column("message_id", Id, nullable=True),  # the message it became
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True),
    UniqueConstraint("channel", "provider_id"),
    Index("ix_inbox_state", "state", "id"),
)

calls = Table(
    "calls",
    metadata,
    Column("id", Id, primary_key=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("channel", String(20), nullable=False),  # sip | twilio_voice
    Column("provider_call_id", String(200), nullable=False),
    Column("from_number", String(64), nullable=True),
    Column("to_number", String(64), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("queued_at", UTCDateTime, nullable=True),
    Column("agent_answered_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("dtmf", String(200), nullable=False, default=""),
    Column("path", JSON, nullable=False, default=list),  # the IVR nodes the caller went through
    Column("recording_path", String(400), nullable=True),
    Column("recording_seconds", Float, nullable=True),
    Column("transcript", Text, nullable=True),
    Column("confidence", Float, nullable=True),
    Column("queue_wait_s", Float, nullable=True),
    Column("talk_s", Float, nullable=True),
    Column("held_at", UTCDateTime, nullable=True),  # on hold since (the caller hears music)
    Column("hold_s", Float, nullable=True),  # time on hold, all holds together
    Column("outcome", String(32), nullable=True),
    Column("end_node", String(64), nullable=True),  # the IVR node the call ended at
    UniqueConstraint("channel", "provider_call_id"),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("number", String(20), nullable=False, unique=True),
    Column("type", String(20), nullable=False),
    Column("priority", String(10), nullable=False),
    Column("state", String(20), nullable=False),
    Column("category_id", Id, ForeignKey("categories.id"), nullable=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("citizen_id", Id, ForeignKey("citizens.id"), nullable=True, index=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=True),
    Column("origin_channel", String(20), nullable=False),
    Column("locale", String(10), nullable=False),
    Column("address", String(400), nullable=True),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("grid_cell_id", Id, ForeignKey("grid_cells.id"), nullable=True),
    Column("street_id", Id, ForeignKey("departments.id"), nullable=True),
    Column("district_id", Id, ForeignKey("departments.id"), nullable=True),
    Column("routing", JSON, nullable=True),
    Column("department_id", Id, ForeignKey("departments.id"), nullable=True, index=True),
    Column("created_by", Id, ForeignKey("users.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("dispatched_at", UTCDateTime, nullable=True),
    Column("sign_due_at", UTCDateTime, nullable=True),
    Column("accepted_at", UTCDateTime, nullable=True),
    Column("handle_started_at", UTCDateTime, nullable=True),
    Column("due_at", UTCDateTime, nullable=True),
    # when the lights turn yellow (75 % of each clock's working time): lists count in SQL
    Column("sign_warn_at", UTCDateTime, nullable=True),
    Column("warn_at", UTCDateTime, nullable=True),
    Column("replied_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("reply", Text, nullable=True),
    Column("closure", String(20), nullable=True),
    Column("extension_days", Integer, nullable=False, default=0),
    Column("extension_request_days", Integer, nullable=True),
    Column("extension_request_reason", Text, nullable=True),
    Column("return_count", Integer, nullable=False, default=0),
    Column("reopen_count", Integer, nullable=False, default=0),
    Column("urge_count", Integer, nullable=False, default=0),
    Column("supervised", Boolean, nullable=False, default=False),
    Column("merged_into_id", Id, ForeignKey("tickets.id"), nullable=True),
    Column("last_reason", Text, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Index("ix_tickets_queue", "state", "priority", "due_at"),
    Index("ix_tickets_created", "created_at"),
    Index("ix_tickets_department_state", "department_id", "state"),
    Index("ix_tickets_priority_created", "priority", "created_at"),
    Index("ix_tickets_closed", "closed_at"),
    Index("ix_tickets_replied", "replied_at"),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_id", Id, nullable=True),
    Column("actor_role", String(20), nullable=False),
    Column("actor_name", String(200), nullable=False),
    Column("entity_type", String(40), nullable=False),
    Column("entity_id", BigInteger, nullable=True),
    Column("action", String(64), nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("details", JSON, nullable=True),  # the step's parameters: reason, text, days...
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_entity", "entity_type", "entity_id", "seq"),
)

# one row: the head of the audit chain; writers lock it, so the chain stays a line
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("key", String(200), nullable=False, unique=True),
    Column("payload", JSON, nullable=False),
    Column("state", String(10), nullable=False),  # pending | running | done | dead | cancelled
    Column("run_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("locked_by", String(100), nullable=True),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("result", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_jobs_due", "state", "run_at"),
)

# the callback satisfaction survey (回访) of a closed ticket; one per closure
surveys = Table(
    "surveys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("citizen_id", Id, ForeignKey("citizens.id"), nullable=True, index=True),
    Column("department_id", Id, ForeignKey("departments.id"), nullable=True),
    Column("round", Integer, nullable=False),  # 1 for the first closure, 2 after a reopen...
    Column("channel", String(20), nullable=False),  # where it is asked: sms | telegram ...
    # scheduled | sent | reminded | answered | unanswered | cancelled
    Column("state", String(20), nullable=False),
    Column("score", Integer, nullable=True),  # 1..5 (满意 5, 基本满意 4, 不满意 1)
    Column("solved", Boolean, nullable=True),
    Column("answer_text", Text, nullable=True),
    Column("clarifications", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("answered_at", UTCDateTime, nullable=True),
    UniqueConstraint("ticket_id", "round"),
)

# numbers that said STOP (退订): no survey or reminder goes to them until START (订阅)
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("channel", String(20), nullable=False),
    Column("address", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("channel", "address"),
)

# files a citizen sent with a report (photos), kept under <data_dir>/attachments
attachments = Table(
    "attachments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=True, index=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=True, index=True),
    Column("kind", String(20), nullable=False),  # photo | document | audio
    Column("path", String(400), nullable=False),  # relative to the data directory
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("source_id", String(200), nullable=True),  # the provider's file id
    Column("created_at", UTCDateTime, nullable=False),
    Column("filename", String(200), nullable=True),  # as the uploader named it
    Column("author_id", Id, ForeignKey("users.id"), nullable=True),  # staff who added it
)

# staff's own notes on a ticket: never sent to the citizen, never on the status page
ticket_notes = Table(
    "ticket_notes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("author_id", Id, ForeignKey("users.id"), nullable=True),
    Column("author_name", String(200), nullable=False),
    Column("author_role", String(20), nullable=False),
    Column("department_id", Id, ForeignKey("departments.id"), nullable=True),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# the pairs of neighbouring characters in each ticket's title, description and address
# (see ``callcenter.domain.textsearch``): written with the ticket's text, by the action
# that writes it. Term first: a search reads one term's tickets in order. No foreign key:
# the rows are derived from the ticket's own and a bulk load need not check each one.
ticket_terms = Table(
    "ticket_terms",
    metadata,
    Column("term", BigInteger, primary_key=True, autoincrement=False),
    Column("ticket_id", Id, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# every attempt to hand an outbound message to its provider, and what the provider answered
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("message_id", Id, ForeignKey("messages.id"), nullable=False),
    Column("attempt", Integer, nullable=False),  # 1, 2, ... per message, in order
    Column("at", UTCDateTime, nullable=False),
    Column("outcome", String(20), nullable=False),  # accepted | retry | failed
    Column("http_status", Integer, nullable=True),  # none when no answer came (timeout)
    Column("error_code", String(32), nullable=True),  # the provider's (21211...) or ours
    Column("provider_id", String(128), nullable=True),  # the provider's message id (sid)
    Column("detail", JSON, nullable=False, default=dict),
    UniqueConstraint("message_id", "attempt"),
)

# --- 0400: the browser: staff sessions, throttles and the ACD -----------------------

# a signed-in browser; the cookie holds a random value, this table its SHA-256
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("user_agent", String(300), nullable=True),
)

# one-time set-password links (kind "set_password") and the second step of a sign-in
# ("second_factor": a code, or enrolling an app with ``secret``); kept by SHA-256 only
staff_tokens = Table(
    "staff_tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("secret", String(64), nullable=True),
    Column("failures", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

# days an administrator made a holiday ("holiday") or a working day ("workday") locally
calendar_days = Table(
    "calendar_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("note", String(200), nullable=False, default="", server_default=""),
    Column("updated_at", UTCDateTime, nullable=False),
)

# canned replies and SMS texts an administrator rewrote, over the shipped catalog
text_overrides = Table(
    "text_overrides",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("locale", String(10), primary_key=True),
    Column("body", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# ACD queues as an administrator set them (over the [acd.queues] settings)
queue_settings = Table(
    "queue_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("strategy", String(20), nullable=False),
    Column("overflow_to", String(64), nullable=True),
    Column("overflow_after_s", Float, nullable=False),
    Column("offer_timeout_s", Float, nullable=False),
    Column("wrap_up_s", Float, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# one row: the deadlines an administrator set (an SlaSettings document), over [sla]
sla_policy = Table(
    "sla_policy",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("policy", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# one row: moved by every configuration change, watched by every process
config_version = Table(
    "config_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

# counters for lockouts and rate limits ("login:<username>", "lookup-ip:<address>"...)
throttles = Table(
    "throttles",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
)

# an agent's presence and skills, as the ACD sees them
agent_states = Table(
    "agent_states",
    metadata,
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True, autoincrement=False),
    Column("presence", String(20), nullable=False),  # available | busy | wrap_up | away
    Column("presence_since", UTCDateTime, nullable=False),
    Column("wrap_up_until", UTCDateTime, nullable=True),
    Column("capacity", Integer, nullable=False),
    Column("languages", JSON, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("queues", JSON, nullable=False),
    Column("last_contact_at", UTCDateTime, nullable=True),
    # the voice skill: calls are offered only to agents who take them
    Column("voice", Boolean, nullable=False, default=True, server_default=true()),
    # at most this many at once per channel ({"voice": 1, "webchat": 3}), within capacity
    Column("channel_capacity", JSON, nullable=True),
)

# one stay of a conversation in an ACD queue, from entering it until it ends
queue_entries = Table(
    "queue_entries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False, index=True),
    Column("queue", String(64), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("language", String(10), nullable=False),
    Column("category", String(64), nullable=True),
    Column("queued_at", UTCDateTime, nullable=False),  # when the citizen began to wait
    Column("entered_at", UTCDateTime, nullable=False),  # when it entered this queue
    Column("agent_id", Id, ForeignKey("users.id"), nullable=True, index=True),
    Column("assigned_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    # handled | transferred | overflowed | abandoned | left_message | closed
    Column("outcome", String(20), nullable=True),
    Column("wrap_up_code", String(40), nullable=True),
    Index("ix_queue_entries_open", "ended_at", "queue"),
    Index("ix_queue_entries_entered", "entered_at"),
)

# an offer of a waiting conversation to one agent
offers = Table(
    "offers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("entry_id", Id, ForeignKey("queue_entries.id"), nullable=False, index=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False),
    Column("agent_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("queue", String(64), nullable=False),
    # pending | accepted | declined | timed_out | withdrawn
    Column("state", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime, nullable=True),
    Index("ix_offers_state", "state", "expires_at"),
)

# video mediation (调解) on dispute tickets: docs/mediation.md
mediators = Table(
    "mediators",
    metadata,
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True),
    Column("languages", JSON, nullable=False),  # ["zh-CN", "en"]
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
)

mediations = Table(
    "mediations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("state", String(20), nullable=False),
    Column("mediator_id", Id, ForeignKey("users.id"), nullable=True, index=True),
    Column("scheduled_at", UTCDateTime, nullable=True),
    Column("duration_minutes", Integer, nullable=False, default=60),
    Column("started_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("outcome", String(20), nullable=True),
    Column("agreement_text", Text, nullable=True),
    Column("agreement_path", String(400), nullable=True),  # the document, under the data dir
    Column("reason", Text, nullable=True),
    Column("reschedules", Integer, nullable=False, default=0),
    Column("version", Integer, nullable=False, default=1),
    # the room on the media server: node, id, and its secrets (never sent to a browser)
    Column("media_node", String(32), nullable=True),
    Column("room_id", BigInteger, nullable=True, unique=True),
    Column("room_secret", String(64), nullable=True),
    Column("room_pin", String(16), nullable=True),
    Column("mediator_token", String(64), nullable=True),
    Column("recording", Boolean, nullable=False, default=False),  # the room records now
    Column("created_by", Id, ForeignKey("users.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_mediations_state_time", "state", "scheduled_at"),
)

mediation_parties = Table(
    "mediation_parties",
    metadata,
    Column("id", Id, primary_key=True),
    Column("mediation_id", Id, ForeignKey("mediations.id"), nullable=False, index=True),
    Column("citizen_id", Id, ForeignKey("citizens.id"), nullable=True),
    Column("name", String(200), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("role", String(20), nullable=False),
    Column("locale", String(10), nullable=False),
    Column("nonce", String(32), nullable=False),  # in the link; a new invitation draws a new one
    Column("pin_hash", String(200), nullable=False),
    Column("pin_failures", Integer, nullable=False, default=0),
    Column("pin_locked_until", UTCDateTime, nullable=True),
    Column("declined_at", UTCDateTime, nullable=True),
    Column("decline_text", Text, nullable=True),
    Column("consent", Boolean, nullable=True),  # to recording; None: not asked yet
    Column("consent_at", UTCDateTime, nullable=True),
    Column("seat_hash", String(64), nullable=True),  # the browser that holds the place
    Column("seen_at", UTCDateTime, nullable=True),  # that browser's last heartbeat
    Column("presence", String(20), nullable=False, default="away"),  # away|waiting|in_room|removed
    Column("admitted_at", UTCDateTime, nullable=True),
    Column("joined_at", UTCDateTime, nullable=True),
    Column("janus_token", String(64), nullable=True),
    Column("feed_id", BigInteger, nullable=True),
    Column("muted", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)

mediation_recordings = Table(
    "mediation_recordings",
    metadata,
    Column("id", Id, primary_key=True),
    Column("mediation_id", Id, ForeignKey("mediations.id"), nullable=False, index=True),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False, index=True),
    Column("state", String(20), nullable=False),  # pending | ready | failed | deleted
    Column("path", String(400), nullable=True),  # under the data dir
    Column("duration_seconds", Float, nullable=True),
    Column("size", Integer, nullable=True),
    Column("tracks", JSON, nullable=True),  # what was joined
    Column("error", Text, nullable=True),
    Column("transcript", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
)
