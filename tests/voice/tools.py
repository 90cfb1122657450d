"""Real SIP peers for the voice tests: pcap files of speech, sipp scenarios, free ports."""

from __future__ import annotations

import shutil
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.audio import s16_to_ulaw

SIPP_PCAPS = Path("/usr/share/sip-tester")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """An even UDP port whose neighbour is free too (RTP + RTCP)."""
    for _ in range(200):
        port = free_udp_port() & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
            ):
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def write_rtp_pcap(path: Path, s16_8k: bytes, *, ssrc: int = 0x1234, pt: int = 0) -> float:
    """A pcap of PCMU RTP packets (20 ms each) carrying ``s16_8k``; returns its seconds."""
    ulaw = s16_to_ulaw(s16_8k)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    seq, ts, t = 1000, 8000, 1_700_000_000.0
    for i in range(0, len(ulaw), 160):
        payload = ulaw[i : i + 160].ljust(160, b"\xff")
        rtp = struct.pack(">BBHII", 0x80, (0x80 if i == 0 else 0) | pt, seq, ts, ssrc) + payload
        udp = struct.pack(">HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = (
            struct.pack(
                ">BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(udp),
                0,
                0,
                64,
                17,
                0,
                bytes([127, 0, 0, 1]),
                bytes([127, 0, 0, 1]),
            )
            + udp
        )
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        sec = int(t)
        out += struct.pack("<IIII", sec, int((t - sec) * 1e6), len(frame), len(frame)) + frame
        seq, ts, t = seq + 1, ts + 160, t + 0.02
    path.write_bytes(bytes(out))
    return len(ulaw) / 8000


def dtmf_pcap(key: str) -> Path:
    name = {"#": "pound", "*": "star"}.get(key, key)
    return SIPP_PCAPS / f"dtmf_2833_{name}.pcap"


@dataclass
class Step:
    """Wait ``pause`` seconds, then play a pcap (keys or speech)."""

    pause: float
    pcap: Path | None = None


def uac_scenario(
    steps: Sequence[Step],
    *,
    caller: str = "+8613800000000",
    service: str = "hotline",
    codecs: str = "0 8 101",
    supported_empty: bool = True,
    wait_bye_ms: int = 90_000,
    hang_up_after: float | None = None,
) -> str:
    """A sipp caller: INVITE, then keys and speech from pcaps at set times, then BYE.

    Unless ``hang_up_after`` is given, the hotline is expected to hang up.
    """
    supported = "Supported:\n      " if supported_empty else ""
    actions = []
    for step in steps:
        if step.pause:
            actions.append(f'  <pause milliseconds="{int(step.pause * 1000)}"/>')
        if step.pcap is not None:
            actions.append(f'  <nop><action><exec play_pcap_audio="{step.pcap}"/></action></nop>')
    if hang_up_after is not None:
        ending = f"""  <pause milliseconds="{int(hang_up_after * 1000)}"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 2 BYE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" timeout="10000"/>"""
    else:
        ending = f"""  <recv request="BYE" timeout="{wait_bye_ms}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>"""
    body = "\n".join(actions)
    rtpmaps = {
        "0": "a=rtpmap:0 PCMU/8000",
        "8": "a=rtpmap:8 PCMA/8000",
        "101": "a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-15",
    }
    maps = "\n      ".join(rtpmaps[c] for c in codecs.split())
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="hotline caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:{service}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{service}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      {supported}Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP {codecs}
      {maps}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true" timeout="30000"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
{body}
{ending}
</scenario>
"""


def sipp_path() -> str | None:
    return shutil.which("sipp")
