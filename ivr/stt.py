"""Speech-to-text behind one streaming interface, with three offline backends.

A :class:`Recognizer` opens a :class:`RecognitionStream`; the transport feeds
it 8 kHz 16-bit audio as it arrives (partial results come back while the
caller speaks) and calls :meth:`RecognitionStream.finish` for the transcript
and its confidence. Both backends are CPU-bound C libraries: streams are fed
from the call's own thread, never on the event loop.

- ``pocketsphinx``: works out of the box with the en-US model its PyPI wheel
  ships. At start-up it builds a small language model and dictionary from the
  category vocabulary with pocketsphinx's own LM tool (``pocketsphinx.lm``),
  plus a JSGF digit grammar for numbers. Telephone audio is upsampled to the
  model's 16 kHz.
- ``vosk``: loads a Kaldi model from a configured directory (for Chinese, e.g.
  vosk-model-small-cn; see docs/ivr.md). Streaming with partial results, and
  an optional grammar (phrase list) mode.
- ``whisper``: faster-whisper (CTranslate2) with a Whisper model directory
  (``voice.whisper_model``), multilingual, int8 on the CPU. The city's street
  names and the categories' words are its initial prompt. Whisper hears a
  whole utterance at once: the stream collects the turn (ended by the
  transport's voice-activity detector) and :meth:`finish` transcribes it.

The backend is chosen per language in ``voice.recognizers`` (a list: the
first that loads), and per node in ``voice.node_recognizers``; a language
with no usable recogniser is reported by :meth:`Recognizers.available` so the
flow falls back to keypad menus.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import queue
import re
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ivr.audio import Upsampler

log = logging.getLogger(__name__)

DIGIT_WORDS_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class RecognizerUnavailable(RuntimeError):
    """The backend cannot run for this language (no package, no model)."""


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float | None
    partials: int = 0  # how many partial results came while audio was fed


class RecognitionStream(ABC):
    @abstractmethod
    def feed(self, pcm: bytes) -> str | None:
        """Add 8 kHz 16-bit mono audio; returns the partial transcript so far, if any."""

    @abstractmethod
    def finish(self) -> Transcript:
        """End of speech: the final transcript."""


class Recognizer(ABC):
    backend: str
    language: str

    @abstractmethod
    def stream(self, grammar: str | None = None) -> RecognitionStream:
        """A new utterance. ``grammar``: None (free speech), "digits" or "categories"."""

    def transcribe(self, pcm: bytes, grammar: str | None = None, chunk: int = 3200) -> Transcript:
        stream = self.stream(grammar)
        for start in range(0, len(pcm), chunk):
            stream.feed(pcm[start : start + chunk])
        return stream.finish()


# --- pocketsphinx ------------------------------------------------------------------------

_WORD = re.compile(r"[a-z']+")


def domain_corpus(phrases: Iterable[str]) -> str:
    """Sentences a caller might say about each phrase, for the domain language model."""
    frames = (
        "{p}",
        "i want to report a {p}",
        "i want to report {p}",
        "there is a {p}",
        "the {p} is broken",
        "a broken {p} on main street",
        "i want to report a broken {p} on main street",
        "please send someone about the {p}",
        "there is {p} in my street",
        "{p} near my house",
    )
    lines = [frame.format(p=p) for p in phrases for frame in frames]
    lines += [
        "i want to speak to an agent",
        "i want to check my ticket",
        "yes",
        "no",
        "hello",
        "thank you",
        " ".join((*DIGIT_WORDS_EN, "oh")),
    ]
    return "\n".join(lines) + "\n"


DIGIT_JSGF = (
    "#JSGF V1.0;\ngrammar digits;\npublic <digits> = ( "
    + " | ".join((*DIGIT_WORDS_EN, "oh"))
    + " )+ ;\n"
)


class PocketsphinxRecognizer(Recognizer):
    """pocketsphinx with a domain LM built from the category vocabulary."""

    backend = "pocketsphinx"

    def __init__(self, language: str, phrases: Sequence[str], *, work_dir: Path | None = None):
        try:
            import pocketsphinx
            from pocketsphinx.lm import ArpaBoLM
        except ImportError as error:
            raise RecognizerUnavailable(f"pocketsphinx is not installed: {error}") from None
        if language != "en":
            raise RecognizerUnavailable(
                "pocketsphinx ships an en-US model only; use vosk with a model for " + language
            )
        self.language = language
        self._ps = pocketsphinx
        model = Path(pocketsphinx.get_model_path("en-us"))
        self.hmm = str(model / "en-us")
        folder = work_dir or Path(tempfile.mkdtemp(prefix="hotline-ps-"))
        folder.mkdir(parents=True, exist_ok=True)
        corpus = domain_corpus(phrase.lower() for phrase in phrases)
        lm = ArpaBoLM(text=corpus, add_start=True, case="lower")
        lm.compute()
        arpa = io.StringIO()
        lm.write(arpa)
        self.lm_path = folder / "domain.lm"
        self.lm_path.write_text(arpa.getvalue(), "utf-8")
        words = sorted({w for w in _WORD.findall(corpus)})
        pronunciations = _cmudict(model / "cmudict-en-us.dict", set(words))
        self.unknown_words = [w for w in words if w not in pronunciations]
        self.dict_path = folder / "domain.dict"
        self.dict_path.write_text(
            "".join(f"{w} {p}\n" for w, plist in sorted(pronunciations.items()) for p in plist),
            "utf-8",
        )
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._made = 0
        self.initial_cmn = ""
        self._lock = threading.Lock()
        self._pool.put(self._decoder())  # fail now, not on the first caller

    def _decoder(self) -> Any:
        decoder = self._ps.Decoder(
            hmm=self.hmm,
            lm=str(self.lm_path),
            dict=str(self.dict_path),
            samprate=16000,
            loglevel="FATAL",
        )
        decoder.add_jsgf_string("digits", DIGIT_JSGF)
        # the cepstral mean a fresh decoder starts from: put back before every utterance,
        # or a pooled decoder hears the same audio differently after another caller
        with self._lock:
            self._made += 1
            if self._made == 1:
                self.initial_cmn = decoder.get_cmn()
        return decoder

    def _take(self) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            return self._decoder()  # one decoder per concurrent utterance

    def _give_back(self, decoder: Any) -> None:
        self._pool.put(decoder)

    def stream(self, grammar: str | None = None) -> RecognitionStream:
        decoder = self._take()
        # "categories" is what the domain LM already is; "digits" switches to the grammar
        decoder.activate_search("digits" if grammar == "digits" else None)
        return _SphinxStream(self, decoder)


class _SphinxStream(RecognitionStream):
    def __init__(self, owner: PocketsphinxRecognizer, decoder: Any) -> None:
        self.owner = owner
        self.decoder = decoder
        self.upsampler = Upsampler()
        self.partials = 0
        self.done = False
        decoder.set_cmn(owner.initial_cmn)
        decoder.start_utt()

    def feed(self, pcm: bytes) -> str | None:
        data = self.upsampler.feed(pcm)
        if not data:
            return None
        self.decoder.process_raw(data, False, False)
        hyp = self.decoder.hyp()
        if hyp is not None and hyp.hypstr:
            self.partials += 1
            return str(hyp.hypstr)
        return None

    def finish(self) -> Transcript:
        if self.done:
            raise RuntimeError("stream already finished")
        self.done = True
        try:
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            if hyp is None or not hyp.hypstr:
                return Transcript("", None, self.partials)
            # pocketsphinx's word posteriors come out as 1.0 without a lattice pass, so
            # no confidence is claimed; the category's confidence decides what to confirm
            return Transcript(str(hyp.hypstr), None, self.partials)
        finally:
            self.owner._give_back(self.decoder)


def _cmudict(path: Path, wanted: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            word, _, phones = line.strip().partition(" ")
            base = word.split("(", 1)[0]
            if base in wanted:
                found.setdefault(base, []).append(phones.strip())
    return found


# --- vosk --------------------------------------------------------------------------------


class VoskRecognizer(Recognizer):
    """vosk (Kaldi) with a model from a directory; one model shared by all calls."""

    backend = "vosk"

    def __init__(self, language: str, model_dir: str | Path | None, phrases: Sequence[str] = ()):
        if not model_dir:
            raise RecognizerUnavailable(
                f"vosk needs a model directory for {language}: set voice.models.{language} "
                "(see docs/ivr.md)"
            )
        path = Path(model_dir)
        if not (path / "am").is_dir() and not (path / "conf").is_dir():
            raise RecognizerUnavailable(
                f"{path} is not a vosk model directory (no am/ or conf/ inside)"
            )
        try:
            import vosk
        except ImportError as error:
            raise RecognizerUnavailable(f"vosk is not installed: {error}") from None
        vosk.SetLogLevel(-1)
        self.language = language
        self._vosk = vosk
        self.model = vosk.Model(str(path))
        self.phrases = [p for p in phrases if p]

    def grammar_words(self, grammar: str | None) -> list[str] | None:
        if grammar == "categories" and self.phrases:
            return [*self.phrases, "[unk]"]
        if grammar == "digits":
            words = (
                ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"]
                if self.language == "zh-CN"
                else list(DIGIT_WORDS_EN)
            )
            return [*words, "[unk]"]
        return None

    def stream(self, grammar: str | None = None) -> RecognitionStream:
        words = self.grammar_words(grammar)
        if words is None:
            recognizer = self._vosk.KaldiRecognizer(self.model, 8000)
        else:
            recognizer = self._vosk.KaldiRecognizer(
                self.model, 8000, json.dumps(words, ensure_ascii=False)
            )
        recognizer.SetWords(True)
        return _VoskStream(recognizer)


class _VoskStream(RecognitionStream):
    def __init__(self, recognizer: Any) -> None:
        self.recognizer = recognizer
        self.finals: list[dict[str, Any]] = []
        self.partials = 0

    def feed(self, pcm: bytes) -> str | None:
        if self.recognizer.AcceptWaveform(pcm):
            self.finals.append(json.loads(self.recognizer.Result()))
            return self._text()
        partial = json.loads(self.recognizer.PartialResult()).get("partial", "")
        if partial:
            self.partials += 1
            return " ".join(filter(None, [self._text(), partial]))
        return None

    def _text(self) -> str:
        return " ".join(r.get("text", "") for r in self.finals if r.get("text"))

    def finish(self) -> Transcript:
        self.finals.append(json.loads(self.recognizer.FinalResult()))
        words = [w for r in self.finals for w in r.get("result", [])]
        confidence = sum(float(w.get("conf", 0)) for w in words) / len(words) if words else None
        return Transcript(self._text(), confidence, self.partials)


# --- whisper (faster-whisper on CTranslate2) ----------------------------------------------

WHISPER_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
WHISPER_LANGUAGE = {"zh-CN": "zh", "en": "en"}
PROMPT_PLACES = 10
PROMPT_PROBLEMS = 8


def whisper_prompt(language: str, places: Sequence[str], problems: Sequence[str]) -> str:
    """The initial prompt: a caller's sentence naming the city's places and problems.

    Whisper continues the prompt's style: a sentence (not a list) makes it
    write sentences, in simplified characters, with these names spelt right.
    """
    # short: a long prompt makes Whisper base lose the audio and write names instead
    places, problems = list(places)[:PROMPT_PLACES], list(problems)[:PROMPT_PROBLEMS]
    if language.startswith("zh"):
        return f"您好，我要反映一下，{'、'.join(places)}这边的{'，'.join(problems)}。"
    return f"Hello, I am calling about {', '.join(problems).lower()} on {', '.join(places)}."


class WhisperRecognizer(Recognizer):
    """faster-whisper with a CTranslate2 Whisper model from a directory, int8 on the CPU.

    One model serves every call (CTranslate2 runs ``workers`` transcriptions at
    once, each on ``threads`` cores; more wait their turn). Chinese comes out in
    simplified characters (OpenCC). A transcript that only repeats the prompt
    (Whisper's habit on unclear audio) is no transcript.
    """

    backend = "whisper"

    def __init__(
        self,
        language: str,
        model_dir: str | Path | None,
        *,
        prompt: str = "",
        threads: int = 2,
        workers: int = 1,
        beam_size: int = 1,
    ) -> None:
        if not model_dir:
            raise RecognizerUnavailable(
                "whisper needs a model directory: set voice.whisper_model (see docs/ivr.md)"
            )
        path = Path(model_dir)
        missing = [f for f in WHISPER_FILES if not (path / f).is_file()]
        if missing:
            raise RecognizerUnavailable(
                f"{path} is not a CTranslate2 Whisper model directory (no {', '.join(missing)})"
            )
        if language not in WHISPER_LANGUAGE:
            raise RecognizerUnavailable(f"whisper is not set up for {language}")
        try:
            import faster_whisper  # noqa: F401
        except ImportError as error:
            raise RecognizerUnavailable(f"faster-whisper is not installed: {error}") from None
        self.language = language
        self.code = WHISPER_LANGUAGE[language]
        self.prompt = prompt
        self.beam_size = beam_size
        self.model = _whisper_model(str(path), threads, workers)
        self._t2s: Any = None
        if language.startswith("zh"):
            import opencc

            self._t2s = opencc.OpenCC("t2s")

    def stream(self, grammar: str | None = None) -> RecognitionStream:
        return _WhisperStream(self)

    def recognise(self, pcm: bytes) -> Transcript:
        """The transcript of one utterance (8 kHz 16-bit)."""
        seconds = len(pcm) / 2 / 8000
        if seconds < 0.3:
            return Transcript("", None)
        audio = np.frombuffer(Upsampler().feed(pcm), dtype="<i2").astype(np.float32) / 32768.0
        segments, _ = self.model.transcribe(
            audio,
            language=self.code,
            task="transcribe",
            beam_size=self.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=self.prompt or None,
            no_repeat_ngram_size=3,
            chunk_length=min(30, max(5, math.ceil(seconds) + 1)),
            max_new_tokens=max(16, int(seconds * 12)),
        )
        kept = [s for s in segments if s.no_speech_prob < 0.7]
        text = "".join(s.text for s in kept).strip()
        if self._t2s is not None:
            text = self._t2s.convert(text)
        if not text or _echoes(text, self.prompt):
            return Transcript("", None)
        logprob = sum(s.avg_logprob for s in kept) / len(kept)
        return Transcript(text, round(math.exp(logprob), 3))


@functools.cache
def _whisper_model(path: str, threads: int, workers: int) -> Any:
    """One loaded model per directory and set-up, shared by the languages that use it."""
    from faster_whisper import WhisperModel

    return WhisperModel(
        path, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=workers
    )


def _echoes(text: str, prompt: str) -> bool:
    """Whether a transcript is only (a piece of) the prompt, not what the caller said."""
    if not prompt:
        return False
    from rapidfuzz import fuzz

    cleaned = re.sub(r"[\s,.，。、：:]+", "", text.lower())
    source = re.sub(r"[\s,.，。、：:]+", "", prompt.lower())
    return len(cleaned) >= 4 and fuzz.partial_ratio(cleaned, source) >= 90


class _WhisperStream(RecognitionStream):
    def __init__(self, owner: WhisperRecognizer) -> None:
        self.owner = owner
        self.chunks: list[bytes] = []
        self.done = False

    def feed(self, pcm: bytes) -> str | None:
        self.chunks.append(pcm)
        return None

    def finish(self) -> Transcript:
        if self.done:
            raise RuntimeError("stream already finished")
        self.done = True
        return self.owner.recognise(b"".join(self.chunks))


# --- per language ------------------------------------------------------------------------


class Recognizers:
    """The recognisers of each language (by backend), or why there is none."""

    def __init__(self) -> None:
        self.by_language: dict[str, dict[str, Recognizer]] = {}
        self.preferred: dict[str, str] = {}  # language -> the backend used by default
        self.problems: dict[str, str] = {}

    def available(self, language: str) -> bool:
        return language in self.preferred

    def get(self, language: str, backend: str | None = None) -> Recognizer | None:
        """The language's recogniser: ``backend`` when it loaded, else the preferred one."""
        loaded = self.by_language.get(language, {})
        if backend and backend in loaded:
            return loaded[backend]
        chosen = self.preferred.get(language)
        return loaded.get(chosen) if chosen else None

    @classmethod
    def build(
        cls,
        choices: Mapping[str, str | Sequence[str]],
        models: Mapping[str, str],
        phrases: Mapping[str, Sequence[str]],
        *,
        work_dir: Path | None = None,
        whisper_model: str | Path | None = None,
        whisper_prompts: Mapping[str, str] | None = None,
        whisper_threads: int = 2,
        whisper_workers: int = 1,
        extra: Mapping[str, Sequence[str]] | None = None,
    ) -> Recognizers:
        """Load each configured backend; a failure is logged and the next one is tried.

        ``choices``: per language, a backend or a list of them in order of
        preference; ``extra``: more backends per language that some node asks for.
        """
        out = cls()
        for language, wanted in choices.items():
            order = [wanted] if isinstance(wanted, str) else list(wanted)
            more = [b for b in (extra or {}).get(language, ()) if b not in order]
            problems: list[str] = []
            for backend in [*order, *more]:
                try:
                    recognizer = cls._load(
                        backend,
                        language,
                        models,
                        phrases,
                        work_dir=work_dir,
                        whisper_model=whisper_model,
                        whisper_prompt=(whisper_prompts or {}).get(language, ""),
                        whisper_threads=whisper_threads,
                        whisper_workers=whisper_workers,
                    )
                except RecognizerUnavailable as error:
                    problems.append(f"{backend}: {error}")
                    continue
                out.by_language.setdefault(language, {})[backend] = recognizer
                if backend in order and language not in out.preferred:
                    out.preferred[language] = backend
            if language not in out.preferred:
                out.problems[language] = "; ".join(problems)
                log.warning("no speech recognition for %s: %s", language, out.problems[language])
            elif problems:
                log.info("speech recognition for %s: %s", language, "; ".join(problems))
        return out

    @staticmethod
    def _load(
        backend: str,
        language: str,
        models: Mapping[str, str],
        phrases: Mapping[str, Sequence[str]],
        *,
        work_dir: Path | None,
        whisper_model: str | Path | None,
        whisper_prompt: str,
        whisper_threads: int,
        whisper_workers: int,
    ) -> Recognizer:
        if backend == "pocketsphinx":
            return PocketsphinxRecognizer(
                language,
                phrases.get(language, ()),
                work_dir=(work_dir / f"pocketsphinx-{language}") if work_dir else None,
            )
        if backend == "vosk":
            return VoskRecognizer(language, models.get(language), phrases.get(language, ()))
        if backend == "whisper":
            return WhisperRecognizer(
                language,
                whisper_model,
                prompt=whisper_prompt,
                threads=whisper_threads,
                workers=whisper_workers,
            )
        if backend == "none":
            raise RecognizerUnavailable("switched off in voice.recognizers")
        raise RecognizerUnavailable(f"unknown backend {backend!r}")


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words, divided by the reference's length."""
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / len(ref)
