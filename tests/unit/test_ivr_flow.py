"""IVR flow files: the default flow loads; broken ones are refused naming the node."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from callcenter.i18n import Catalog
from ivr.flow import BUILTIN_FLOWS, FlowError, find_flow, load_flow, parse_flow

KEYS = {k for texts in Catalog.core().texts.values() for k in texts}


def default() -> dict[str, Any]:
    return tomllib.loads((BUILTIN_FLOWS / "default.toml").read_text("utf-8"))


def test_the_default_flow_loads_and_offers_what_the_hotline_promises() -> None:
    flow = find_flow("default", None, KEYS)
    assert flow.start == "language" and flow.safe == "agent"
    assert flow.node("language").choices == {"1": "chinese", "2": "english"}
    assert flow.node("main").choices == {"1": "ticket_number", "2": "describe_check", "0": "agent"}
    types = {node.type for node in flow.nodes.values()}
    assert types >= {
        "menu",
        "digits",
        "record",
        "branch",
        "language",
        "ticket_status",
        "report",
        "queue",
        "callback",
        "voicemail",
        "hangup",
        "play",
    }


@pytest.mark.parametrize(
    ("change", "node", "problem"),
    [
        (lambda d: d["nodes"]["main"].update(type="dance"), "main", "unknown node type"),
        (lambda d: d["nodes"]["welcome_new"].pop("next"), "welcome_new", "next"),
        (
            lambda d: d["nodes"]["main"]["choices"].update({"7": "nowhere"}),
            "main",
            "choices.7: no node 'nowhere'",
        ),
        (
            lambda d: d["nodes"]["main"]["choices"].update({"12": "agent"}),
            "main",
            "not one key of the keypad",
        ),
        (lambda d: d["nodes"]["agent"].update(condition="full_moon"), "agent", "unknown condition"),
        (
            lambda d: d["nodes"]["goodbye"].update(prompts="no_such_text"),
            "goodbye",
            "no text voice.no_such_text",
        ),
        (lambda d: d["nodes"]["queue"].update(colour="blue"), "queue", "colour"),
        (
            lambda d: d["nodes"]["report"]["categories"].update({"0": "noise"}),
            "report",
            "must be one of 1-9",
        ),
        (lambda d: d["nodes"]["ticket_number"].update(timeout=-1), "ticket_number", "timeout"),
    ],
)
def test_a_broken_node_is_named(change: Any, node: str, problem: str) -> None:
    data = default()
    change(data)
    with pytest.raises(FlowError) as caught:
        parse_flow("default", data, KEYS)
    assert caught.value.node == node
    assert problem in str(caught.value)


def test_a_broken_flow_header_is_refused() -> None:
    data = default()
    data["flow"]["safe"] = "nowhere"
    with pytest.raises(FlowError, match="safe: no node 'nowhere'"):
        parse_flow("default", data, KEYS)


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[flow\nstart = 1", "utf-8")
    with pytest.raises(FlowError, match="not valid TOML"):
        load_flow(path)
    with pytest.raises(FlowError, match=r"no file missing\.toml"):
        find_flow("missing", tmp_path)


def test_an_operator_flow_folder_comes_first(tmp_path: Path) -> None:
    (tmp_path / "default.toml").write_text(
        '[flow]\nstart = "bye"\nsafe = "bye"\n[nodes.bye]\ntype = "hangup"\nprompts = "goodbye"\n',
        "utf-8",
    )
    assert list(find_flow("default", tmp_path, KEYS).nodes) == ["bye"]
