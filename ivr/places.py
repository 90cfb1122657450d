"""The place a caller names, found in the city's own gazetteer, as a typed address would be.

The gazetteer is the directory's areas (districts, streets, communities):
their names in both languages and their address keywords (road names,
landmarks). A recogniser rarely writes a street name exactly — a Chinese
transcript may have a homophone (港弯路 for 港湾路) or traditional
characters, an English one a near miss ("Harbor Rd") — so names are matched
fuzzily (rapidfuzz): Chinese by their toneless pinyin, so that what sounds
the same matches; English by letters, over windows of words as long as the
name. Generic words (路, 社区, Road, Community...) alone never match.

The place found gives the ticket its address: the name as the caller said it
in their language, with the routing keyword of that area, so routing finds
the same street as for a typed address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz

from callcenter.domain.routing import Department

GENERIC_ZH = ("街道", "社区", "大道", "路", "街", "巷", "区", "市", "村", "小区")
GENERIC_EN = (
    *("road", "rd", "street", "st", "avenue", "ave", "lane"),
    *("community", "subdistrict", "district", "city"),
)
_LATIN = re.compile(r"[a-z0-9']+")
_HAN = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Place:
    """A place found in a transcript."""

    department_id: int
    name: str  # as the gazetteer writes it, in the transcript's language
    keyword: str  # the routing keyword of that area
    heard: str  # the words of the transcript that matched
    score: float  # 0-100

    @property
    def address(self) -> str:
        """What the ticket's address field gets: routed by its keyword, read by people."""
        return self.name if self.keyword in self.name else f"{self.name} ({self.keyword})"


@dataclass(frozen=True)
class _Entry:
    department_id: int
    name: str
    keyword: str
    chinese: bool
    key: tuple[str, ...]  # of the name without its generic suffix: pinyin syllables, or words
    full: tuple[str, ...]  # of the whole name, to choose between names of the same core
    core: str  # the name without its generic suffix
    rank: int  # smaller areas first when two match as well: community, street, district


@lru_cache(maxsize=4096)
def _syllables(text: str) -> tuple[str, ...]:
    return tuple(
        s for s in lazy_pinyin(text, style=Style.NORMAL, errors="ignore") if s and s.isalpha()
    )


def _strip(name: str, generic: tuple[str, ...], chinese: bool) -> str:
    if chinese:
        for suffix in sorted(generic, key=len, reverse=True):
            if name.endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
        return name
    words = [w for w in _LATIN.findall(name.lower()) if w not in generic]
    return " ".join(words)


class Gazetteer:
    """Every area's names, ready to be matched against transcripts."""

    def __init__(self, departments: Iterable[Department], *, threshold: float = 80.0) -> None:
        self.threshold = threshold  # for names of six letters or more; shorter ones need 90
        self.entries: list[_Entry] = []
        for dept in departments:
            if not dept.is_area or dept.kind == "city":
                continue
            keyword = next((k for k in dept.keywords if _HAN.search(k)), dept.name_zh)
            names = {dept.name_zh, dept.name_en, *dept.keywords}
            for name in sorted(n for n in names if n):
                chinese = bool(_HAN.search(name))
                core = _strip(name, GENERIC_ZH if chinese else GENERIC_EN, chinese)
                key = _syllables(core) if chinese else tuple(core.split())
                if not key or (chinese and len(key) < 2):
                    continue
                full = _syllables(name) if chinese else tuple(_LATIN.findall(name.lower()))
                route = name if name in dept.keywords else keyword
                rank = {"community": 0, "street": 1}.get(dept.kind, 2)
                self.entries.append(_Entry(dept.id, name, route, chinese, key, full, core, rank))
        # longest names first: "新城大道" before "新城"
        self.entries.sort(key=lambda e: -len(e.key))

    def find(self, transcript: str) -> Place | None:
        """The best-matching place named in ``transcript``, or None below the threshold."""
        text = transcript.strip()
        if not text:
            return None
        best: tuple[float, float, int] | None = None
        found: Place | None = None
        han = _syllables(text) if _HAN.search(text) else ()
        words = tuple(_LATIN.findall(text.lower()))
        for entry in self.entries:
            tokens, sep = (han, "") if entry.chinese else (words, " ")
            score, heard = _window(entry.key, tokens, sep=sep, exact_length=entry.chinese)
            if entry.chinese:  # two syllables sound like too many words: only the same
                needed = 100.0 if len(entry.key) < 3 else 85.0
            else:
                needed = self.threshold if len(sep.join(entry.key)) >= 6 else 90.0
            if score < needed:
                continue
            whole, _ = _window(entry.full, tokens, sep=sep, exact_length=entry.chinese)
            order = (score, whole, -entry.rank)
            if best is None or order > best:
                best = order
                found = Place(entry.department_id, entry.name, entry.keyword, heard, score)
        return found


def _window(
    key: tuple[str, ...], tokens: tuple[str, ...], *, sep: str, exact_length: bool = False
) -> tuple[float, str]:
    """The best ratio of ``key`` against runs of tokens about as long as it (as long as
    it: syllables, where a recogniser keeps the count and changes the sounds)."""
    if not tokens:
        return 0.0, ""
    target = sep.join(key)
    best, heard = 0.0, ""
    sizes = {len(key)} if exact_length else {max(1, len(key) - 1), len(key), len(key) + 1}
    for size in sizes:
        for start in range(0, max(1, len(tokens) - size + 1)):
            run = sep.join(tokens[start : start + size])
            score = fuzz.ratio(target, run)
            if score > best:
                best, heard = score, run
    return best, heard
