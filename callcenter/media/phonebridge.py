"""A telephone caller in a VideoRoom room, with Janus doing the forwarding (docs/mediation.md).

The caller's audio goes in as a VideoRoom *remote publisher* (``add_remote_publisher``,
one PCMU stream): Janus listens on a UDP port and announces the caller to the room
like any publisher, so every browser subscribes to it with nothing special. What the
caller hears comes out by ``rtp_forward``: each browser publisher's Opus audio is
forwarded to one UDP socket of the bridge, told apart by the SSRC the bridge gave each
forward, decoded (PyAV's Opus decoder) and mixed to 8 kHz. So Janus stays the SFU and
nobody needs a browser in the middle of a phone call.

The object is used from two sides: the call's own thread writes and reads audio
(:meth:`send`, :meth:`receive`), and the event loop keeps the forwards in step with who
publishes (:meth:`refresh`) and ends it (:meth:`close`).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import threading
import time
from collections import deque
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import av
import numpy as np

from callcenter.media.janus import JanusClient, JanusError

log = logging.getLogger(__name__)

FRAME = 160  # 20 ms at 8 kHz
# Janus tells a remote publisher's streams apart by SSRC: base + 10 * mindex (+ substream);
# the caller's one audio stream is mindex 0
REMOTE_PUBLISHER_SSRC = 1000
MAX_QUEUED = 4000  # half a second of 8 kHz samples per source, then the oldest go (delay)


def rtp_payload(packet: bytes) -> tuple[int, bytes] | None:
    """(SSRC, payload) of an RTP packet, past its CSRCs and header extension."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        if len(packet) < offset + 4:
            return None
        words = struct.unpack(">H", packet[offset + 2 : offset + 4])[0]
        offset += 4 + 4 * words
    end = len(packet)
    if packet[0] & 0x20:  # padding
        end -= packet[-1]
    if offset >= end:
        return None
    return struct.unpack(">I", packet[8:12])[0], packet[offset:end]


class _Source:
    """One forwarded publisher: its decoder, resampler and the 8 kHz samples not yet mixed."""

    def __init__(self) -> None:
        self.decoder = av.CodecContext.create("opus", "r")
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
        self.queued: deque[np.ndarray] = deque()
        self.count = 0

    def feed(self, payload: bytes) -> None:
        try:
            frames = self.decoder.decode(av.Packet(payload))
        except av.FFmpegError:
            return  # a damaged packet: a short gap, as a phone would have it
        for frame in frames:
            for out in self.resampler.resample(frame):
                pcm = np.frombuffer(bytes(out.planes[0]), dtype="<i2")[: out.samples]
                self.queued.append(pcm.copy())
                self.count += len(pcm)
        while self.count > MAX_QUEUED:
            self.count -= len(self.queued.popleft())

    def take(self, samples: int) -> np.ndarray | None:
        if self.count < samples:
            return None
        parts, need = [], samples
        while need:
            head = self.queued[0]
            if len(head) <= need:
                parts.append(self.queued.popleft())
                need -= len(head)
            else:
                parts.append(head[:need])
                self.queued[0] = head[need:]
                need = 0
        self.count -= samples
        return np.concatenate(parts)


class PhoneBridge:
    """One caller in one room: a remote publisher in, forwarded publishers mixed out."""

    def __init__(
        self,
        client: JanusClient,
        room: int,
        secret: str,
        feed: int,
        display: str,
        *,
        recordings: Path | None = None,
        local_ip: str = "127.0.0.1",
    ) -> None:
        self.client = client
        # Janus records its publishers, not a remote one: the caller's own audio is kept
        # here while the room records, as phone-<feed>-<start µs>.ulaw, in stretches
        self.recordings = recordings
        self.recording: BinaryIO | None = None
        self.room = room
        self.secret = secret
        self.feed = feed
        self.display = display
        self.target: tuple[str, int] | None = None
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.inbound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.local_ip = local_ip  # where Janus sends the forwards (docs/media.md)
        self.inbound.bind((local_ip, 0))
        self.inbound.setblocking(False)
        self.forwarded: dict[int, int] = {}  # publisher id -> the SSRC its forward carries
        self.sources: dict[int, _Source] = {}  # SSRC -> its decoder
        self.lock = threading.Lock()
        self.seq = 0
        self.timestamp = 0
        self.pending = b""
        self.closed = False

    async def open(self) -> None:
        """The caller appears in the room (Janus tells every participant)."""
        answer = await self.client.videoroom(
            "add_remote_publisher",
            room=self.room,
            secret=self.secret,
            id=self.feed,
            display=self.display,
            streams=[{"type": "audio", "mindex": 0, "mid": "0", "codec": "pcmu"}],
            **({"iface": "127.0.0.1"} if self.local_ip.startswith("127.") else {}),
        )
        ip = str(answer.get("ip") or "")
        if not ip or ipaddress.ip_address(ip).is_unspecified:
            ip = urlsplit(self.client.node.url).hostname or "127.0.0.1"
        self.target = (ip, int(answer["port"]))
        await self.refresh()

    async def refresh(self) -> None:
        """Forward the audio of every publisher in the room that is not forwarded yet."""
        if self.closed:
            return
        port = self.inbound.getsockname()[1]
        present = {
            int(p["id"])
            for p in await self.client.participants(self.room)
            if p.get("publisher") and int(p["id"]) != self.feed
        }
        for gone in set(self.forwarded) - present:  # their forward ended with them
            self.forwarded.pop(gone)
        for publisher in present - set(self.forwarded):
            ssrc = (publisher * 2654435761 + len(self.forwarded)) & 0x7FFFFFFF or 1
            try:
                await self.client.videoroom(
                    "rtp_forward",
                    room=self.room,
                    secret=self.secret,
                    admin_key=self.client.node.admin_key,
                    publisher_id=publisher,
                    host=self.local_ip,
                    host_family="ipv4",
                    streams=[{"mid": "0", "port": port, "ssrc": ssrc}],
                )
            except JanusError as exc:  # gone between the list and the forward
                log.debug("no forward of %s: %s", publisher, exc)
                continue
            self.forwarded[publisher] = ssrc

    async def close(self) -> None:
        """The caller leaves the room."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.client.videoroom(
                "remove_remote_publisher", room=self.room, secret=self.secret, id=self.feed
            )
        except JanusError as exc:
            log.debug("remote publisher %s already gone: %s", self.feed, exc)
        finally:
            self.record(False)
            self.out.close()
            self.inbound.close()

    # --- the call's thread -------------------------------------------------------------------

    def record(self, on: bool) -> None:
        """Keep the caller's audio while the room records (a new stretch each time)."""
        if on and self.recording is None and self.recordings is not None and not self.closed:
            self.recordings.mkdir(parents=True, exist_ok=True)
            start = int(time.time() * 1e6)  # the clock Janus stamps its recordings with
            self.recording = (self.recordings / f"phone-{self.feed}-{start}.ulaw").open("wb")
        elif not on and self.recording is not None:
            self.recording.close()
            self.recording = None

    def send(self, ulaw: bytes) -> None:
        """The caller's audio (8 kHz G.711 mu-law, as it came) into the room, in 20 ms
        PCMU packets."""
        if self.closed or self.target is None:
            return
        if self.recording is not None:
            self.recording.write(ulaw)
        data = self.pending + ulaw
        whole = len(data) - len(data) % FRAME
        self.pending = data[whole:]
        for start in range(0, whole, FRAME):
            header = struct.pack(
                ">BBHII", 0x80, 0, self.seq & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                REMOTE_PUBLISHER_SSRC,
            )  # fmt: skip
            try:
                self.out.sendto(header + data[start : start + FRAME], self.target)
            except OSError:
                return
            self.seq += 1
            self.timestamp += FRAME

    def receive(self, samples: int = FRAME) -> bytes | None:
        """The room's mix for the caller: ``samples`` at 8 kHz, or None while nothing came."""
        if self.closed:
            return None
        while True:
            try:
                packet = self.inbound.recv(4096)
            except (BlockingIOError, OSError):
                break
            parsed = rtp_payload(packet)
            if parsed is None:
                continue
            ssrc, payload = parsed
            source = self.sources.get(ssrc)
            if source is None:
                source = self.sources[ssrc] = _Source()
            source.feed(payload)
        parts = [p for s in self.sources.values() if (p := s.take(samples)) is not None]
        if not parts:
            return None
        mixed = np.clip(np.sum(np.stack(parts).astype(np.int32), axis=0), -32768, 32767)
        return mixed.astype("<i2").tobytes()
