"""Speech recognition benchmark: word error rate and real-time factor per backend.

Callers' utterances are spoken by espeak-ng, brought to telephone quality
(8 kHz, G.711 µ-law and back, as the SIP adapter receives them) and
transcribed through the same streaming interface the IVR uses, fed in 20 ms
pieces. Real-time factor = recognition time / audio length (below 0.2 is the
target: a caller never waits for the recogniser).

Backends measured in the same run:

- ``baseline``: pocketsphinx's stock en-US model with its general language
  model (what the wheel ships, no domain knowledge);
- ``pocketsphinx``: the same acoustic model with the hotline's domain LM
  built from the category vocabulary (what the IVR uses);
- ``pocketsphinx-digits``: the digit grammar, on spoken ticket numbers;
- ``vosk``: only when ``--vosk-model DIR`` names a model (``--vosk-language``,
  default zh-CN; utterances are then spoken in that language).

    .venv/bin/python bench/stt.py [--vosk-model DIR --vosk-language zh-CN]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.demo import CATEGORIES
from ivr.audio import g711_to_s16, read_wav, s16_to_ulaw
from ivr.stt import (
    DIGIT_WORDS_EN,
    PocketsphinxRecognizer,
    RecognitionStream,
    Recognizer,
    Transcript,
    VoskRecognizer,
    word_error_rate,
)
from ivr.tts import speak_to_wav

ENGLISH = [
    "I want to report a broken street light on Main Street",
    "there is a pothole near my house",
    "the garbage was not collected",
    "there is no water in my building",
    "the street light is broken",
    "loud music from my neighbour every night",
    "there is a gas leak",
    "a burst pipe in my street",
    "the bus stop is broken",
    "power cut near my house",
    "a tree branch fell on the road",
    "i want to speak to an agent",
]
CHINESE = [
    "我家门口的路灯坏了",
    "小区停水了",
    "楼下太吵了",
    "路面有个大坑",
    "垃圾没人清运",
    "我要找人工服务",
]
NUMBERS = ["2026112700" + f"{i:02d}" for i in (1, 17, 42, 93)]


def telephone(text: str, locale: str, folder: Path, index: int) -> bytes:
    path = folder / f"u{index}.wav"
    speak_to_wav(text, locale, path)
    pcm, rate = read_wav(path)
    assert rate == 8000
    return g711_to_s16(s16_to_ulaw(pcm), "ulaw")


class StockSphinx(Recognizer):
    """pocketsphinx exactly as its wheel ships it: general en-US LM and dictionary."""

    backend = "baseline"
    language = "en"

    def __init__(self) -> None:
        import pocketsphinx

        self.decoder = pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")

    def stream(self, grammar: str | None = None) -> RecognitionStream:
        from ivr.audio import Upsampler

        decoder = self.decoder
        upsampler = Upsampler()
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


def measure(
    name: str, recognizer: Recognizer, items: list[tuple[str, bytes]], grammar: str | None
) -> dict[str, Any]:
    errors, audio_s, busy_s = [], 0.0, 0.0
    for reference, pcm in items:
        began = time.perf_counter()
        stream = recognizer.stream(grammar)
        for offset in range(0, len(pcm), 320):
            stream.feed(pcm[offset : offset + 320])
        result = stream.finish()
        busy_s += time.perf_counter() - began
        audio_s += len(pcm) / 2 / 8000
        errors.append(word_error_rate(reference, result.text))
    return {
        "name": name,
        "n": len(items),
        "wer": statistics.mean(errors),
        "rtf": busy_s / audio_s,
        "audio_s": audio_s,
    }


def line(row: dict[str, Any]) -> str:
    return (
        f"{row['name']:22} {row['n']:3d} utterances {row['audio_s']:6.1f} s audio   "
        f"WER {row['wer'] * 100:5.1f} %   real-time factor {row['rtf']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vosk-model", type=Path)
    parser.add_argument("--vosk-language", default="zh-CN")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stt-bench-"))
    english = [(t.lower(), telephone(t, "en", folder, i)) for i, t in enumerate(ENGLISH)]
    digits = [
        (" ".join(DIGIT_WORDS_EN[int(d)] for d in n), telephone(" ".join(n), "en", folder, 100 + i))
        for i, n in enumerate(NUMBERS)
    ]
    phrases = sorted({w.lower() for c in CATEGORIES for w in c["keywords_en"]})
    print("speech recognition, telephone quality (8 kHz, G.711), 20 ms streaming pieces")
    print(line(measure("baseline (stock LM)", StockSphinx(), english, None)))
    domain = PocketsphinxRecognizer("en", phrases, work_dir=folder / "ps")
    print(line(measure("pocketsphinx (domain)", domain, english, "categories")))
    print(line(measure("pocketsphinx digits", domain, digits, "digits")))
    print(line(measure("baseline digits", StockSphinx(), digits, None)))
    if args.vosk_model:
        locale = args.vosk_language
        texts = CHINESE if locale == "zh-CN" else ENGLISH
        items = [(t, telephone(t, locale, folder, 200 + i)) for i, t in enumerate(texts)]
        if locale == "zh-CN":  # Chinese WER: per character
            items = [(" ".join(t), pcm) for t, pcm in items]
        vosk = VoskRecognizer(locale, args.vosk_model)
        row = measure(f"vosk ({locale})", vosk, items, None)
        print(line(row))
    else:
        print("vosk                   not measured: no model (pass --vosk-model DIR)")
    print("target: real-time factor below 0.200")


if __name__ == "__main__":
    main()
