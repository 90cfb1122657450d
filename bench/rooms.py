"""K simultaneous mediation rooms of three fake participants, beside bare Janus rooms.

For each K: first a baseline of K rooms made by hand on the same Janus through its admin
API, joined by a bare page straight on Janus's WebSocket (no hotline, no relay, no
mediation logic); then K mediations through the hotline: a mediator on the staff page and
two parties who open their link, type their PIN, consent and are admitted. Three Chromium
processes (one per fake camera and microphone) each hold one page per room. Printed:

- rooms held: every participant receives both others' video above ``--fps-floor`` over a
  ``--hold`` second window (frames decoded, from getStats);
- join p50/p99: from the page being opened (the link, for the hotline) to both others'
  first decoded frame;
- CPU per room: CPU seconds per wall second of Janus, of the hotline's process and of all
  browsers, divided by K.

Run as root (it makes a network namespace, see tests/media/netns.py):

    sudo .venv/bin/python bench/rooms.py --rooms 1 2 3 --hold 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web
from sqlalchemy import select

from callcenter.actions import mediations as med
from callcenter.actions.staff import log_in
from callcenter.actions.tickets import TicketDraft, create_ticket, take_step
from callcenter.bootstrap import build_runtime, create_app
from callcenter.config import Settings
from callcenter.domain.workflow import Step
from callcenter.media.janus import VIDEOROOM
from callcenter.store.migrate import upgrade
from callcenter.store.tables import conversations, messages, users
from tests.conftest import load_test_city
from tests.e2e.test_cli import free_port
from tests.helpers import actor
from tests.media import harness, netns

FAKES = [harness.Fake(440, "red"), harness.Fake(660, "green"), harness.Fake(880, "blue")]
PAGES = Path(__file__).resolve().parents[1] / "tests" / "media" / "pages"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int], *, descendants: bool = True, skip: tuple[int, ...] = ()) -> float:
    """utime + stime of processes (and their descendants, but not those in ``skip``)."""
    total = 0.0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen or pid in skip:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if descendants:
            todo.extend(int(c) for c in children)
    return total


def browser_pids() -> list[int]:
    """The Chromium processes started by Playwright in this run (children of this one)."""
    me = os.getpid()
    kids = Path(f"/proc/{me}/task/{me}/children").read_text().split()
    return [int(k) for k in kids]


async def first_frames(page: Any, started: float, limit: float) -> float | None:
    """Seconds from ``started`` until two remote videos have a decoded picture."""
    while time.monotonic() - started < limit:
        n = await page.evaluate(
            "Array.from(document.querySelectorAll('video[data-feed]'))"
            ".filter(v => v.videoWidth > 0).length"
        )
        if n >= 2:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def video_frames(page: Any) -> dict[str, int]:
    stats = await harness.inbound(page)
    return {
        s["trackIdentifier"] or str(i): s["framesDecoded"]
        for i, s in enumerate(stats)
        if s["kind"] == "video"
    }


async def hold(pages_by_room: list[list[Any]], seconds: float, floor: float) -> tuple[int, float]:
    """Rooms in which every page decoded both others' video at ``floor`` fps or more."""
    before = [[await video_frames(p) for p in room] for room in pages_by_room]
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    after = [[await video_frames(p) for p in room] for room in pages_by_room]
    span = time.monotonic() - t0
    held, rates = 0, []
    for room_before, room_after in zip(before, after, strict=True):
        ok = True
        for b, a in zip(room_before, room_after, strict=True):
            fps = sorted((a[k] - b.get(k, 0)) / span for k in a)[-2:]
            rates.extend(fps)
            ok = ok and len(fps) == 2 and min(fps) >= floor
        held += ok
    return held, (statistics.mean(rates) if rates else 0.0)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Run:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        db = self.folder / "bench.db"
        await upgrade(f"sqlite+aiosqlite:///{db}")
        port = free_port()
        self.settings = Settings(
            data_dir=self.folder / "data",
            database_url=f"sqlite+aiosqlite:///{db}",
            port=port,
            channels=["channels.simulated:SimulatedSms"],
            jobs={"driver": "none"},
            media={"janus": "embedded", "health_seconds": 2},
            mediation={"seat_timeout_seconds": 120},
        )
        self.rt = build_runtime(self.settings)
        app = create_app(self.settings, runtime=self.rt)
        app.router.add_static("/test-media/", PAGES)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        assert self.rt.media is not None  # started with the server
        # the bare baseline's page talks to Janus itself, not through the hotline's relay
        janus = urlsplit(self.rt.media.nodes["local"].client.node.ws_url)
        self.settings.security.connect_src.append(f"{janus.scheme}://{janus.netloc}")
        self.url = f"http://127.0.0.1:{port}"
        await load_test_city(self.rt)
        self.agent = await actor(self.rt, "agent1")
        kind = self.rt.directory.category_by_code["neighbour_dispute"].department_kind
        self.dept = next(d for d in self.rt.directory.departments if d.kind == kind)
        async with self.rt.db.read() as conn:
            name = (
                await conn.execute(
                    select(users.c.username).where(users.c.department_id == self.dept.id)
                )
            ).scalar()
        self.mediator = await actor(self.rt, name)
        await med.set_mediator(
            self.rt, self.mediator.id, languages=["zh-CN"], actor=await actor(self.rt, "supervisor")
        )
        self.session = await log_in(self.rt, name, "demo12345")
        self.people = await harness.Participants(self.folder / "fake", FAKES).__aenter__()
        self.contexts: list[Any] = []
        for i, person in enumerate(self.people):
            context = await person.browser.new_context(viewport={"width": 640, "height": 480})
            if i == 0:
                await context.add_cookies(
                    [{"name": "hotline_session", "value": self.session.token, "url": self.url}]
                )
            await context.add_init_script(path=str(harness.PROBE))
            self.contexts.append(context)
        self.phone = 0

    @property
    def janus_pid(self) -> int:
        assert self.rt.media is not None and self.rt.media.process is not None
        pid = self.rt.media.process.pid
        assert pid is not None
        return pid

    async def bare(self, k: int) -> dict[str, Any]:
        """K rooms made by hand on the same Janus, joined straight on its WebSocket."""
        assert self.rt.media is not None
        client = self.rt.media.nodes["local"].client
        ws = client.node.ws_url
        rooms, joins, pages = [], [], []
        opened: list[tuple[Any, float]] = []
        for _ in range(k):
            room = secrets.randbits(40)
            tokens = [secrets.token_urlsafe(16) for _ in FAKES]
            secret, pin = secrets.token_urlsafe(12), "4321"
            await client.create_room(
                room, secret=secret, pin=pin, description="bare", allowed=tokens
            )
            for token in tokens:
                await client.add_token(token, [VIDEOROOM])
            rooms.append((room, secret, tokens))
            room_pages = []
            for context, token, fake in zip(self.contexts, tokens, FAKES, strict=True):
                query = urlencode(
                    {"server": ws, "token": token, "room": room, "pin": pin, "display": fake.colour}
                )
                page = await context.new_page()
                started = time.monotonic()
                await page.goto(f"{self.url}/test-media/bare.html?{query}")
                opened.append((page, started))
                room_pages.append(page)
            pages.append(room_pages)
        for page, started in opened:
            joins.append(await first_frames(page, started, 60))
        return await self.measure(k, pages, joins, cleanup=lambda: self.drop_bare(rooms, pages))

    async def drop_bare(self, rooms: list[Any], pages: list[list[Any]]) -> None:
        assert self.rt.media is not None
        client = self.rt.media.nodes["local"].client
        for room_pages in pages:
            for page in room_pages:
                await page.close()
        for room, secret, tokens in rooms:
            await client.destroy_room(room, secret=secret)
            for token in tokens:
                await client.remove_token(token)

    async def mediation(self) -> tuple[int, list[tuple[str, str]]]:
        """A scheduled, started mediation with two parties; their links and PINs."""
        ticket = await create_ticket(
            self.rt,
            TicketDraft(description="邻里纠纷，需要调解", category="neighbour_dispute"),
            actor=self.agent,
        )
        await take_step(
            self.rt, ticket["id"], Step.DISPATCH, actor=self.agent, department_id=self.dept.id
        )
        phones = []
        for _ in range(2):
            self.phone += 1
            phones.append(f"+86139{self.phone:08d}")
        case = await med.propose_mediation(
            self.rt, ticket["id"], actor=self.agent, mediator_id=self.mediator.id,
            parties=[med.PartyDraft("甲方", phones[0], "applicant"),
                     med.PartyDraft("乙方", phones[1], "respondent")],
        )  # fmt: skip
        await med.schedule_mediation(
            self.rt, case["id"], datetime.now(UTC) + timedelta(minutes=5), actor=self.mediator
        )
        await med.start_session(self.rt, case["id"], actor=self.mediator)
        links = []
        async with self.rt.db.read() as conn:
            for phone in phones:
                body = (
                    await conn.execute(
                        select(messages.c.body)
                        .join(conversations, conversations.c.id == messages.c.conversation_id)
                        .where(conversations.c.address == phone)
                    )
                ).scalar()
                link = re.search(r"/m/([0-9]+-[0-9a-f]+-[0-9a-f]+)", body)
                pin = re.search(r"(?:PIN: |密码：)(\d{6})", body)
                assert link and pin
                links.append((link.group(1), pin.group(1)))
        return case["id"], links

    async def hotline(self, k: int) -> dict[str, Any]:
        """K mediations: the mediator's page, and two parties through link, PIN, consent."""
        cases = [await self.mediation() for _ in range(k)]
        self.running.add(asyncio.create_task(self.admit([mid for mid, _ in cases])))
        pages, opened = [], []
        for mediation_id, links in cases:
            room_pages = []
            mpage = await self.contexts[0].new_page()
            started = time.monotonic()
            await mpage.goto(f"{self.url}/ui/mediations/{mediation_id}")
            opened.append((mpage, started))
            room_pages.append(mpage)
            for context, (link, pin) in zip(self.contexts[1:], links, strict=True):
                page = await context.new_page()
                started = time.monotonic()
                await page.goto(f"{self.url}/m/{link}")
                await page.fill("#pin", pin)
                await page.click("button[type=submit]")
                await page.wait_for_selector("#consent-yes")
                await page.click("#consent-yes")
                opened.append((page, started))
                room_pages.append(page)
            pages.append(room_pages)
        joins = [await first_frames(page, started, 60) for page, started in opened]
        for task in self.running:
            task.cancel()

        async def cleanup() -> None:
            for mediation_id, _ in cases:
                await med.end_session(self.rt, mediation_id, "none", actor=self.mediator)
            for room_pages in pages:
                for page in room_pages:
                    await page.close()

        return await self.measure(k, pages, joins, cleanup=cleanup)

    async def admit(self, ids: list[int]) -> None:
        """The mediators: admit whoever waits, as soon as they wait."""
        admitted: set[int] = set()
        while True:
            for mediation_id in ids:
                async with self.rt.db.read() as conn:
                    parties = await med.load_parties(conn, mediation_id)
                for p in parties:
                    if p.presence == "waiting" and p.id not in admitted:
                        await med.admit_party(self.rt, p.id, actor=self.mediator)
                        admitted.add(p.id)
            await asyncio.sleep(0.2)

    async def measure(
        self, k: int, pages: list[list[Any]], joins: list[float | None], *, cleanup: Any
    ) -> dict[str, Any]:
        janus = self.janus_pid

        def sample() -> dict[str, float]:
            return {
                "janus": cpu_seconds([janus]),
                # this process: the hotline's server, and Playwright's client (light)
                "hotline": cpu_seconds([os.getpid()], descendants=False),
                "browsers": cpu_seconds(browser_pids(), skip=(janus,)),
            }

        await asyncio.sleep(2)  # let encoders settle after the last join
        cpu0 = sample()
        t0 = time.monotonic()
        held, mean_fps = await hold(pages, self.args.hold, self.args.fps_floor)
        span = time.monotonic() - t0
        cpu = {name: (value - cpu0[name]) / span / k for name, value in sample().items()}
        await cleanup()
        ok = [j for j in joins if j is not None]
        return {
            "k": k,
            "held": held,
            "joined": len(ok),
            "participants": len(joins),
            "p50": pct(ok, 0.5),
            "p99": pct(ok, 0.99),
            "fps": mean_fps,
            "cpu": cpu,
        }

    async def stop(self) -> None:
        for person in self.people:
            await person.browser.close()
        await self.runner.cleanup()


def line(name: str, r: dict[str, Any]) -> str:
    c = r["cpu"]
    return (
        f"{name:9} K={r['k']:<2} held {r['held']}/{r['k']}"
        f"  joined {r['joined']}/{r['participants']}"
        f"  join p50 {r['p50']:.2f}s p99 {r['p99']:.2f}s  mean fps {r['fps']:.1f}"
        f"  CPU/room janus {c['janus']:.2f} hotline {c['hotline']:.2f} browsers {c['browsers']:.2f}"
    )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(args, Path(tmp))
        await run.start()
        try:
            print(f"{os.cpu_count()} cores; hold {args.hold}s; fps floor {args.fps_floor}; "
                  f"fake video 320x240 at 15 fps; CPU in cores per room")  # fmt: skip
            for k in args.rooms:
                print(line("bare", await run.bare(k)), flush=True)
                print(line("hotline", await run.hotline(k)), flush=True)
        finally:
            await run.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hold", type=float, default=8)
    parser.add_argument("--fps-floor", type=float, default=10)
    args = parser.parse_args()
    why = netns.available() or harness.missing_tools()
    if why:
        sys.exit(why)
    with netns.namespace() as name, netns.entered(name):
        asyncio.run(main(args))
