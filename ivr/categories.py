"""Which category a caller's words name, and how sure we are.

The keywords are the categories' own (both languages, from the directory)
plus the ``voice.category_keywords`` setting, which adds words that callers
say but nobody writes (or that a recogniser tends to hear). The confidence
is the core classifier's: it decides whether the IVR asks for keypad
confirmation or offers the keypad menu instead.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from pypinyin.contrib.tone_convert import to_initials
from rapidfuzz import fuzz

from callcenter.domain.routing import Category, Classification, classify, infer_type
from callcenter.runtime import Runtime

SOUNDS_LIKE = 85.0  # rapidfuzz ratio for an English keyword heard with a recogniser's error
# mean likeness of a Chinese keyword's syllables: one the same and one with the same final
SYLLABLES_ALIKE = 0.8


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

    A recogniser writes 鲁灯 or 路更 for 路灯, or "pot hole" for "pothole":
    Chinese keywords are compared syllable by syllable (toneless pinyin: the
    same syllable, or the same final and initial), English ones by letters
    (rapidfuzz), over runs of the transcript as long as the keyword.
    """
    categories = voice_categories(rt)
    found = classify(transcript, categories)
    if found.category_code or not transcript.strip():
        return found
    return sounds_like(transcript, categories)


@lru_cache(maxsize=8192)
def _parts(syllable: str) -> tuple[str, str]:
    """A toneless syllable's initial and final (``deng`` -> ``d``, ``eng``)."""
    initial = to_initials(syllable, strict=False) or ""
    return initial, syllable[len(initial) :]


APICAL = ("z", "c", "s", "zh", "ch", "sh", "r")  # their "i" is no vowel of its own


def _syllable_likeness(a: str, b: str) -> float:
    """1 for the same syllable; else the final counts 0.6 and the initial 0.4 (the bare
    "i" of zi, ci, shi... counts only with its initial)."""
    if a == b:
        return 1.0
    (ia, fa), (ib, fb) = _parts(a), _parts(b)
    same_final = fa == fb and not (fa == "i" and (ia in APICAL or ib in APICAL))
    return 0.4 * (ia == ib) + 0.6 * same_final


def _heard(keyword: str, syllables: list[str], words: list[str]) -> bool:
    if any("\u4e00" <= ch <= "\u9fff" for ch in keyword):
        sounds = [s for s in lazy_pinyin(keyword, style=Style.NORMAL) if s.isalpha()]
        needed = SYLLABLES_ALIKE if len(sounds) < 3 else SYLLABLES_ALIKE - 0.05
        for i in range(len(syllables) - len(sounds) + 1):
            run = syllables[i : i + len(sounds)]
            alike = sum(_syllable_likeness(a, b) for a, b in zip(sounds, run, strict=True))
            if alike / len(sounds) >= needed:
                return True
        return False
    parts = keyword.lower().split()
    if _inflected(parts, words):
        return True
    key = "".join(parts)
    size = len(parts)
    runs = ("".join(words[i : i + n]) for n in (size, size + 1) for i in range(len(words)))
    return len(key) >= 5 and any(fuzz.ratio(key, run) >= SOUNDS_LIKE for run in runs)


ENDINGS = ("s", "es", "ed", "d", "ing", "er", "ers", "y")


def _inflected(parts: list[str], words: list[str]) -> bool:
    """The keyword with another ending on its last word: "leaking", "flickering lights"."""
    size = len(parts)
    for i in range(len(words) - size + 1):
        run = words[i : i + size]
        if run[:-1] != parts[:-1]:
            continue
        last, word = parts[-1], run[-1]
        stem = last[:-1] if last.endswith("e") else last
        if word.startswith(stem) and word[len(stem) :] in (*ENDINGS, "e"):
            return True
    return False


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
            if kw and _heard(kw, syllables, words)
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
