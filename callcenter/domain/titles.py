"""A ticket's title when nobody wrote one: the first thing the citizen said that says
something, not "你好，我想咨询一下"."""

from __future__ import annotations

import re

MAX_TITLE = 60
# openers people begin with, at the start of a sentence (Chinese and English)
_OPENERS = re.compile(
    r"^(?:(?:你好|您好|喂|hi|hello|dear sir|dear madam|麻烦(?:问一下|一下)?|打扰(?:了|一下)?|"
    r"请问(?:一下)?|我想(?:咨询|反映|问|投诉|举报)(?:一下)?|想(?:咨询|反映|问)(?:一下)?|"
    r"我要(?:咨询|反映|投诉|举报)(?:一下)?|咨询一下|反映一下|有个问题|有件事)"
    r"[\s,，.。!！:：、~～]*)+",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^\n。！？!?；;]+[。！？!?；;]?")


def summarize(description: str, fallback: str = "") -> str:
    """The first sentence with content, openers removed, at most ``MAX_TITLE`` characters;
    ``fallback`` (e.g. the category's name) when the text is all greeting."""
    for sentence in _SENTENCE.findall(description):
        text = _OPENERS.sub("", sentence.strip()).strip(" ,，.。!！:：、~～")
        if len(text) >= 2:
            return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 1] + "…"
    first = description.strip().splitlines()[0] if description.strip() else ""
    return fallback or first[:MAX_TITLE]
