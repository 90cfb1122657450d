"""A private network namespace for WebRTC tests, entered by the test's own thread.

ICE (Chromium's and Janus's libnice) ignores loopback, and libnice gathers no
candidate at all in a namespace with only ``lo``. So the namespace gets a veth
pair whose two ends both stay inside it, with addresses from 198.18.0.0/15 (the
range set aside for benchmarking networks): ICE has real interfaces to use, and
nothing routes out, since the namespace has no other link.

:func:`entered` switches the calling thread into the namespace with ``setns``;
sockets opened and processes started from that thread afterwards (the hotline's
server, Janus, Playwright's driver and its Chromium) are all inside. Needs root
and ``ip`` (iproute2).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
ADDRESSES = ("198.18.0.1", "198.18.0.2")


def available() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _setns(path: str) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    """Make a namespace with ``lo`` and the veth pair up; delete it afterwards."""
    name = f"hotline-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        ns = ("-n", name)
        _ip(*ns, "link", "set", "lo", "up")
        _ip(*ns, "link", "add", "media0", "type", "veth", "peer", "name", "media1")
        for dev, address in zip(("media0", "media1"), ADDRESSES, strict=True):
            _ip(*ns, "addr", "add", f"{address}/30", "dev", dev)
            _ip(*ns, "link", "set", dev, "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the calling thread inside namespace ``name`` until the block ends."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(f"/run/netns/{name}")
        try:
            yield
        finally:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "could not go back to the first namespace")
    finally:
        os.close(home)
