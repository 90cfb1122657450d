"""Telephone audio helpers, spoken numbers and the SIP header clean-up (no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from channels.sip.stack import call_id_of, clean_sip
from ivr.audio import g711_to_s16, s16_to_u8, s16_to_ulaw, u8_to_s16, upsample_16k
from ivr.stt import DIGIT_JSGF, domain_corpus, word_error_rate


def tone(freq: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 10000).astype("<i2")


def test_ulaw_round_trip_keeps_speech_precision() -> None:
    samples = tone(440, 8000)
    back = np.frombuffer(g711_to_s16(s16_to_ulaw(samples.tobytes()), "ulaw"), "<i2")
    error = np.abs(back.astype(int) - samples.astype(int))
    assert error.max() <= 10000 / 32  # µ-law: a few percent of the amplitude at most
    quiet = (samples // 50).astype("<i2")  # a whisper survives, unlike 8-bit linear
    back_quiet = np.frombuffer(g711_to_s16(s16_to_ulaw(quiet.tobytes()), "ulaw"), "<i2")
    assert np.abs(back_quiet - quiet).max() <= 8
    # pyVoIP's 8-bit linear audio turns the same whisper into a square wave of two levels
    eight_bit = np.frombuffer(u8_to_s16(s16_to_u8(quiet.tobytes())), "<i2")
    assert len(np.unique(eight_bit)) <= 2 < len(np.unique(back_quiet))


def test_upsampling_keeps_the_tone_and_doubles_the_rate() -> None:
    up = np.frombuffer(upsample_16k(tone(1000, 8000).tobytes()), "<i2").astype(float)
    assert len(up) == 8000
    spectrum = np.abs(np.fft.rfft(up[1000:7000] * np.hanning(6000)))
    peak_hz = np.argmax(spectrum) * 16000 / 6000
    assert peak_hz == pytest.approx(1000, abs=5)
    image = spectrum[int(7000 * 6000 / 16000)]  # the mirror at 7 kHz is filtered out
    assert image < spectrum.max() / 100


def test_an_empty_sip_header_is_left_out_and_compact_ones_repaired() -> None:
    raw = (
        b"INVITE sip:hotline@127.0.0.1 SIP/2.0\r\nSupported:\r\nAllow:INVITE, BYE\r\n"
        b"Call-ID: abc@host\r\nContent-Length: 0\r\n\r\nv=0\r\n"
    )
    cleaned = clean_sip(raw)
    assert b"Supported" not in cleaned and b"Allow: INVITE, BYE\r\n" in cleaned
    assert cleaned.endswith(b"\r\n\r\nv=0\r\n")
    assert call_id_of(cleaned) == "abc@host"


def test_word_error_rate_and_the_domain_texts() -> None:
    assert word_error_rate("a broken street light", "a broken street light") == 0
    assert word_error_rate("a broken street light", "a street lamp") == 0.5
    corpus = domain_corpus(["street light"])
    assert "i want to report a broken street light on main street" in corpus
    assert "( zero | one" in DIGIT_JSGF
