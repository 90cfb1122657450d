"""IVR flows as data: one TOML file per flow, checked when it is loaded.

A flow names its first node (``start``) and its safe node (``safe``: where
callers go when retries run out, usually the agent queue or a voice
message). Each node is a table under ``[nodes.<id>]`` with a ``type`` and
the fields that type takes; every node id a node points to must exist. A
flow that breaks any of this is refused at load with an error that names the
node and the field, so a bad edit never reaches a caller. See docs/ivr.md.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

BUILTIN_FLOWS = Path(__file__).parent / "flows"
DIGITS = set("0123456789*#")
CONDITIONS = (
    "business_hours",
    "holiday",
    "known_caller",
    "language_en",
    "language_zh",
    "speech_available",
    "mobile_caller",
)


class FlowError(ValueError):
    """A flow file that cannot be used; the message names the node and the field."""

    def __init__(self, flow: str, node: str | None, problem: str) -> None:
        where = f"node {node!r}" if node else "flow"
        super().__init__(f"flow {flow!r}, {where}: {problem}")
        self.flow = flow
        self.node = node
        self.problem = problem


class Prompt(BaseModel):
    """A text of the catalogs (``voice.<key>``), optionally in a fixed language."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str
    locale: Literal["zh-CN", "en"] | None = None


def _prompts(value: Any) -> Any:
    if isinstance(value, str):
        return [{"key": value}]
    if isinstance(value, list):
        return [{"key": v} if isinstance(v, str) else v for v in value]
    return value


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    prompts: tuple[Prompt, ...] = ()

    _normalise_prompts = field_validator("prompts", mode="before")(_prompts)

    def targets(self) -> dict[str, str]:
        """Field name -> node id, for every node this one can lead to."""
        out: dict[str, str] = {}
        for name in ("next", "on_fail", "then", "otherwise", "on_timeout", "on_callback", "retry"):
            value = getattr(self, name, None)
            if value:
                out[name] = value
        for digit, target in (getattr(self, "choices", None) or {}).items():
            out[f"choices.{digit}"] = target
        return out


class PlayNode(_Node):
    type: Literal["play"]
    next: str


class MenuNode(_Node):
    type: Literal["menu"]
    choices: dict[str, str]
    timeout: float = Field(default=6, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=5)
    on_fail: str | None = None  # default: the flow's safe node

    @field_validator("choices")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("a menu needs at least one choice")
        for key in value:
            if len(key) != 1 or key not in DIGITS:
                raise ValueError(f"choice {key!r} is not one key of the keypad")
        return value


class DigitsNode(_Node):
    type: Literal["digits"]
    var: str
    min_length: int = Field(default=1, ge=1, le=40)
    max_length: int = Field(default=20, ge=1, le=40)
    terminator: str = "#"
    timeout: float = Field(default=10, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=5)
    next: str
    on_fail: str | None = None
    # one key pressed alone (with or without the terminator) leads elsewhere: {"0" = "agent"}
    choices: dict[str, str] = {}


class RecordNode(_Node):
    """Record speech and transcribe it into ``var``."""

    type: Literal["record"]
    var: str = "transcript"
    max_seconds: float = Field(default=20, gt=0, le=300)
    grammar: Literal["categories", "digits"] | None = None
    retries: int = Field(default=1, ge=0, le=5)
    next: str
    on_fail: str | None = None  # no recogniser, or nothing understood


class BranchNode(_Node):
    type: Literal["branch"]
    condition: str
    then: str
    otherwise: str

    @field_validator("condition")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CONDITIONS:
            raise ValueError(f"unknown condition {value!r}; known: {', '.join(CONDITIONS)}")
        return value


class LanguageNode(_Node):
    type: Literal["language"]
    set: Literal["zh-CN", "en"]
    next: str


class TicketStatusNode(_Node):
    """Speak a ticket's state; an unknown number is asked again (``retry``) ``retries`` times."""

    type: Literal["ticket_status"]
    var: str
    next: str
    retry: str | None = None  # the node that asks for the number again
    retries: int = Field(default=2, ge=0, le=5)
    on_fail: str | None = None  # default: the flow's safe node


class ReportNode(_Node):
    """Open a ticket from what was said: category recognised or chosen, confirmed by keypad."""

    type: Literal["report"]
    var: str = "transcript"
    categories: dict[str, str]  # keypad digit -> category code
    timeout: float = Field(default=6, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=5)
    next: str

    @field_validator("categories")
    @classmethod
    def _digits(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if len(key) != 1 or key not in "123456789":
                raise ValueError(f"category key {key!r} must be one of 1-9 (0 is 'other')")
        return value


class QueueNode(_Node):
    type: Literal["queue"]
    queue: str | None = None
    callback_digit: str | None = "1"
    on_callback: str | None = None
    on_timeout: str | None = None  # default: the flow's safe node


class CallbackNode(_Node):
    type: Literal["callback"]
    timeout: float = Field(default=10, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=5)
    next: str
    on_fail: str | None = None


class VoicemailNode(_Node):
    type: Literal["voicemail"]
    max_seconds: float = Field(default=60, gt=0, le=300)
    next: str


class HangupNode(_Node):
    type: Literal["hangup"]


AnyNode = Annotated[
    PlayNode
    | MenuNode
    | DigitsNode
    | RecordNode
    | BranchNode
    | LanguageNode
    | TicketStatusNode
    | ReportNode
    | QueueNode
    | CallbackNode
    | VoicemailNode
    | HangupNode,
    Field(discriminator="type"),
]
_NODE = TypeAdapter(AnyNode)
# the names the discriminated union above accepts, for error messages
NODE_TYPES = tuple(
    node.model_fields["type"].annotation.__args__[0] for node in get_args(get_args(AnyNode)[0])
)


@dataclass(frozen=True)
class Flow:
    name: str
    start: str
    safe: str
    nodes: dict[str, Any]

    def node(self, node_id: str) -> Any:
        return self.nodes[node_id]


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).endswith("Node"))
    message = first["msg"]
    if first["type"] == "union_tag_invalid":
        message = f"unknown node type; known: {', '.join(NODE_TYPES)}"
    return f"{where}: {message}" if where else message


def parse_flow(name: str, data: dict[str, Any], prompt_keys: set[str] | None = None) -> Flow:
    """Check a flow read from TOML; raise :class:`FlowError` naming the bad node."""
    header = data.get("flow")
    if not isinstance(header, dict):
        raise FlowError(name, None, "missing [flow] table with start and safe")
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        raise FlowError(name, None, "missing [nodes.*] tables")
    unknown = set(data) - {"flow", "nodes"}
    if unknown:
        raise FlowError(name, None, f"unknown tables: {', '.join(sorted(unknown))}")
    nodes: dict[str, Any] = {}
    for node_id, raw in raw_nodes.items():
        if not isinstance(raw, dict):
            raise FlowError(name, node_id, "a node must be a table")
        if "type" not in raw:
            raise FlowError(name, node_id, "type: missing")
        try:
            nodes[node_id] = _NODE.validate_python(raw)
        except ValidationError as error:
            raise FlowError(name, node_id, _describe(error)) from None
    for field in ("start", "safe"):
        target = header.get(field)
        if not isinstance(target, str) or target not in nodes:
            raise FlowError(name, None, f"{field}: no node {target!r}")
    for node_id, node in nodes.items():
        for field, target in node.targets().items():
            if target not in nodes:
                raise FlowError(name, node_id, f"{field}: no node {target!r}")
        if prompt_keys is not None:
            for prompt in node.prompts:
                if f"voice.{prompt.key}" not in prompt_keys:
                    raise FlowError(name, node_id, f"prompts: no text voice.{prompt.key}")
    return Flow(name, header["start"], header["safe"], nodes)


def load_flow(path: Path, prompt_keys: set[str] | None = None) -> Flow:
    """Read and check one flow file."""
    name = path.stem
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise FlowError(name, None, f"not valid TOML: {error}") from None
    except OSError as error:
        raise FlowError(name, None, f"cannot read {path}: {error.strerror}") from None
    return parse_flow(name, data, prompt_keys)


def find_flow(name: str, folder: Path | None, prompt_keys: set[str] | None = None) -> Flow:
    """The flow ``name`` from the configured folder, else from the flows that ship here."""
    for base in (folder, BUILTIN_FLOWS):
        if base is not None and (base / f"{name}.toml").is_file():
            return load_flow(base / f"{name}.toml", prompt_keys)
    raise FlowError(name, None, f"no file {name}.toml in {folder or BUILTIN_FLOWS}")
