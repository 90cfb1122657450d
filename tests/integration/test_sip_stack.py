"""The SIP stack's work-arounds, over real UDP sockets on 127.0.0.1 (no SIP client needed).

Bad RTP packets are sent to a real pyVoIP receiver; INVITEs and CANCELs are
sent as a SIP peer would to a real :class:`HotlinePhone` in direct mode.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyVoIP.VoIP import VoIP

from pyVoIP import RTP  # isort: skip

from channels.sip.stack import HotlinePhone, _harden_receiver, _keep_g711, wait_until
from tests.voice.tools import free_port_pair, free_udp_port


def rtp(payload_type: int, payload: bytes, *, marker: bool = False, seq: int = 1) -> bytes:
    return (
        struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | payload_type, seq, 160, 7) + payload
    )


def event(code: int, *, end: bool = False) -> bytes:
    return bytes([code, (0x80 if end else 0) | 10]) + struct.pack(">H", 160)


@pytest.fixture
def receiver() -> Iterator[tuple[RTP.RTPClient, list[str], int]]:
    keys: list[str] = []
    port = free_port_pair()
    client = RTP.RTPClient(
        {0: RTP.PayloadType.PCMU, 101: RTP.PayloadType.EVENT},
        "127.0.0.1",
        port,
        "127.0.0.1",
        free_udp_port(),
        RTP.TransmitType.SENDRECV,
        dtmf=keys.append,
    )
    _keep_g711(client)
    _harden_receiver(client)
    client.start()
    yield client, keys, port
    client.stop()


def receiver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "RTP Receiver"]


def test_bad_rtp_packets_do_not_deafen_the_call(
    receiver: tuple[RTP.RTPClient, list[str], int],
) -> None:
    client, keys, port = receiver
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        for bad in (
            rtp(101, event(17), marker=True),  # no key has code 17
            rtp(101, event(16), marker=True, seq=2),  # "flash": valid, but no key
            rtp(101, b"", marker=True, seq=3),  # an event with no payload
            b"\x80",  # one byte
            b"",
            rtp(101, event(250)[:1], marker=True, seq=4),  # a cut-off event
        ):
            peer.sendto(bad, ("127.0.0.1", port))
        time.sleep(0.2)
        peer.sendto(rtp(101, event(5), marker=True, seq=5), ("127.0.0.1", port))
        peer.sendto(rtp(0, b"\xff" * 160, seq=6), ("127.0.0.1", port))
        assert wait_until(lambda: keys == ["5"], 3), keys
    assert receiver_threads(), "the receiver thread died"
    assert client.hotline_last_packet is not None  # type: ignore[attr-defined]
    assert client.pmin.buffer.getbuffer().nbytes >= 160  # the audio after them arrived


def invite(port: int, sip_port: int, call_id: str, codecs: str, maps: list[str]) -> bytes:
    sdp = "\r\n".join(
        [
            "v=0",
            "o=caller 1 1 IN IP4 127.0.0.1",
            "s=-",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            f"m=audio 40000 RTP/AVP {codecs}",
            *maps,
            "",
        ]
    )
    head = "\r\n".join(
        [
            f"INVITE sip:hotline@127.0.0.1:{sip_port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}",
            f"From: <sip:+8613800000000@127.0.0.1:{port}>;tag=from{call_id}",
            f"To: <sip:hotline@127.0.0.1:{sip_port}>",
            f"Call-ID: {call_id}",
            "CSeq: 1 INVITE",
            f"Contact: <sip:caller@127.0.0.1:{port}>",
            "Max-Forwards: 70",
            "Content-Type: application/sdp",
            f"Content-Length: {len(sdp)}",
            "",
            "",
        ]
    )
    return (head + sdp).encode()


def cancel(port: int, sip_port: int, call_id: str) -> bytes:
    return "\r\n".join(
        [
            f"CANCEL sip:hotline@127.0.0.1:{sip_port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}",
            f"From: <sip:+8613800000000@127.0.0.1:{port}>;tag=from{call_id}",
            f"To: <sip:hotline@127.0.0.1:{sip_port}>",
            f"Call-ID: {call_id}",
            "CSeq: 1 CANCEL",
            "Max-Forwards: 70",
            "Content-Length: 0",
            "",
            "",
        ]
    ).encode()


@pytest.fixture
def phone() -> Iterator[tuple[HotlinePhone, int, list[Any]]]:
    calls: list[Any] = []
    sip_port = free_udp_port()
    rtp_low = free_port_pair()
    hotline = HotlinePhone(
        "127.0.0.1",
        sip_port,
        "hotline",
        "",
        myIP="127.0.0.1",
        callCallback=calls.append,
        sipPort=sip_port,
        rtpPortLow=rtp_low,
        rtpPortHigh=rtp_low + 100,
        register=False,
    )
    hotline.start()
    yield hotline, sip_port, calls
    hotline.stop()


def responses(peer: socket.socket, seconds: float) -> list[str]:
    out: list[str] = []
    deadline = time.monotonic() + seconds
    peer.settimeout(0.1)
    while time.monotonic() < deadline:
        try:
            out.append(peer.recv(8192).decode(errors="replace"))
        except TimeoutError:
            continue
    return out


def test_a_caller_with_no_common_codec_gets_488_at_once(
    phone: tuple[HotlinePhone, int, list[Any]],
) -> None:
    _, sip_port, calls = phone
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        port = peer.getsockname()[1]
        maps = ["a=rtpmap:9 G722/8000", "a=rtpmap:111 opus/48000/2"]
        peer.sendto(invite(port, sip_port, "g722", "9 111", maps), ("127.0.0.1", sip_port))
        got = responses(peer, 1.5)
    status = [r.split("\r\n", 1)[0] for r in got]
    assert status == ["SIP/2.0 488 Not Acceptable Here"], got
    assert "Call-ID: g722" in got[0] and "Incompatible media" in got[0]
    assert calls == []  # no call was set up, nothing rings


def test_a_cancelled_call_gets_487_and_is_never_answered(
    phone: tuple[HotlinePhone, int, list[Any]],
) -> None:
    hotline, sip_port, calls = phone
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        port = peer.getsockname()[1]
        maps = ["a=rtpmap:0 PCMU/8000"]
        peer.sendto(invite(port, sip_port, "c1", "0", maps), ("127.0.0.1", sip_port))
        ringing = responses(peer, 0.3)
        peer.sendto(cancel(port, sip_port, "c1"), ("127.0.0.1", sip_port))
        got = responses(peer, 1.5)
    assert [r.split("\r\n", 1)[0] for r in ringing] == ["SIP/2.0 180 Ringing"]
    status = sorted(r.split("\r\n", 1)[0] for r in got)
    assert status == ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"], got
    tag = ringing[0].split("To: ", 1)[1].split("\r\n", 1)[0]
    assert any(tag in r for r in got if r.startswith("SIP/2.0 487"))  # the dialog 180 began
    assert "c1" not in hotline.calls
    assert all(c.state == VoIP.CallState.ENDED for c in calls)
