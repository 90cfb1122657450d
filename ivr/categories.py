"""Which category a caller's words name, and how sure we are.

The keywords are the categories' own (both languages, from the directory)
plus the ``voice.category_keywords`` setting, which adds words that callers
say but nobody writes (or that a recogniser tends to hear). The confidence
is the core classifier's: it decides whether the IVR asks for keypad
confirmation or offers the keypad menu instead.
"""

from __future__ import annotations

from dataclasses import replace

from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz

from callcenter.domain.routing import Category, Classification, classify, infer_type
from callcenter.runtime import Runtime

SOUNDS_LIKE = 85.0  # rapidfuzz ratio for a keyword heard with a recogniser's error


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
    """The core's classifier on the words; failing that, keywords that sound alike.

    A recogniser writes 鲁灯 for 路灯 or "pot hole" for "pothole": Chinese
    keywords are compared by toneless pinyin, English ones by letters, over
    runs of the transcript as long as the keyword (rapidfuzz).
    """
    categories = voice_categories(rt)
    found = classify(transcript, categories)
    if found.category_code or not transcript.strip():
        return found
    return sounds_like(transcript, categories)


def _pinyin(text: str) -> str:
    return "".join(s for s in lazy_pinyin(text, style=Style.NORMAL, errors="ignore") if s.isalpha())


def _heard(keyword: str, transcript: str, syllables: list[str], words: list[str]) -> bool:
    if any("\u4e00" <= ch <= "\u9fff" for ch in keyword):
        key = _pinyin(keyword)
        size = len(lazy_pinyin(keyword))
        runs = ("".join(syllables[i : i + size]) for i in range(len(syllables) - size + 1))
    else:
        key = keyword.lower().replace(" ", "")
        size = len(keyword.split())
        runs = ("".join(words[i : i + n]) for n in (size, size + 1) for i in range(len(words)))
    return len(key) >= 5 and any(fuzz.ratio(key, run) >= SOUNDS_LIKE for run in runs)


def sounds_like(transcript: str, categories: list[Category]) -> Classification:
    syllables = [
        s for s in lazy_pinyin(transcript, style=Style.NORMAL, errors="ignore") if s.isalpha()
    ]
    words = [w for w in "".join(c if c.isalnum() else " " for c in transcript.lower()).split()]
    scored: list[tuple[int, Category, tuple[str, ...]]] = []
    for category in categories:
        found = tuple(
            kw
            for kw in (*category.keywords_zh, *category.keywords_en)
            if kw and _heard(kw, transcript, syllables, words)
        )
        if found:
            scored.append((len(found), category, found))
    if not scored:
        return Classification(None, 0.0, ticket_type=infer_type(transcript, "help"))
    scored.sort(key=lambda s: -s[0])
    best_score, best, found = scored[0]
    second = scored[1][0] if len(scored) > 1 else 0
    # a keyword that only sounds alike counts less than one written as it is
    confidence = round(min(1.0, 0.4 + 0.2 * best_score) * best_score / (best_score + second), 3)
    return Classification(
        best.code,
        confidence,
        found,
        runner_up=scored[1][1].code if len(scored) > 1 else None,
        ticket_type=infer_type(transcript, best.default_type),
    )


def category_phrases(rt: Runtime, locale: str) -> list[str]:
    """Every keyword of one language: the phrase list for grammar-mode recognisers."""
    phrases: list[str] = []
    for category in voice_categories(rt):
        words = category.keywords_zh if locale.startswith("zh") else category.keywords_en
        phrases.extend(w.lower() for w in words if w)
    return sorted(set(phrases))
