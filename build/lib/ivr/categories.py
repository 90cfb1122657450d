"""Which category a caller's words name, and how sure we are.

The keywords are the categories' own (both languages, from the directory)
plus the ``voice.category_keywords`` setting, which adds words that callers
say but nobody writes (or that a recogniser tends to hear). The confidence
is the core classifier's: it decides whether the IVR asks for keypad
confirmation or offers the keypad menu instead.
"""

from __future__ import annotations

from dataclasses import replace

from callcenter.domain.routing import Category, Classification, classify
from callcenter.runtime import Runtime


def voice_categories(rt: Runtime) -> list[Category]:
    extra = rt.settings.voice.category_keywords
    out: list[Category] = []
    for category in rt.directory.categories:
        words = extra.get(category.code, {})
        out.append(
            replace(
                category,
                keywords_zh=(*category.keywords_zh, *words.get("zh-CN", ())),
                keywords_en=(*category.keywords_en, *words.get("en", ())),
            )
        )
    return out


def recognise_category(rt: Runtime, transcript: str) -> Classification:
    return classify(transcript, voice_categories(rt))


def category_phrases(rt: Runtime, locale: str) -> list[str]:
    """Every keyword of one language: the phrase list for grammar-mode recognisers."""
    phrases: list[str] = []
    for category in voice_categories(rt):
        words = category.keywords_zh if locale.startswith("zh") else category.keywords_en
        phrases.extend(w.lower() for w in words if w)
    return sorted(set(phrases))
