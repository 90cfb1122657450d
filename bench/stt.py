"""Speech recognition benchmark on held-out callers: words, categories, places, speed.

The test set (``bench/data/heldout_*.tsv``, 42 complaints per language) was
written as citizens say them, with addresses and numbers, and nothing was
built from it: not the recognisers' models, not the Whisper prompt (the
city's street and category names), not the category keywords. Each sentence
is spoken by the IVR's fixed espeak-ng voices (``en-us``; ``cmn-latn-pinyin``
from pinyin), brought to telephone quality (8 kHz, G.711 µ-law and back, as
the SIP adapter receives it) and fed in 20 ms pieces through the same
streaming interface the IVR uses. Human speech: the recordings of Debian's
``pocketsphinx-testdata`` (LibriVox, "go forward"), word error rate only.

Printed per recogniser and language: WER (en) or CER (zh, per character,
punctuation left out, numerals as words), category accuracy (the IVR's
classifier on the transcript, keypad menu below its confidence threshold
counted as wrong), place accuracy over the sentences that name a place
(the gazetteer's answer leads to the same street office), and how many
places it invented for sentences that name none, real-time factor (recognition time / audio time).
``typed`` is the classifier on the sentence itself: the ceiling. Baseline in
the same run: pocketsphinx's stock en-US model and language model.
Targets: category >= 80 % per language, real-time factor < 0.3 on 2 cores.

    .venv/bin/python bench/stt.py [--whisper-model DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rapidfuzz.distance import Levenshtein

from callcenter.demo import CATEGORIES, DISTRICTS, city
from callcenter.domain.routing import Category, Department, classify
from ivr.audio import Upsampler, g711_to_s16, read_wav, s16_to_ulaw
from ivr.categories import sounds_like
from ivr.models import join_packaged_whisper_base
from ivr.places import Gazetteer
from ivr.spoken import numbers_to_words
from ivr.stt import (
    PocketsphinxRecognizer,
    RecognitionStream,
    Recognizer,
    Transcript,
    WhisperRecognizer,
    whisper_prompt,
)
from ivr.tts import speak_to_wav

HERE = Path(__file__).resolve().parent
HUMAN = Path("/usr/share/pocketsphinx/test/data")
SPEED = {"en": 160, "zh-CN": 130}
MIN_CATEGORY_CONFIDENCE = 0.5  # the IVR's default voice.min_category_confidence


@dataclass
class Item:
    category: str | None
    place: str | None
    text: str
    pcm: bytes


def load(locale: str) -> list[tuple[str, str | None, str]]:
    name = "heldout_en.tsv" if locale == "en" else "heldout_zh.tsv"
    rows = []
    for line in (HERE / "data" / name).read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        category, place, text = line.split("\t")
        rows.append((category, None if place == "-" else place, text))
    return rows


def telephone(text: str, locale: str, folder: Path, index: int) -> bytes:
    path = folder / f"{locale}-{index}.wav"
    speak_to_wav(text, locale, path, speed=SPEED[locale])
    pcm, rate = read_wav(path)
    assert rate == 8000
    return g711_to_s16(s16_to_ulaw(pcm), "ulaw")


def human_items() -> list[tuple[str, bytes]]:
    """(reference, 8 kHz G.711 audio) for Debian's recordings of people."""
    import subprocess

    out: list[tuple[str, bytes]] = []
    if not HUMAN.is_dir():
        return out

    def narrow(args: list[str]) -> bytes:
        pcm = subprocess.run(
            ["sox", *args, "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-"],
            capture_output=True,
            check=True,
        ).stdout
        return g711_to_s16(s16_to_ulaw(pcm), "ulaw")

    raw16 = ["-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1"]
    out.append(("go forward ten meters", narrow([*raw16, str(HUMAN / "goforward.raw")])))
    for line in (HUMAN / "librivox" / "transcription").read_text().splitlines():
        match = re.match(r"\s*(.*?)\s*\((\S+)\)\s*$", line)
        if match:
            wav = HUMAN / "librivox" / f"{match.group(2)}.wav"
            if wav.is_file():
                out.append((match.group(1).lower(), narrow([str(wav)])))
    return out


class StockSphinx(Recognizer):
    """pocketsphinx exactly as its wheel ships it: general en-US LM and dictionary."""

    backend = "baseline"
    language = "en"

    def __init__(self) -> None:
        import pocketsphinx

        self.decoder = pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")
        self.cmn = self.decoder.get_cmn()

    def stream(self, grammar: str | None = None) -> RecognitionStream:
        decoder = self.decoder
        upsampler = Upsampler()
        decoder.set_cmn(self.cmn)
        decoder.start_utt()

        class Stream(RecognitionStream):
            def feed(self, pcm: bytes) -> str | None:
                decoder.process_raw(upsampler.feed(pcm), False, False)
                return None

            def finish(self) -> Transcript:
                decoder.end_utt()
                hyp = decoder.hyp()
                return Transcript(hyp.hypstr if hyp else "", None)

        return Stream()


def recognise(recognizer: Recognizer, pcm: bytes, grammar: str | None) -> tuple[str, float]:
    began = time.perf_counter()
    stream = recognizer.stream(grammar)
    for offset in range(0, len(pcm), 320):
        stream.feed(pcm[offset : offset + 320])
    text = stream.finish().text
    return text, time.perf_counter() - began


def normalise(text: str, locale: str) -> list[str]:
    """Words (en) or characters (zh) to compare: numerals as words, no punctuation."""
    text = numbers_to_words(text, locale).lower()
    if locale == "zh-CN":
        return [ch for ch in text if "\u4e00" <= ch <= "\u9fff" or ch.isalnum()]
    return re.findall(r"[a-z']+", text.replace("-", " "))


def error_rate(refs: list[list[str]], hyps: list[list[str]]) -> float:
    edits = sum(Levenshtein.distance(r, h) for r, h in zip(refs, hyps, strict=True))
    return edits / max(1, sum(len(r) for r in refs))


def city_parts() -> tuple[list[Category], Gazetteer, dict[str, int]]:
    categories = [
        Category(
            i,
            c["code"],
            c["name_zh"],
            c["name_en"],
            c["department_kind"],
            keywords_zh=tuple(c["keywords_zh"]),
            keywords_en=tuple(c["keywords_en"]),
        )
        for i, c in enumerate(CATEGORIES)
    ]
    departments = [
        Department(
            i, d["code"], d["kind"], d["name_zh"], d["name_en"], None, tuple(d.get("keywords", []))
        )
        for i, d in enumerate(city()["departments"])
    ]
    # a place is right when it routes to the same street office (or district)
    raw = city()["departments"]
    ids = {d["code"]: i for i, d in enumerate(raw)}
    street = {i: ids[d["parent"]] if d["kind"] == "community" else i for i, d in enumerate(raw)}
    by_name: dict[str, int] = {}
    for dept in departments:
        for name in (dept.name_zh, dept.name_en, *dept.keywords):
            by_name.setdefault(name, street[dept.id])
    return categories, StreetGazetteer(departments, street), by_name


class StreetGazetteer(Gazetteer):
    """The IVR's gazetteer, answering with the street office a place routes to."""

    def __init__(self, departments: list[Department], street: dict[int, int]) -> None:
        super().__init__(departments)
        self.street = street

    def find(self, transcript: str) -> Any:
        place = super().find(transcript)
        return replace(place, department_id=self.street[place.department_id]) if place else None


def category_of(text: str, categories: list[Category]) -> str | None:
    found = classify(text, categories)
    if not found.category_code:
        found = sounds_like(text, categories)
    return found.category_code if found.confidence >= MIN_CATEGORY_CONFIDENCE else None


def score(
    name: str,
    locale: str,
    items: list[Item],
    transcribe: Callable[[Item], tuple[str, float]],
    parts: tuple[list[Category], Gazetteer, dict[str, int]],
) -> str:
    categories, gazetteer, by_name = parts
    refs, hyps, busy, audio, right_cat, right_place, invented = [], [], 0.0, 0.0, 0, 0, 0
    for item in items:
        text, seconds = transcribe(item)
        busy += seconds
        audio += len(item.pcm) / 2 / 8000
        refs.append(normalise(item.text, locale))
        hyps.append(normalise(text, locale))
        right_cat += category_of(text, categories) == item.category
        place = gazetteer.find(text)
        if item.place:
            right_place += place is not None and place.department_id == by_name[item.place]
        else:
            invented += place is not None
    n = len(items)
    named = sum(1 for item in items if item.place)
    measure = "WER" if locale == "en" else "CER"
    rtf = f"{busy / audio:5.3f}" if busy else "    -"
    return (
        f"{name:28} {locale:5} {n:3d}   {measure} {error_rate(refs, hyps) * 100:5.1f} %   "
        f"category {right_cat * 100 / n:5.1f} %   "
        f"place {right_place * 100 / named:5.1f} % of {named} named, {invented} invented   "
        f"RTF {rtf}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--whisper-model", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stt-bench-"))
    model = args.whisper_model or join_packaged_whisper_base(folder / "whisper-base")
    parts = city_parts()
    categories = parts[0]
    streets = [k for *_, ss in DISTRICTS for s in ss for k in s[3]]
    sets = {
        locale: [
            Item(c, p, t, telephone(t, locale, folder, i))
            for i, (c, p, t) in enumerate(load(locale))
        ]
        for locale in ("en", "zh-CN")
    }
    print(
        f"held-out complaints in telephone quality (8 kHz G.711, espeak-ng en-us / "
        f"cmn-latn-pinyin), 20 ms streaming pieces; {os.cpu_count()} cores, "
        f"{args.threads} threads for Whisper; load average {os.getloadavg()[0]:.1f}"
    )
    header = f"{'recogniser':28} {'lang':5} {'n':>3}"
    print(header)

    def typed(item: Item) -> tuple[str, float]:
        return item.text, 0.0

    def using(recognizer: Recognizer, grammar: str | None = None) -> Any:
        return lambda item: recognise(recognizer, item.pcm, grammar)

    for locale in ("en", "zh-CN"):
        print(score("typed (no recogniser)", locale, sets[locale], typed, parts))
    stock = StockSphinx()
    print(score("baseline: pocketsphinx stock", "en", sets["en"], using(stock), parts))
    print(f"{'baseline: pocketsphinx stock':28} zh-CN  no Chinese model (en-US only)")
    phrases = sorted({w.lower() for c in CATEGORIES for w in c["keywords_en"]})
    domain = PocketsphinxRecognizer("en", phrases, work_dir=folder / "ps")
    print(score("pocketsphinx domain LM", "en", sets["en"], using(domain, "categories"), parts))
    whisper: dict[str, WhisperRecognizer] = {}
    for locale in ("en", "zh-CN"):
        zh = locale == "zh-CN"
        places = [s for s in streets if (not s.isascii()) == zh and s[-1] in "路道巷Dd"]
        places = places or [s for s in streets if (not s.isascii()) == zh]
        prompt = whisper_prompt(locale, places, [c.name(locale) for c in categories])
        whisper[locale] = WhisperRecognizer(locale, model, prompt=prompt, threads=args.threads)
        recognise(whisper[locale], sets[locale][0].pcm, None)  # load and warm up
        label = "whisper base int8"
        print(score(label, locale, sets[locale], using(whisper[locale]), parts))
    human = human_items()
    if human:
        print(f"human recordings (Debian pocketsphinx-testdata), {len(human)} utterances, WER:")
        for label, recognizer in (
            ("baseline: pocketsphinx stock", stock),
            ("pocketsphinx domain LM", domain),
            ("whisper base int8", whisper["en"]),
        ):
            refs, hyps, busy, audio = [], [], 0.0, 0.0
            for reference, pcm in human:
                text, seconds = recognise(recognizer, pcm, None)
                refs.append(normalise(reference, "en"))
                hyps.append(normalise(text, "en"))
                busy += seconds
                audio += len(pcm) / 2 / 8000
            print(
                f"{label:28} en    {len(human):3d}   WER {error_rate(refs, hyps) * 100:5.1f} %   "
                f"RTF {busy / audio:5.3f}"
            )
    else:
        print("human recordings: not measured (install Debian's pocketsphinx-testdata)")
    print("targets: category >= 80.0 % per language; real-time factor < 0.300 on 2 cores")


if __name__ == "__main__":
    main()
