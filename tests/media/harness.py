"""A reusable harness for WebRTC tests: real Janus and real headless Chromium in a
private network namespace, with fake camera and microphone fed from files made here,
and checks of what each side received BY CONTENT (a tone's frequency, a picture's
colour, decoded frames). See ``docs/media.md`` ("Testing media").

Typical use (see ``tests/media/test_janus.py``)::

    with netns.namespace() as ns, netns.entered(ns):
        ...start the hotline (media.janus = "embedded") on 127.0.0.1...
        async with Participants(tmp, [Fake(440, "red"), Fake(880, "blue")]) as people:
            page = await people[0].page(url)
            await wait_for(page, lambda remote: ...)
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROBE = Path(__file__).with_name("probe.js")
CHROMIUM = "/usr/bin/chromium"
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (208, 32, 32),
    "green": (32, 176, 48),
    "blue": (40, 64, 216),
    "yellow": (224, 208, 32),
}


def missing_tools() -> str | None:
    for tool in ("janus", "ffmpeg", CHROMIUM):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/test.sh installs it)"
    return None


@dataclass(frozen=True)
class Fake:
    """What one participant's fake devices send: a steady tone and a coloured picture
    with a moving white square (so that every frame differs and is encoded)."""

    hz: int
    colour: str

    def files(self, folder: Path, seconds: int = 6) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        wav = folder / f"tone-{self.hz}.wav"
        y4m = folder / f"picture-{self.colour}.y4m"
        if not wav.exists():
            subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                 f"sine=frequency={self.hz}:sample_rate=48000", "-t", str(seconds),
                 "-ac", "1", "-c:a", "pcm_s16le", str(wav)],
                check=True, timeout=60,
            )  # fmt: skip
        if not y4m.exists():
            r, g, b = COLOURS[self.colour]
            subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-y",
                 "-f", "lavfi", "-i", f"color=c=0x{r:02x}{g:02x}{b:02x}:s=320x240:r=15",
                 "-f", "lavfi", "-i", "color=c=white:s=40x40:r=15",
                 "-filter_complex", "[0][1]overlay=x='mod(n*8,280)':y=100",
                 "-t", str(seconds), "-pix_fmt", "yuv420p", str(y4m)],
                check=True, timeout=60,
            )  # fmt: skip
        return wav, y4m


def chromium_args(wav: Path, y4m: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        f"--use-file-for-fake-video-capture={y4m}",
        "--autoplay-policy=no-user-gesture-required",
        # the host's addresses go into ICE candidates as they are, not as mDNS names
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]


class Participant:
    """One Chromium with its own fake devices (fake capture is per browser process)."""

    def __init__(self, browser: Any, fake: Fake) -> None:
        self.browser = browser
        self.fake = fake
        self.pages: list[Any] = []

    async def page(self, url: str, *, locale: str = "en") -> Any:
        context = await self.browser.new_context(
            locale=locale, viewport={"width": 420, "height": 800}
        )
        await context.add_init_script(path=str(PROBE))
        page = await context.new_page()
        await page.goto(url)
        self.pages.append(page)
        return page


class Participants:
    """Starts one Chromium per fake; closes them all at the end."""

    def __init__(self, folder: Path, fakes: list[Fake]) -> None:
        self.folder = folder
        self.fakes = fakes
        self.people: list[Participant] = []
        self._pw: Any = None

    async def __aenter__(self) -> list[Participant]:
        from playwright.async_api import async_playwright

        self._pw = await async_playwright().start()
        for fake in self.fakes:
            wav, y4m = fake.files(self.folder)
            browser = await self._pw.chromium.launch(
                executable_path=CHROMIUM, args=chromium_args(wav, y4m), headless=True
            )
            self.people.append(Participant(browser, fake))
        return self.people

    async def __aexit__(self, *exc: object) -> None:
        for person in self.people:
            await person.browser.close()
        await self._pw.stop()


def colour_name(rgb: list[int] | None) -> str | None:
    """The name of the fake colour nearest to a measured mean colour (the moving white
    square lightens it a little), or None when nothing is near."""
    if not rgb:
        return None
    best, dist = None, 1e9
    for name, ref in COLOURS.items():
        d = sum((a - b) ** 2 for a, b in zip(rgb, ref, strict=True)) ** 0.5
        if d < dist:
            best, dist = name, d
    return best if dist < 90 else None


async def remotes(page: Any, ms: int = 600) -> list[dict[str, Any]]:
    """What the page shows of each remote feed: label, colour name, tone (Hz, share)."""
    found: list[dict[str, Any]] = await page.evaluate(f"window.__mediaProbe.remotes({ms})")
    for r in found:
        r["colour_name"] = colour_name(r.get("colour"))
    return found


async def inbound(page: Any) -> list[dict[str, Any]]:
    stats: list[dict[str, Any]] = await page.evaluate("window.__mediaProbe.inbound()")
    return stats


def hears(remote: dict[str, Any], hz: int, *, tolerance: float = 15) -> bool:
    """The remote stream's dominant frequency is ``hz`` and it carries most of the power."""
    tone = remote.get("tone") or {}
    return bool(abs(tone.get("hz", 0) - hz) <= tolerance and tone.get("share", 0) > 0.3)


async def wait_for(
    page: Any,
    check: Callable[[list[dict[str, Any]]], bool],
    *,
    within: float = 30,
    what: str = "",
) -> list[dict[str, Any]]:
    """Poll the page's remote feeds until ``check`` holds; fail with what was seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    seen: list[dict[str, Any]] = []
    while loop.time() < deadline:
        seen = await remotes(page)
        if check(seen):
            return seen
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what or 'media'} not received in {within}s; saw {json.dumps(seen)}")


async def frames_decoded(page: Any) -> int:
    return sum(s["framesDecoded"] for s in await inbound(page) if s["kind"] == "video")


async def until(page: Any, expression: str, *, within: float = 30) -> None:
    """Poll a JavaScript expression until it is true (``page.wait_for_function`` evaluates
    its predicate with eval, which the pages' CSP forbids; ``evaluate`` is not affected)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await page.evaluate(expression):
        if loop.time() > deadline:
            raise AssertionError(f"{expression} still false after {within}s")
        await asyncio.sleep(0.25)
