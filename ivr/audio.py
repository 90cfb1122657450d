"""Telephone audio: 8 kHz mono, as 16-bit signed PCM inside the IVR.

pyVoIP hands over 8-bit unsigned samples; recognisers want 16-bit signed, and
pocketsphinx's en-US model wants 16 kHz. These helpers convert between them
with numpy (``audioop`` is gone from Python 3.13).
"""

from __future__ import annotations

import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

RATE = 8000
FRAME = 160  # 20 ms at 8 kHz


def u8_to_s16(data: bytes) -> bytes:
    samples = np.frombuffer(data, dtype=np.uint8).astype(np.int16)
    return ((samples - 128) << 8).astype("<i2").tobytes()


def s16_to_u8(data: bytes) -> bytes:
    samples = np.frombuffer(data, dtype="<i2").astype(np.int32)
    return ((samples >> 8) + 128).astype(np.uint8).tobytes()


@lru_cache(maxsize=1)
def _halfband(taps: int = 31) -> np.ndarray:
    n = np.arange(taps) - (taps - 1) / 2
    kernel = np.sinc(n / 2) * np.hamming(taps)
    return (kernel / kernel.sum() * 2).astype(np.float32)


class Upsampler:
    """8 kHz -> 16 kHz, in pieces, without clicks at the joins (zero-stuffing + FIR)."""

    def __init__(self) -> None:
        self.kernel = _halfband()
        self.tail = np.zeros(len(self.kernel) - 1, dtype=np.float32)

    def feed(self, s16: bytes) -> bytes:
        samples = np.frombuffer(s16, dtype="<i2").astype(np.float32)
        if not len(samples):
            return b""
        stuffed = np.zeros(len(samples) * 2, dtype=np.float32)
        stuffed[::2] = samples
        joined = np.concatenate([self.tail, stuffed])
        out = np.convolve(joined, self.kernel, mode="valid")
        self.tail = joined[-(len(self.kernel) - 1) :]
        return np.clip(out, -32768, 32767).astype("<i2").tobytes()


def upsample_16k(s16: bytes) -> bytes:
    return Upsampler().feed(s16)


def rms(s16: bytes) -> float:
    samples = np.frombuffer(s16, dtype="<i2").astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples))) if len(samples) else 0.0


def write_wav(path: Path, s16: bytes, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(s16)


def mix_s16(a: bytes, b: bytes) -> bytes:
    """Two 16-bit tracks played together (the shorter padded with silence), clipped."""
    x = np.frombuffer(a, dtype="<i2").astype(np.int32)
    y = np.frombuffer(b, dtype="<i2").astype(np.int32)
    n = max(len(x), len(y))
    out = np.zeros(n, dtype=np.int32)
    out[: len(x)] += x
    out[: len(y)] += y
    return np.clip(out, -32768, 32767).astype("<i2").tobytes()


def write_stereo_wav(path: Path, left: bytes, right: bytes, rate: int = RATE) -> None:
    """Two 16-bit mono tracks as one stereo file (the shorter padded with silence)."""
    a = np.frombuffer(left, dtype="<i2")
    b = np.frombuffer(right, dtype="<i2")
    n = max(len(a), len(b))
    frames = np.zeros((n, 2), dtype="<i2")
    frames[: len(a), 0] = a
    frames[: len(b), 1] = b
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames.tobytes())


def read_wav(path: Path) -> tuple[bytes, int]:
    """16-bit mono samples and their rate."""
    with wave.open(str(path), "rb") as source:
        if source.getnchannels() != 1 or source.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit mono")
        return source.readframes(source.getnframes()), source.getframerate()


def s16_to_ulaw(s16: bytes) -> bytes:
    """G.711 µ-law (PCMU) from 16-bit samples."""
    x = np.frombuffer(s16, dtype="<i2").astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def _ulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    return np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84).astype("<i2")


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return np.where(sign != 0, magnitude, -magnitude).astype("<i2")


ULAW = _ulaw_table()
ALAW = _alaw_table()


def g711_to_s16(data: bytes, codec: str) -> bytes:
    """Decode PCMU ("ulaw") or PCMA ("alaw") payload to 16-bit samples, at full precision."""
    table = ULAW if codec == "ulaw" else ALAW
    return table[np.frombuffer(data, dtype=np.uint8)].tobytes()


# the hold tune's notes (Hz): a pentatonic phrase, none near the tones tests listen for
HOLD_NOTES = (523.25, 659.25, 783.99, 880.0, 783.99, 659.25, 587.33, 659.25)


@lru_cache(maxsize=4)
def hold_music(seconds: float = 8.0, note_s: float = 0.5) -> bytes:
    """Music for a caller on hold: 8 kHz 16-bit, a soft tune of sine notes with a short
    fade in and out of each (no clicks), looped to ``seconds``. Made here, so the
    hotline needs no music file; ``voice.hold_music`` may name a WAV to play instead."""
    per_note = int(note_s * RATE)
    t = np.arange(per_note) / RATE
    fade = np.minimum(1.0, np.minimum(t, note_s - t) / 0.03)
    notes = [
        np.sin(2 * np.pi * hz * t) * fade * 0.5 + np.sin(4 * np.pi * hz * t) * fade * 0.1
        for hz in HOLD_NOTES
    ]
    phrase = np.concatenate(notes)
    count = int(seconds * RATE)
    tune = np.resize(phrase, count) * 6000
    return tune.astype("<i2").tobytes()
