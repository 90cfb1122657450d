"""Prompts as audio: espeak-ng speaks, sox converts, the disk keeps the result.

A prompt is generated once per (voice, text, format) with Debian's
``espeak-ng`` and converted with ``sox`` to the transport's format, then
cached under the cache folder.

Chinese: espeak-ng's ``cmn`` voice reads Chinese characters as pinyin with
the tone digits spoken in English ("gang three..."); its ``cmn-latn-pinyin``
voice speaks Mandarin, but only from tone-numbered pinyin. So a zh-CN text
is turned into pinyin first (pypinyin, with third-tone sandhi, numerals as
words), and punctuation into pauses: :func:`espeak_input`.
A recorded WAV at ``<prompts_dir>/<locale>/<key>.wav`` replaces the
generated voice for a prompt without parameters. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Literal

import numpy as np
from pypinyin import Style, lazy_pinyin

from ivr.engine import Say
from ivr.spoken import numbers_to_words

VOICES = {"zh-CN": "cmn-latn-pinyin", "en": "en-us"}
Format = Literal["s16", "u8"]  # 8 kHz mono: 16-bit signed, or 8-bit unsigned (pyVoIP)
_SOX_FORMAT = {
    "s16": ["-e", "signed-integer", "-b", "16"],
    "u8": ["-e", "unsigned-integer", "-b", "8"],
}


_PAUSES = {"，": ",", "、": ",", "；": ",", "：": ",", "。": ".", "！": ".", "？": "?"}
_BRACKETS = "【】（）《》“”‘’「」()"


def espeak_input(text: str, locale: str) -> str:
    """What espeak-ng's voice for ``locale`` is given to say ``text``.

    zh-CN: tone-numbered pinyin (neutral tone 5), numerals as Chinese words,
    Chinese punctuation as pauses; en: numerals as words.
    """
    text = numbers_to_words(text, locale)
    if locale != "zh-CN":
        return text
    for bracket in _BRACKETS:
        text = text.replace(bracket, " ")
    syllables = lazy_pinyin(
        text, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=True, errors="default"
    )
    out: list[str] = []
    for piece in syllables:
        for ch, pause in _PAUSES.items():
            piece = piece.replace(ch, pause)
        out.append(piece.strip())
    spoken = " ".join(p for p in out if p)
    return re.sub(r"\s+([,.?])", r"\1", spoken)


class SpeechToolMissing(RuntimeError):
    pass


def tone(seconds: float = 0.25, frequency: float = 1000.0) -> bytes:
    """The tone before the caller speaks: 8 kHz 16-bit samples of a sine."""
    t = np.arange(int(seconds * 8000)) / 8000
    return (np.sin(2 * np.pi * frequency * t) * 8000).astype("<i2").tobytes()


def check_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise SpeechToolMissing(
            f"{' and '.join(missing)} not found: install the Debian packages espeak-ng and sox"
        )


class PromptAudio:
    """Audio for what the IVR says (thread-safe; runs external tools, so call off the loop)."""

    def __init__(
        self,
        cache_dir: Path,
        prompts_dir: Path | None = None,
        *,
        speed: int = 165,
    ) -> None:
        self.cache_dir = cache_dir
        self.prompts_dir = prompts_dir
        self.speed = speed
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        cache_dir.mkdir(parents=True, exist_ok=True)

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def recorded(self, say: Say) -> Path | None:
        if self.prompts_dir is None or say.key is None:
            return None
        path = self.prompts_dir / say.locale / f"{say.key}.wav"
        return path if path.is_file() else None

    def render(self, say: Say, fmt: Format = "s16") -> bytes:
        """Raw 8 kHz mono samples of ``say`` in ``fmt``."""
        override = self.recorded(say)
        if override is not None:
            stat = override.stat()
            source = f"file:{override}:{stat.st_mtime_ns}:{stat.st_size}"
        else:
            spoken = espeak_input(say.text, say.locale)
            source = f"espeak:{VOICES[say.locale]}:{self.speed}:{spoken}"
        name = hashlib.sha256(f"{source}|{fmt}".encode()).hexdigest()[:32] + f".{fmt}"
        path = self.cache_dir / name
        if path.is_file():
            return path.read_bytes()
        with self._lock(name):
            if path.is_file():
                return path.read_bytes()
            data = self._convert(override, say, fmt)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".part")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
            return data

    def _convert(self, override: Path | None, say: Say, fmt: Format) -> bytes:
        sox_out = ["-r", "8000", "-c", "1", *_SOX_FORMAT[fmt], "-t", "raw", "-"]
        if override is not None:
            return _run(["sox", str(override), *sox_out])
        wav = _espeak(say.text, say.locale, self.speed)
        return _run(["sox", "-t", "wav", "-", *sox_out], stdin=wav)

    def duration(self, say: Say) -> float:
        return len(self.render(say, "u8")) / 8000


def _espeak(text: str, locale: str, speed: int) -> bytes:
    spoken = espeak_input(text, locale)
    return _run(["espeak-ng", "-v", VOICES[locale], "-s", str(speed), "--stdout", spoken])


def phonemes(text: str, locale: str) -> str:
    """espeak-ng's phonemes for what the IVR would say (``-x``): how a prompt will sound."""
    out = _run(["espeak-ng", "-v", VOICES[locale], "-q", "-x", espeak_input(text, locale)])
    return out.decode("utf-8", "replace")


def _run(cmd: list[str], stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=60, check=False)
    except FileNotFoundError:
        check_tools()
        raise
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {done.stderr.decode(errors='replace')[:300]}")
    return done.stdout


def speak_to_wav(text: str, locale: str, path: Path, *, rate: int = 8000, speed: int = 165) -> None:
    """A WAV file of ``text`` (16-bit mono): a caller's voice for tests and benchmarks."""
    wav = _espeak(text, locale, speed)
    _run(
        [
            "sox",
            "-t",
            "wav",
            "-",
            "-r",
            str(rate),
            "-c",
            "1",
            "-e",
            "signed-integer",
            "-b",
            "16",
            str(path),
        ],
        stdin=wav,
    )
