"""An HTTP/1.1 client that sends a request's body in timed pieces over a real socket.

On a real network a body of a kilobyte or more arrives in several TCP segments;
on loopback it arrives in one unless something holds it back. This client
writes the head and each piece separately, with ``TCP_NODELAY`` and a pause
between them, so the server reads the body in as many reads as there are
pieces. With ``chunked=True`` it sends no ``Content-Length`` (chunked transfer
encoding, one chunk per piece), as a proxy may.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def split(body: bytes, pieces: int) -> list[bytes]:
    size = -(-len(body) // pieces)
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


async def send_in_pieces(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    pieces: int = 2,
    gap: float = 0.05,
    chunked: bool = False,
    stop_after: int | None = None,
    answer_within: float = 30,
) -> Answer:
    """Send ``body`` in ``pieces`` parts ``gap`` seconds apart and read the whole answer.

    ``stop_after`` sends only that many pieces and then waits for the answer (a
    client that stalls).
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = {"Host": parts.netloc, "Connection": "close", **(headers or {})}
    if chunked:
        head["Transfer-Encoding"] = "chunked"
    else:
        head["Content-Length"] = str(len(body))
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items()), "", ""]
    try:
        writer.write("\r\n".join(lines).encode("latin-1"))
        chunks = split(body, pieces)
        for index, piece in enumerate(chunks):
            if stop_after is not None and index >= stop_after:
                break
            if index:
                await asyncio.sleep(gap)
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            await writer.drain()
        if chunked and stop_after is None:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        raw = await asyncio.wait_for(_read_answer(reader), answer_within)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return raw


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    status_line = (await reader.readline()).decode("latin-1")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := (await reader.readline()).decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readline()).strip() or b"0", 16):
            body += await reader.readexactly(size)
            await reader.readline()
    else:
        body = await reader.read()
    return Answer(status, headers, body)
