"""pyVoIP 1.6.8, with its known defects worked around (each one covered by a test).

1. An INVITE with an empty header (``Supported:``) or a header without a
   space after the colon is dropped by its parser: :func:`clean_sip` rewrites
   header lines before parsing and leaves out the empty ones.
2. It encodes PCMA with the PCMU encoder: :class:`HotlineCall` orders PCMU
   first when the caller offers it, and gives a PCMA-only call the right
   encoder.
3. ``read_audio(blocking=True)`` spins on silence and a non-blocking read
   pads with silence that never came: :class:`CallAudio` reads only the bytes
   that arrived.
4. The SDP carries ``myIP`` verbatim, so ``0.0.0.0`` would be advertised:
   the adapter refuses anything but an explicit IP address.
5. Audio is 8 kHz 8-bit unsigned: it decodes G.711 to 8-bit linear, which
   throws away the quiet half of speech and ruins recognition. Each call
   here keeps the caller's G.711 bytes as they came (one byte per sample, so
   pyVoIP's jitter buffer works unchanged) and :class:`CallAudio` decodes them
   to 16-bit at full precision. Prompts go out through pyVoIP's 8-bit path.

6. One bad RTP packet kills its receiver thread (an uncaught IndexError or
   TypeError in ``parse_packet``): a telephone-event with a code above 16,
   one with no payload, a packet shorter than an RTP header. After that
   every key is ignored. :func:`_harden_receiver` checks each packet before
   pyVoIP sees it, drops what it cannot parse, and keeps the thread alive
   whatever a packet holds; it also notes when the last packet came, so a
   call that sends no media can be ended (``voice.no_media_seconds``).
7. An INVITE offering no codec it can speak (only G.722 or Opus) gets 180
   Ringing and then nothing (``AttributeError`` in its call set-up), and a
   CANCEL is not answered with 487: :meth:`HotlinePhone._callback_MSG_Invite`
   answers 488 Not Acceptable Here before ringing, and a CANCEL of a ringing
   call ends it with 487 Request Terminated.

Also: pyVoIP sends every SIP message to the configured server, which is
wrong without a registrar (direct mode) — :class:`_RoutedSocket` answers
each dialog where its requests came from; it always registers — the client
here registers only in ``register`` mode; and its BYE copies the caller's
Via headers — :meth:`HotlineSipClient.gen_bye` puts its own.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import uuid
from typing import Any

from pyVoIP.VoIP import VoIP  # first: importing pyVoIP.SIP first is a circular import

from pyVoIP import RTP, SIP  # isort: skip

from ivr.audio import g711_to_s16, s16_to_u8

log = logging.getLogger(__name__)

RTP_HEADER = 12
FLASH = 16  # RFC 4733: telephone-event 16 is "flash", no key
AUDIO_CODECS = (RTP.PayloadType.PCMU, RTP.PayloadType.PCMA)

_HEADER = re.compile(rb"^([A-Za-z][A-Za-z0-9._!%*+`'~-]*)[ \t]*:[ \t]*(.*)$")
_CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(.+)$", re.IGNORECASE | re.MULTILINE)


def clean_sip(raw: bytes) -> bytes:
    """Header lines as pyVoIP can parse them: ``Name: value``, no empty ones."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        match = _HEADER.match(line)
        if match is None:
            out.append(line)
            continue
        name, value = match.group(1), match.group(2).strip()
        if not value:
            continue
        out.append(name + b": " + value)
    return b"\r\n".join(out) + sep + body


def call_id_of(raw: bytes) -> str | None:
    match = _CALL_ID.search(raw.partition(b"\r\n\r\n")[0])
    return match.group(1).strip().decode("utf-8", "replace") if match else None


class _RoutedSocket:
    """pyVoIP's outgoing socket: messages of a dialog go back where the dialog came from."""

    def __init__(self, sock: socket.socket, peers: dict[str, tuple[str, int]]) -> None:
        self._sock = sock
        self._peers = peers

    def sendto(self, data: bytes, address: Any) -> int:
        call_id = call_id_of(data)
        target = self._peers.get(call_id, address) if call_id else address
        return self._sock.sendto(data, target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class HotlineSipClient(SIP.SIPClient):
    """SIPClient that registers only when asked and routes replies per dialog."""

    def __init__(self, *args: Any, register: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.use_registrar = register
        self.peers: dict[str, tuple[str, int]] = {}

    def start(self) -> None:
        if self.NSD:
            raise RuntimeError("already started")
        self.NSD = True
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((self.myIP, self.myPort))
        self.out = _RoutedSocket(self.s, self.peers)  # type: ignore[assignment]
        if self.use_registrar and not self.register():
            raise ConnectionError(f"registration with {self.server}:{self.port} failed")
        thread = threading.Thread(target=self.recv_loop, name="SIP receive", daemon=True)
        thread.start()

    def recv(self) -> None:
        raw, address = self.s.recvfrom(8192)  # BlockingIOError goes to recv_loop
        if raw in (b"\x00\x00\x00\x00", b"\r\n\r\n", b"\r\n"):
            return
        raw = clean_sip(raw)
        call_id = call_id_of(raw)
        if call_id is not None and raw[:8] != b"SIP/2.0 ":
            self.peers.setdefault(call_id, address)
        try:
            message = SIP.SIPMessage(raw)
            self.parse_message(message)
        except Exception:
            log.exception("SIP message from %s could not be handled", address)

    def gen_bye(self, request: SIP.SIPMessage) -> str:
        text = super().gen_bye(request)
        lines = [line for line in text.split("\r\n") if not line.startswith("Via:")]
        via = f"Via: SIP/2.0/UDP {self.myIP}:{self.myPort};branch=z9hG4bK{uuid.uuid4().hex}"
        lines.insert(1, via)
        return "\r\n".join(lines)

    def forget(self, call_id: str) -> None:
        self.peers.pop(call_id, None)


class HotlineCall(VoIP.VoIPCall):
    """A call that prefers PCMU and encodes PCMA correctly when that is all it gets."""

    def create_rtp_clients(
        self,
        codecs: dict[int, RTP.PayloadType],
        ip: str,
        port: int,
        request: SIP.SIPMessage,
        baseport: int,
    ) -> None:
        ordered = dict(
            sorted(
                codecs.items(),
                key=lambda item: {RTP.PayloadType.PCMU: 0, RTP.PayloadType.PCMA: 1}.get(item[1], 2),
            )
        )
        super().create_rtp_clients(ordered, ip, port, request, baseport)
        for client in self.RTPClients:
            if client.preference == RTP.PayloadType.PCMA:
                client.encode_packet = client.encode_pcma  # type: ignore[method-assign,assignment]
            _keep_g711(client)
            _harden_receiver(client)

    @property
    def last_packet_at(self) -> float | None:
        """When the caller's last RTP packet (audio or key) arrived (monotonic), or None."""
        times = [getattr(c, "hotline_last_packet", None) for c in self.RTPClients]
        seen = [t for t in times if t is not None]
        return max(seen) if seen else None


def offers_audio(request: SIP.SIPMessage) -> bool:
    """Whether an INVITE's SDP offers a codec this user agent speaks (PCMU or PCMA)."""
    body = request.body if isinstance(request.body, dict) else {}
    for media in body.get("m", []):
        if media.get("type") != "audio":
            continue
        for method in media.get("methods", []):
            try:
                if RTP.PayloadType(int(method)) in AUDIO_CODECS:
                    return True
            except ValueError:
                name = media.get("attributes", {}).get(method, {}).get("rtpmap", {}).get("name")
                if name in ("PCMU", "PCMA"):
                    return True
    return False


def _harden_receiver(client: RTP.RTPClient) -> None:
    """Check each packet before pyVoIP parses it; nothing a packet holds stops the thread."""
    parse = client.parse_packet
    client.hotline_last_packet = None  # type: ignore[attr-defined]

    def checked(packet: bytes) -> None:
        client.hotline_last_packet = time.monotonic()  # type: ignore[attr-defined]
        if len(packet) < RTP_HEADER or packet[0] >> 6 != 2:
            log.debug("RTP: dropped a packet of %d bytes", len(packet))
            return
        payload_type = client.assoc.get(packet[1] & 0x7F)
        if payload_type == RTP.PayloadType.EVENT:
            header = RTP_HEADER + 4 * (packet[0] & 0x0F)
            if len(packet) < header + 4:
                log.debug("RTP: dropped a telephone-event without its payload")
                return
            if packet[header] >= FLASH:  # flash, or a code no keypad has
                return
        try:
            parse(packet)
        except RTP.RTPParseError as error:
            log.debug("RTP: %s", error)
        except Exception:
            log.warning("RTP: a packet pyVoIP could not parse was dropped", exc_info=True)

    client.parse_packet = checked  # type: ignore[method-assign]


def _keep_g711(client: RTP.RTPClient) -> None:
    """Store received G.711 bytes undecoded; remember which law they are in."""
    client.hotline_codec = "ulaw"  # type: ignore[attr-defined]

    def keep(packet: RTP.RTPMessage, codec: str) -> None:
        client.hotline_codec = codec  # type: ignore[attr-defined]
        client.pmin.write(packet.timestamp, packet.payload)

    client.parse_pcmu = lambda packet: keep(packet, "ulaw")  # type: ignore[method-assign]
    client.parse_pcma = lambda packet: keep(packet, "alaw")  # type: ignore[method-assign]


class HotlinePhone(VoIP.VoIPPhone):
    """VoIPPhone built on :class:`HotlineSipClient` and :class:`HotlineCall`."""

    def __init__(self, *args: Any, register: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sip = HotlineSipClient(
            self.server,
            self.port,
            self.username,
            self.password,
            phone=self,
            myIP=self.myIP,
            myPort=kwargs.get("sipPort", 5060),
            callCallback=self.callback,
            fatalCallback=self.fatal,
            register=register,
        )

    def _reply(self, request: SIP.SIPMessage, status: str, warning: str | None = None) -> None:
        """A final response to an INVITE, built from pyVoIP's 486 with another status."""
        text = self.sip.gen_busy(request).replace("486 Busy Here", status, 1)
        tag = self.sip.tagLibrary.get(request.headers["Call-ID"])  # the tag 180 Ringing gave
        if tag:
            text = re.sub(r"(?m)^(To: .*;tag=)[^\r\n]*", lambda m: m.group(1) + tag, text)
        lines = [line for line in text.split("\r\n") if not line.startswith("Warning:")]
        if warning:
            lines.insert(-3, f"Warning: {warning}")
        self.sip.out.sendto("\r\n".join(lines).encode("utf8"), (self.server, self.port))

    def _callback_MSG_Invite(self, request: SIP.SIPMessage) -> None:
        if request.headers["Call-ID"] not in self.calls and not offers_audio(request):
            log.info("SIP call %s offers no PCMU/PCMA: 488", request.headers["Call-ID"])
            self._reply(request, "488 Not Acceptable Here", '305 hotline "Incompatible media"')
            return
        super()._callback_MSG_Invite(request)

    def callback(self, request: SIP.SIPMessage) -> None:
        if request.type == SIP.SIPMessageType.MESSAGE and request.method == "CANCEL":
            call = self.calls.get(request.headers["Call-ID"])
            if call is not None and call.state == VoIP.CallState.RINGING:
                call.state = VoIP.CallState.ENDED
                self.calls.pop(request.headers["Call-ID"], None)
                self._reply(call.request, "487 Request Terminated")
            return
        super().callback(request)

    def _create_Call(self, request: SIP.SIPMessage, sess_id: int) -> None:
        call_id = request.headers["Call-ID"]
        self.calls[call_id] = HotlineCall(
            self, VoIP.CallState.RINGING, request, sess_id, self.myIP, sendmode=self.recvmode
        )


class CallAudio:
    """One call's audio in and out, as 8 kHz 16-bit signed PCM, plus its DTMF.

    This is the seam for bridging a call to an agent later: whoever holds a
    CallAudio can read what the caller says and write what they should hear.
    """

    def __init__(self, call: VoIP.VoIPCall) -> None:
        self.call = call

    @property
    def ended(self) -> bool:
        return self.call.state == VoIP.CallState.ENDED

    @property
    def last_packet_at(self) -> float | None:
        """When the caller's last RTP packet arrived (monotonic seconds), or None."""
        return getattr(self.call, "last_packet_at", None)

    def available(self) -> int:
        """Samples of caller audio that arrived and were not read yet."""
        if not self.call.RTPClients:
            return 0
        manager = self.call.RTPClients[0].pmin
        with manager.bufferLock:
            position = manager.buffer.tell()
            end = manager.buffer.seek(0, 2)
            manager.buffer.seek(position)
        return max(0, end - position)

    def read(self, max_samples: int = 1600) -> bytes:
        """What the caller said since the last read (at most ``max_samples``), never padding."""
        count = min(self.available(), max_samples)
        if count <= 0 or self.ended:
            return b""
        client = self.call.RTPClients[0]
        return g711_to_s16(client.pmin.read(count), getattr(client, "hotline_codec", "ulaw"))

    def discard_in(self) -> None:
        """Drop the caller audio that arrived and was not read (a leg that waited)."""
        while self.read(8000):
            pass

    def write(self, pcm: bytes) -> None:
        if not self.ended:
            self.call.write_audio(s16_to_u8(pcm))

    def write_u8(self, data: bytes) -> None:
        if not self.ended:
            self.call.write_audio(data)

    def queued_out(self) -> int:
        """Bytes written but not yet sent (8-bit samples: 8000 per second)."""
        if not self.call.RTPClients:
            return 0
        client = self.call.RTPClients[0]
        manager = client.pmout
        with manager.bufferLock:
            position = manager.buffer.tell()
            end = manager.buffer.seek(0, 2)
            manager.buffer.seek(position)
        return max(0, end - position)

    def flush_out(self) -> None:
        """Drop what was written but not sent yet (barge-in)."""
        for client in self.call.RTPClients:
            manager = client.pmout
            with manager.bufferLock:
                manager.buffer.seek(0, 2)

    def dtmf(self) -> str:
        out = ""
        while True:
            key = self.call.get_dtmf(1)
            if not key:
                return out
            out += key


def wait_until(predicate: Any, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
