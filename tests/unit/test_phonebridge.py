"""The phone bridge's own work, without Janus: reading RTP, decoding and mixing the room's
Opus streams for a caller (the bridge with Janus: tests/media/test_phone_party.py)."""

from __future__ import annotations

import socket
import struct
from fractions import Fraction

import av
import numpy as np

from callcenter.media.phonebridge import PhoneBridge, rtp_payload


def opus_packets(hz: float, seconds: float = 1.0) -> list[bytes]:
    """A tone encoded as Opus packets, 20 ms each (what a browser publishes)."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "s16"
    encoder.time_base = Fraction(1, 48000)
    packets: list[bytes] = []
    for n in range(int(seconds * 50)):
        t = (np.arange(960) + n * 960) / 48000
        pcm = (8000 * np.sin(2 * np.pi * hz * t)).astype("<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, n * 960
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


def rtp(ssrc: int, seq: int, payload: bytes, *, csrcs: int = 0, extension: bool = False) -> bytes:
    first = 0x80 | csrcs | (0x10 if extension else 0)
    header = struct.pack(">BBHII", first, 111, seq, seq * 960, ssrc) + b"\0\0\0\1" * csrcs
    if extension:
        header += struct.pack(">HH", 0xBEDE, 1) + b"\x10\xff\0\0"
    return header + payload


def test_the_payload_is_found_past_csrcs_and_the_header_extension() -> None:
    assert rtp_payload(rtp(7, 1, b"opus", csrcs=2, extension=True)) == (7, b"opus")
    padded = bytearray(rtp(9, 1, b"opus\0\0\3"))
    padded[0] |= 0x20
    assert rtp_payload(bytes(padded)) == (9, b"opus")
    assert rtp_payload(b"\x00" * 20) is None  # not RTP version 2
    assert rtp_payload(rtp(7, 1, b"")) is None


def test_two_publishers_are_decoded_and_mixed_for_the_caller() -> None:
    bridge = PhoneBridge(None, 1, "s", 2, "caller")  # type: ignore[arg-type]
    port = bridge.inbound.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for ssrc, hz in ((11, 440), (12, 1000)):
            for seq, packet in enumerate(opus_packets(hz)):
                sender.sendto(rtp(ssrc, seq, packet), ("127.0.0.1", port))
    mixed = b""
    for _ in range(200):
        part = bridge.receive(800)
        if part is None:
            if mixed:
                break
            continue
        mixed += part
    assert len(mixed) >= 2 * 4000  # at least half a second at 8 kHz
    x = np.frombuffer(mixed, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x))

    def band(hz: float) -> float:
        return float(
            spectrum[int((hz - 15) * len(x) / 8000) : int((hz + 15) * len(x) / 8000)].max()
        )

    assert band(440) > 20 * band(700) and band(1000) > 20 * band(700)
    bridge.inbound.close()
    bridge.out.close()
