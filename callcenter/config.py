"""Settings: defaults that need nothing, a TOML file, and ``CALLCENTER_*`` variables.

Precedence, highest first: explicit keyword arguments, environment variables
(``CALLCENTER_PORT=9000``; nested sections with a double underscore,
``CALLCENTER_INTAKE__MIN_CONFIDENCE=0.8``), the TOML file named by
``CALLCENTER_CONFIG`` (or ``./callcenter.toml`` when it exists), then the
defaults below. With no configuration at all the hotline runs in one process on
SQLite under ``./data`` with the simulated SMS provider.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Locale = Literal["zh-CN", "en"]
LOCALES: tuple[Locale, ...] = ("zh-CN", "en")


class Limit(BaseModel):
    """A time limit: ``amount`` of ``unit``.

    ``working_days`` and ``working_hours`` count only working time on the
    configured calendar; ``hours`` and ``minutes`` are clock time (used for
    urgent tickets, which do not wait for Monday).
    """

    amount: float = Field(gt=0)
    unit: Literal["working_days", "working_hours", "hours", "minutes"] = "working_days"


class SlaSettings(BaseModel):
    """Deadlines per ticket type and priority. All of it is configuration."""

    sign_for: Limit = Limit(amount=1)
    handle: dict[str, Limit] = {
        "inquiry": Limit(amount=2),
        "help": Limit(amount=10),
        "suggestion": Limit(amount=10),
        "complaint": Limit(amount=15),
        "report": Limit(amount=15),
        "praise": Limit(amount=5),
    }
    urgent_sign_for: Limit = Limit(amount=30, unit="minutes")
    urgent_handle: Limit = Limit(amount=24, unit="hours")
    max_extension_days: int = Field(default=10, ge=0)
    yellow_at: float = Field(default=0.75, gt=0, lt=1)


class CalendarSettings(BaseModel):
    """The working calendar: Chinese public holidays plus local overrides.

    ``extra_holidays`` and ``extra_workdays`` take precedence over the
    ``chinesecalendar`` package, and cover years it does not know yet (the
    State Council publishes each year's arrangement late in the year before).
    """

    work_hours: list[str] = ["09:00-12:00", "13:30-17:30"]
    extra_holidays: list[str] = []
    extra_workdays: list[str] = []


class IntakeSettings(BaseModel):
    """What happens to an inbound text before an agent sees it."""

    auto_ticket: bool = True
    min_confidence: float = Field(default=0.6, ge=0, le=1)
    acknowledge_queued: bool = True
    default_queue: str = "general"
    # the inbox (texts stored before the provider is answered, handled right after):
    # at most this many per transaction, and no more once a transaction has run this
    # long, so that the webhooks waiting to be stored are not held up
    inbox_batch: int = Field(default=200, ge=1, le=5000)
    inbox_batch_ms: float = Field(default=10, gt=0)
    inbox_busy_batch_ms: float = Field(default=3, gt=0)  # while webhooks keep coming
    inbox_poll_seconds: float = Field(default=1.0, gt=0)  # for texts stored by other processes


class NotifySettings(BaseModel):
    """What the hotline tells citizens and departments, and when."""

    quiet_hours: str = "21:00-08:00"  # local; "" for none. Urgent alerts ignore it
    max_segments: int = Field(default=3, ge=1, le=10)  # the budget of every templated SMS
    citizen_notices: bool = True
    reminders: bool = True
    reminder_at: float = Field(default=0.75, gt=0, lt=1)  # "75 % of the handling time"
    survey: bool = True
    survey_delay_minutes: float = Field(default=120, ge=0)
    survey_reminder_hours: float = Field(default=24, gt=0)
    survey_expire_hours: float = Field(default=24, gt=0)  # after the reminder
    stop_words: list[str] = [
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "退订",
        "TD",
    ]
    start_words: list[str] = ["START", "UNSTOP", "SUBSCRIBE", "订阅"]


class JobSettings(BaseModel):
    """The durable job executor (outbox)."""

    driver: Literal["inprocess", "celery", "none"] = "inprocess"
    lease_seconds: float = Field(default=60, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)
    concurrency: int = Field(default=8, ge=1)
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=3600, gt=0)
    # background work (jobs, the inbox's handling) waits for a gap in the webhooks:
    # this long without one, and no longer than the second figure; while webhooks
    # keep coming (one in the last busy_ms), fewer jobs run at once (callcenter.foreground)
    gap_ms: float = Field(default=2, ge=0)
    gap_max_wait_ms: float = Field(default=300, ge=0)
    busy_ms: float = Field(default=100, ge=0)
    busy_concurrency: int = Field(default=1, ge=1)
    # driver = "celery" (docs/scaling.md): the broker (default: redis_url; "amqp://..." for
    # RabbitMQ), its queue, how long the broker waits for an unacknowledged task before it
    # hands it out again (longer than any job), and how long a job handed to the broker
    # and taken by no worker waits before the relay hands it over again
    broker_url: str | None = None
    celery_queue: str = "callcenter"
    visibility_timeout_seconds: float = Field(default=3600, gt=0)
    resend_seconds: float = Field(default=300, gt=0)
    relay_batch: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _visibility_outlasts_a_job(self) -> JobSettings:
        if self.visibility_timeout_seconds <= self.lease_seconds:
            raise ValueError(
                "jobs.visibility_timeout_seconds must be longer than jobs.lease_seconds: "
                "the broker would hand a task out again while a worker still runs it"
            )
        return self


class VoiceSettings(BaseModel):
    """The voice front: IVR flows, prompts, speech recognition, the call queue.

    See ``docs/ivr.md``. Paths left empty mean: the flows that ship with the
    IVR, recorded prompts under ``<data_dir>/prompts``, and generated prompts
    cached under ``<data_dir>/voice-cache``.
    """

    flows_dir: Path | None = None
    flow: str = "default"
    prompts_dir: Path | None = None
    cache_dir: Path | None = None
    # the speech recogniser per language: "whisper", "pocketsphinx", "vosk" or "none",
    # or a list of them: the first that loads is used
    recognizers: dict[str, str | list[str]] = {
        "en": ["whisper", "pocketsphinx"],
        "zh-CN": ["whisper", "vosk"],
    }
    # per IVR node and language, another recogniser: {"confirm": {"en": "pocketsphinx"}}
    node_recognizers: dict[str, dict[str, str]] = {}
    # model directories per language (vosk needs one; pocketsphinx's en-US ships with it)
    models: dict[str, str] = {}
    # a CTranslate2 Whisper model directory (config.json, model.bin, tokenizer.json,
    # vocabulary.txt) for the whisper recogniser; see docs/ivr.md
    whisper_model: Path | None = None
    whisper_threads: int = Field(default=2, ge=1, le=64)  # cores per transcription
    whisper_workers: int = Field(default=1, ge=1, le=16)  # transcriptions at once
    queue: str = "voice"
    average_handling_seconds: float = Field(default=180, gt=0)
    serving_agents: int = Field(default=1, ge=1)
    hold_announce_seconds: float = Field(default=30, gt=0)
    # where an agent's softphone (Janus's SIP plugin) reaches the hotline's SIP side to be
    # bridged to a caller: "sip:{user}@host:port"; empty: the sip channel's host and port
    agent_sip: str = ""
    # record calls with agents (both sides, one stereo file, on the conversation); the
    # caller hears voice.call_recorded before being connected
    record_calls: bool = False
    max_hold_seconds: float = Field(default=600, gt=0)
    max_record_seconds: float = Field(default=30, gt=0, le=300)
    # a caller that sends no RTP at all for this long is a dead line: the call is ended
    no_media_seconds: float = Field(default=10, gt=0)
    # ... and one that stops sending for this long (phones send audio all along)
    media_gap_seconds: float = Field(default=60, gt=0)
    # calls served at once by one process; one more hears voice.lines_busy and is counted
    max_calls: int = Field(default=100, ge=1)
    # extra words per category code and language: {"street_light": {"en": ["lamp"]}}
    category_keywords: dict[str, dict[str, list[str]]] = {}
    # below this confidence a recognised category is not offered; the keypad menu is
    min_category_confidence: float = Field(default=0.5, ge=0, le=1)
    # at or above this confidence no keypad confirmation is asked (above 1: always ask)
    confirm_below: float = Field(default=1.01, ge=0)


class QueueSettings(BaseModel):
    """One ACD queue. See ``docs/acd.md``."""

    strategy: Literal["longest_idle", "round_robin", "fewest_contacts"] = "longest_idle"
    overflow_to: str | None = None  # the queue a conversation moves to after overflow_after_s
    overflow_after_s: float = Field(default=300, gt=0)
    offer_timeout_s: float = Field(default=30, gt=0)
    wrap_up_s: float = Field(default=30, ge=0)


class AcdSettings(BaseModel):
    """Queues for conversations waiting for an agent (automatic contact distribution)."""

    enabled: bool = True
    queues: dict[str, QueueSettings] = {
        "general": QueueSettings(overflow_to="overflow"),
        "overflow": QueueSettings(strategy="fewest_contacts"),
    }
    default_capacity: int = Field(default=3, ge=1, le=50)
    away_on_missed_offer: bool = True
    tick_seconds: float = Field(default=1.0, gt=0)
    wrap_up_codes: list[str] = [
        "resolved",
        "ticket_created",
        "direct_answer",
        "information",
        "transferred",
        "no_response",
        "abusive",
    ]
    canned_replies: list[str] = ["greeting", "ask_address", "ask_phone", "ticket_follows", "bye"]

    def queue(self, name: str) -> QueueSettings:
        return self.queues.get(name) or QueueSettings()


class StaffSettings(BaseModel):
    """Staff sign-in: sessions and lockout."""

    session_hours: float = Field(default=12, gt=0)
    idle_minutes: float = Field(default=120, gt=0)
    max_failures: int = Field(default=5, ge=1)
    failure_window_minutes: float = Field(default=15, gt=0)
    lockout_minutes: float = Field(default=15, gt=0)
    # roles that must sign in with a second factor (TOTP); others may turn it on
    two_factor_roles: list[str] = ["admin", "supervisor"]
    # how long an invitation's or a reset's one-time set-password link stays good
    link_hours: float = Field(default=72, gt=0)
    # the second step of a sign-in (the code, or enrolling an app) must follow within
    second_step_minutes: float = Field(default=10, gt=0)


class KpiSettings(BaseModel):
    """How the KPIs and the monthly score are computed (see ``docs/kpi.md``)."""

    service_level_seconds: float = Field(default=20, gt=0)
    satisfied_min_score: int = Field(default=4, ge=1, le=5)
    # a department (or street) with fewer tickets dispatched in the period is shown apart,
    # not ranked: a score out of one or two tickets says nothing
    min_episodes: int = Field(default=10, ge=1)
    weights: dict[str, float] = {
        "response_rate": 15,
        "on_time_rate": 25,
        "resolution_rate": 20,
        "satisfaction_rate": 30,
        "return_rate": 5,
        "reopen_rate": 5,
    }


class MapSettings(BaseModel):
    """The staff's maps (docs/ui.md): the city's own grid is always drawn; a basemap only
    from a tile server the city runs (an intranet 天地图 or OSM server), never a CDN."""

    tile_url: str | None = None  # e.g. "https://tiles.city.gov.cn/{z}/{x}/{y}.png"
    attribution: str = ""
    max_zoom: int = Field(default=18, ge=1, le=22)


class SecuritySettings(BaseModel):
    """Limits and headers for the whole server (docs/security.md)."""

    behind_proxy: bool = False  # client address: the last X-Forwarded-For hop
    connect_src: list[str] = []  # more origins pages may connect to (a media server's API)
    window_minutes: float = Field(default=15, gt=0)  # the rate limits' window (and lock)
    failed_logins_per_ip: int = Field(default=20, ge=1)
    bad_tokens_per_ip: int = Field(default=20, ge=1)
    chat_connections_per_ip: int = Field(default=300, ge=1)


class PrivacySettings(BaseModel):
    """How long personal data is kept, in days (0: kept until erased); docs/security.md."""

    messages_days: int = Field(default=1095, ge=0)  # the texts of messages (rows stay)
    recordings_days: int = Field(default=365, ge=0)  # call recordings and transcripts
    closed_ticket_contacts_days: int = Field(default=1095, ge=0)  # who reported a closed ticket


class JanusNode(BaseModel):
    """One Janus server the hotline drives (``media.janus = "external"``).

    ``url`` is its HTTP API (``http://10.0.0.5:8088/janus``), ``ws_url`` its
    WebSocket API (browsers reach it through the hotline's proxy), ``admin_url``
    its admin API; ``admin_secret`` and ``admin_key`` are the ones in its own
    configuration (see ``docs/media.md``).
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    url: str
    ws_url: str
    admin_url: str
    admin_secret: str
    admin_key: str
    weight: float = Field(default=1.0, gt=0)  # rooms are placed on the least loaded by weight


class MediaSettings(BaseModel):
    """The media server: Janus, configured and driven by the hotline (``docs/media.md``).

    ``embedded`` (the default) starts Debian's ``janus`` beside the server with a
    configuration generated from these settings; ``external`` drives the
    ``nodes`` listed; ``off`` runs without media (no rooms, no softphone).
    """

    janus: Literal["embedded", "external", "off"] = "embedded"
    binary: str = "janus"
    # embedded: the API ports on 127.0.0.1 (0: a free port at each start)
    http_port: int = Field(default=0, ge=0, le=65535)
    ws_port: int = Field(default=0, ge=0, le=65535)
    admin_port: int = Field(default=0, ge=0, le=65535)
    rtp_ports: str = Field(default="20000-40000", pattern=r"^\d+-\d+$")
    # ICE: the one public address of a host behind 1:1 NAT, and interfaces to use or skip
    nat_1_1: str = ""
    ice_enforce_list: str = ""
    ice_ignore_list: str = "vmnet"
    # embedded: secrets are random at each start unless given here
    admin_secret: str = ""
    admin_key: str = ""
    nodes: list[JanusNode] = []
    recordings_dir: Path | None = None  # default <data_dir>/recordings
    health_seconds: float = Field(default=2.0, gt=0)
    restart_seconds: float = Field(default=1.0, gt=0)  # embedded: wait before restarting
    # the SIP plugin (browser audio to SIP/RTP with G.711), for the softphone
    sip_local_ip: str = ""  # the address the SIP plugin's SDP offers; empty: Janus picks
    sip_rtp_ports: str = Field(default="40001-50000", pattern=r"^\d+-\d+$")
    # a telephone party in a mediation room: this host's address as the Janus nodes reach
    # it (their forwards of the room's audio come here); 127.0.0.1 with the embedded Janus
    bridge_ip: str = "127.0.0.1"


class MediationSettings(BaseModel):
    """Video mediation rooms for disputes (``docs/mediation.md``)."""

    # the categories whose tickets may get a mediation
    dispute_categories: list[str] = ["neighbour_dispute", "property_management", "consumer_rights"]
    # signs the parties' links; empty: a key made once and kept in <data_dir>/mediation.key
    # (set the same value on every web server of a deployment)
    link_secret: str = ""
    default_minutes: int = Field(default=60, ge=15, le=480)
    join_early_minutes: float = Field(default=15, ge=0)  # a link opens this long before
    grace_minutes: float = Field(default=60, ge=0)  # and lets in this long after the planned end
    reminder_hours: list[float] = [24, 1]
    no_show_minutes: float = Field(default=30, gt=0)  # nobody came this long after the time
    pin_max_failures: int = Field(default=5, ge=1)
    pin_lock_minutes: float = Field(default=15, gt=0)
    seat_timeout_seconds: float = Field(default=30, gt=0)  # a silent browser gives its place up
    recording_retention_days: float = Field(default=180, gt=0)
    transcribe: bool = True  # the recording's audio through voice.recognizers
    # the number a party without a smartphone calls to join by voice (a PBX routes it to the
    # SIP channel's mediation_user); empty: invitations and pages do not offer it
    dial_in: str = ""
    max_video_bitrate: int = Field(default=256_000, ge=64_000)


class OpsSettings(BaseModel):
    """``/ready`` and ``/metrics`` (``callcenter/ops.py``, ``docs/scaling.md``)."""

    # a bearer token that lets others than this machine read them (a Prometheus elsewhere)
    metrics_token: str | None = None


class Settings(BaseSettings):
    """Everything the hotline can be told. See ``docs/deployment.md``."""

    model_config = SettingsConfigDict(
        env_prefix="CALLCENTER_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("data")
    database_url: str | None = None
    redis_url: str | None = None
    # with redis_url: the live events go through a Redis Stream of this many recent
    # events (a page reconnecting with an older id refetches), under keys with this prefix
    redis_prefix: str = "callcenter"
    bus_max_events: int = Field(default=100_000, ge=100)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    timezone: str = "Asia/Shanghai"
    default_locale: Locale = "zh-CN"
    default_region: str = "CN"
    hotline_number: str = "12345"
    # how often each process looks whether an administrator changed the configuration
    # (categories, calendar, texts...) in another process, and reloads it
    config_poll_seconds: float = Field(default=2.0, gt=0)
    channels: list[str] = ["channels.simulated:SimulatedSms", "channels.webchat:WebChat"]
    # web front ends mounted on the server, each "package.module:function" called with the app
    ui: list[str] = ["agent_ui.app:setup", "agent_ui.rooms.app:setup"]
    intake: IntakeSettings = IntakeSettings()
    sla: SlaSettings = SlaSettings()
    calendar: CalendarSettings = CalendarSettings()
    jobs: JobSettings = JobSettings()
    notify: NotifySettings = NotifySettings()
    voice: VoiceSettings = VoiceSettings()
    acd: AcdSettings = AcdSettings()
    staff: StaffSettings = StaffSettings()
    kpi: KpiSettings = KpiSettings()
    map: MapSettings = MapSettings()
    media: MediaSettings = MediaSettings()
    mediation: MediationSettings = MediationSettings()
    channel_options: dict[str, dict[str, Any]] = {}
    # SQLite: FULL syncs the write-ahead log at every commit, so that a text the provider
    # was told is stored survives a power cut; NORMAL may lose the last commits (for
    # benchmarks and throwaway demos only; see docs/deployment.md)
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    security: SecuritySettings = SecuritySettings()
    ops: OpsSettings = OpsSettings()
    privacy: PrivacySettings = PrivacySettings()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        ZoneInfo(value)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("CALLCENTER_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(f"CALLCENTER_CONFIG names a missing file: {config_file}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        elif Path("callcenter.toml").is_file():
            sources.append(
                TomlConfigSettingsSource(settings_cls, toml_file=Path("callcenter.toml"))
            )
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'callcenter.db').resolve()}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def options_for(self, channel: str) -> dict[str, Any]:
        """The ``[channel_options.<name>]`` table for one adapter."""
        return dict(self.channel_options.get(channel, {}))
