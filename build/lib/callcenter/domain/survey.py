"""Reading a citizen's answer to the callback survey (回访), whatever they typed.

The survey asks for a score from 1 to 5 (or 满意 / 基本满意 / 不满意) and whether
the problem was solved. Replies come as ``5``, ``５``, ``4 已解决``,
``不满意，没解决``, ``3 yes``, ``Very satisfied, solved``, with text around them.

- Full-width characters are folded (NFKC) first.
- A score is one standalone digit 1-5, or a satisfaction word: 非常满意/满意 5,
  基本满意/比较满意 4, 一般 3, 不太满意 2, 不满意/很不满意 1, and the English
  equivalents. Digits that belong to longer numbers (ticket or phone numbers)
  do not count.
- Solved is 已解决/解决了/yes...; not solved is 未解决/没解决/no...; negative
  forms are matched first, so 没解决 is not read as 解决.
- A ticket number (``20261127-0042``) in the reply names the survey it answers.

:func:`parse_reply` returns an :class:`Answer`, :data:`AMBIGUOUS` when the reply
looks like an answer but contradicts itself (two different scores, satisfied
and not), or ``None`` when it is not an answer at all.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

LOW_SCORE = 2  # this or lower reopens the ticket


@dataclass(frozen=True)
class Answer:
    score: int | None
    solved: bool | None
    ticket_number: str | None = None

    @property
    def unhappy(self) -> bool:
        return (self.score is not None and self.score <= LOW_SCORE) or self.solved is False


class _Ambiguous:
    def __repr__(self) -> str:
        return "AMBIGUOUS"


AMBIGUOUS = _Ambiguous()

# longest first: "很不满意" before "不满意" before "满意"
SCORE_WORDS: list[tuple[str, int]] = sorted(
    [
        ("非常满意", 5),
        ("很满意", 5),
        ("满意", 5),
        ("基本满意", 4),
        ("比较满意", 4),
        ("一般", 3),
        ("不太满意", 2),
        ("不满意", 1),
        ("很不满意", 1),
        ("非常不满意", 1),
        ("very satisfied", 5),
        ("extremely satisfied", 5),
        ("satisfied", 5),
        ("excellent", 5),
        ("good", 4),
        ("mostly satisfied", 4),
        ("fairly satisfied", 4),
        ("neutral", 3),
        ("average", 3),
        ("so so", 3),
        ("so-so", 3),
        ("okay", 3),
        ("ok", 3),
        ("poor", 2),
        ("not very satisfied", 2),
        ("dissatisfied", 1),
        ("unsatisfied", 1),
        ("not satisfied", 1),
        ("very dissatisfied", 1),
        ("terrible", 1),
        ("bad", 1),
    ],
    key=lambda pair: -len(pair[0]),
)
NOT_SOLVED = [
    "未解决",
    "没解决",
    "没有解决",
    "未能解决",
    "还没解决",
    "没处理",
    "未处理",
    "not solved",
    "unsolved",
    "not resolved",
    "unresolved",
    "not fixed",
    "no",
]
SOLVED = [
    "已解决",
    "解决了",
    "已经解决",
    "解决",
    "已处理",
    "处理好了",
    "solved",
    "resolved",
    "fixed",
    "yes",
]

_TICKET = re.compile(r"(?<!\d)(\d{8}-\d{4,})(?!\d)")
_DIGIT = re.compile(r"(?<![\d\-])(\d+)(?![\d\-])")
_LATIN = re.compile(r"[a-z]")


def _take(text: str, words: list[str]) -> tuple[list[str], str]:
    """Find words (longest first), blanking each match so shorter words do not match it."""
    found: list[str] = []
    for word in sorted(words, key=len, reverse=True):
        if _LATIN.search(word):
            pattern = re.compile(rf"\b{re.escape(word)}\b")
        else:
            pattern = re.compile(re.escape(word))
        while (match := pattern.search(text)) is not None:
            found.append(word)
            text = text[: match.start()] + " " * len(word) + text[match.end() :]
    return found, text


def parse_reply(raw: str) -> Answer | _Ambiguous | None:
    text = unicodedata.normalize("NFKC", raw).lower()
    ticket = _TICKET.search(text)
    ticket_number = ticket.group(1) if ticket else None
    if ticket:
        text = text.replace(ticket.group(1), " ")

    not_solved, text = _take(text, NOT_SOLVED)
    solved_words, text = _take(text, SOLVED)
    score_words, text = _take(text, [w for w, _ in SCORE_WORDS])
    word_scores = {dict(SCORE_WORDS)[w] for w in score_words}
    digits = [int(d) for d in _DIGIT.findall(text)]
    digit_scores = {d for d in digits if 1 <= d <= 5}
    out_of_range = [d for d in digits if not 1 <= d <= 5]

    scores = digit_scores | word_scores
    solved: bool | None = None
    if not_solved and solved_words:
        return AMBIGUOUS
    if not_solved:
        solved = False
    elif solved_words:
        solved = True

    if not scores and solved is None:
        # "0" or "9" alone looks like an attempt to answer; anything else is not an answer
        return AMBIGUOUS if out_of_range and len(text.strip()) <= 3 else None
    if len(digit_scores) > 1 or (
        digit_scores and word_scores and not _agrees(digit_scores, word_scores)
    ):
        return AMBIGUOUS
    if len(word_scores) > 1 and max(word_scores) - min(word_scores) > 1:
        return AMBIGUOUS
    score = min(digit_scores) if digit_scores else (min(word_scores) if word_scores else None)
    return Answer(score, solved, ticket_number)


def _agrees(digits: set[int], words: set[int]) -> bool:
    """ "5 满意" agrees; "1 满意" does not."""
    return all(abs(d - w) <= 1 for d in digits for w in words)
