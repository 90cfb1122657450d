"""Texts an administrator may rewrite (canned replies, the SMS the hotline sends): which
variables each may use, checked before it is saved, and how many SMS segments it
takes once its variables are filled in."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from callcenter.domain.errors import InvalidInput
from callcenter.domain.segments import Segments, count_segments

MAX_TEXT = 1000
# what a variable is filled in with when the segments are counted: a value as long as
# a typical real one (a ticket number, a status link, a department's name)
SAMPLES: Mapping[str, str] = {
    "hotline": "12345",
    "number": "20261127-0042",
    "status_url": "https://hotline.example.gov.cn/status/20261127-0042",
    "department": "明湖市市政设施管理处",
    "due": "2026-12-04 17:30",
    "answer": "路灯已于今日修复，感谢您的反映。",
    "name": "王芳",
    "link": "https://hotline.example.gov.cn/ui/password/" + "x" * 43,
}


def variables(template: str) -> set[str]:
    """The variable names ``template`` uses; :class:`InvalidInput` when its braces are
    not well formed (a lone ``{`` or ``}``)."""
    names: set[str] = set()
    try:
        for _, field, _, _ in string.Formatter().parse(template):
            if field is not None:
                name = field.split(".")[0].split("[")[0]
                if not name.isidentifier():
                    raise InvalidInput("template_braces")
                names.add(name)
    except ValueError:
        raise InvalidInput("template_braces") from None
    return names


def check_template(text: str, allowed: Iterable[str]) -> str:
    """``text`` if it uses only ``allowed`` variables and fits ``MAX_TEXT``."""
    if not text.strip():
        raise InvalidInput("missing_field", field="text")
    if len(text) > MAX_TEXT:
        raise InvalidInput("field_too_long", field="text", limit=MAX_TEXT)
    allowed_set = set(allowed)
    unknown = sorted(variables(text) - allowed_set)
    if unknown:
        raise InvalidInput(
            "unknown_variable",
            variable="{" + unknown[0] + "}",
            allowed=", ".join("{" + v + "}" for v in sorted(allowed_set)) or "—",
        )
    return text


def sample_segments(text: str) -> Segments:
    """The segments of ``text`` with its variables filled in with typical values."""
    values = {name: SAMPLES.get(name, "x" * 12) for name in variables(text)}
    return count_segments(string.Formatter().vformat(text, (), values))
