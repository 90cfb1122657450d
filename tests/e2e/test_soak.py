"""A soak: SMS intake, web chats and an agent's staff websocket under steady load while the
server and a worker are killed (SIGKILL) and restarted at random points. At the end the
counts reconcile: every acknowledged text is stored once, each SMS made one ticket and one
receipt that went out, every chat message is stored once, and no job is stuck.

Bounded in time and count. In the suite it runs ``CALLCENTER_SOAK_SECONDS`` (20 by
default) with a kill every few seconds; ``CALLCENTER_SOAK_SECONDS=300`` is the long run
(docs/security.md), for a release or after a change to the intake, the inbox or the jobs.
The kills follow ``CALLCENTER_SOAK_SEED`` (random by default; printed, to repeat a run).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_cli import free_port, run

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("CALLCENTER_SOAK_SECONDS", "20"))
SEED = int(os.environ.get("CALLCENTER_SOAK_SEED", str(random.randrange(10**6))))
SMS_CLIENTS = 4
CHATS = 3
REPORTS = ["小区路灯坏了，晚上很黑", "港湾路垃圾三天没人清运"]  # each makes a ticket


@dataclass
class Tally:
    sms_acked: set[str] = field(default_factory=set)
    chat_acked: set[str] = field(default_factory=set)
    staff_events: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


class Hotline:
    """``callcenter serve`` and ``callcenter worker`` on one SQLite database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        env.update(
            CALLCENTER_DATA_DIR=str(folder / "data"),
            CALLCENTER_NOTIFY__QUIET_HOURS="",  # receipts and notices go out at any hour
            CALLCENTER_JOBS__LEASE_SECONDS="2",
            CALLCENTER_JOBS__POLL_SECONDS="0.2",
            CALLCENTER_SECURITY__CHAT_CONNECTIONS_PER_IP="100000",
            CALLCENTER_MEDIA__JANUS="off",  # no rooms here: the server starts sooner
        )
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        command = ["serve", "--port", str(self.port)] if name == "server" else ["worker"]
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "callcenter.cli", *command],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()

    async def up(self, session: aiohttp.ClientSession, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                async with session.get(self.url + "/api/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError("the server did not come up")


async def sms_client(hotline: Hotline, tally: Tally, n: int, stop: asyncio.Event) -> None:
    """A provider delivering texts, retrying each with its id until it is acknowledged."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        i = 0
        while not stop.is_set():
            sid = f"SOAK-{n}-{i}"
            sms = {"from": f"+8613{n}{i:08d}", "text": REPORTS[i % len(REPORTS)], "id": sid}
            while not stop.is_set():
                try:
                    url = hotline.url + "/channels/simulated/sms"
                    async with session.post(url, json=sms) as response:
                        if response.status == 202:
                            tally.sms_acked.add(sid)
                            break
                        tally.errors[f"sms {response.status}"] += 1
                except (aiohttp.ClientError, TimeoutError):
                    tally.errors["sms unreachable"] += 1
                await asyncio.sleep(0.2)
            i += 1
            await asyncio.sleep(0.05)


async def chat_client(hotline: Hotline, tally: Tally, n: int, stop: asyncio.Event) -> None:
    """A citizen in the widget: reconnects with its session, resends what was not acked."""
    session_token: str | None = None
    pending: list[str] = []
    i = 0
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            try:
                async with http.ws_connect(hotline.url + "/chat/ws", heartbeat=5) as ws:
                    await ws.send_json({"type": "hello", "session": session_token})
                    welcome = await ws.receive_json(timeout=10)
                    session_token = welcome["session"]
                    while not stop.is_set():
                        if not pending:
                            pending.append(f"c{n}-{i}")
                            i += 1
                        for cid in pending:
                            await ws.send_json(
                                {"type": "message", "id": cid, "text": f"你好 {cid}"}
                            )
                        deadline = time.monotonic() + 5
                        while pending and time.monotonic() < deadline:
                            frame = await ws.receive_json(timeout=5)
                            if frame.get("type") == "ack" and frame["id"] in pending:
                                pending.remove(frame["id"])
                                tally.chat_acked.add(f"{session_token}:{frame['id']}")
                        await asyncio.sleep(0.3)
            except (aiohttp.ClientError, TimeoutError, TypeError, ValueError, KeyError):
                tally.errors["chat reconnect"] += 1
                await asyncio.sleep(0.3)


async def staff_client(hotline: Hotline, tally: Tally, stop: asyncio.Event) -> None:
    """An agent's live feed: resumes its queue after a reconnect."""
    queue_id = ""
    last = 0
    headers = {"Authorization": "Bearer demo-agent1"}
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            try:
                url = f"{hotline.url}/ui/ws?queue_id={queue_id}&last_event_id={last}"
                async with http.ws_connect(url, headers=headers, heartbeat=5) as ws:
                    while not stop.is_set():
                        frame = await ws.receive_json(timeout=2)
                        if frame.get("type") == "hello":
                            queue_id = frame["queue_id"]
                        elif frame.get("type") == "event":
                            tally.staff_events += 1
                            last = max(last, int(frame.get("id", 0) or 0))
            except TimeoutError:
                continue
            except (aiohttp.ClientError, TypeError, ValueError, KeyError):
                tally.errors["staff reconnect"] += 1
                await asyncio.sleep(0.3)


async def killer(hotline: Hotline, tally: Tally, rng: random.Random, stop: asyncio.Event) -> None:
    """Kills at random points, a server that is still starting up included."""
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(2.0, 5.0))
        if stop.is_set():
            return
        victim = rng.choice(["server", "worker"])
        hotline.kill(victim)
        tally.kills[victim] += 1
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        hotline.start(victim)


async def soak(hotline: Hotline, tally: Tally) -> None:
    rng = random.Random(SEED)
    hotline.start("server")
    hotline.start("worker")
    async with aiohttp.ClientSession() as session:
        await hotline.up(session)
    stop = asyncio.Event()
    tasks = [
        *(asyncio.create_task(sms_client(hotline, tally, n, stop)) for n in range(SMS_CLIENTS)),
        *(asyncio.create_task(chat_client(hotline, tally, n, stop)) for n in range(CHATS)),
        asyncio.create_task(staff_client(hotline, tally, stop)),
        asyncio.create_task(killer(hotline, tally, rng, stop)),
    ]
    await asyncio.sleep(SECONDS)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)


def settled(db: Path) -> tuple[bool, dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        inbox = dict(conn.execute("SELECT state, count(*) FROM inbox GROUP BY state").fetchall())
        jobs = dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        due = conn.execute(
            "SELECT count(*) FROM jobs WHERE state IN ('pending', 'running')"
            " AND run_at <= strftime('%Y-%m-%dT%H:%M:%f', 'now', '+1 minute')"
        ).fetchone()[0]
    return inbox.get("pending", 0) == 0 and due == 0, {"inbox": inbox, "jobs": jobs, "due": due}


def test_counts_reconcile_after_kills_under_steady_load(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    run(tmp_path, "demo-data", "--tickets", "0")
    hotline = Hotline(tmp_path)
    tally = Tally()
    db = tmp_path / "data" / "callcenter.db"
    try:
        asyncio.run(soak(hotline, tally))
        for name, process in hotline.processes.items():  # whatever the last kill left down
            if process.poll() is not None:
                hotline.start(name)

        async def server_up() -> None:
            async with aiohttp.ClientSession() as session:
                await hotline.up(session, 60)

        asyncio.run(server_up())
        deadline = time.monotonic() + 120
        while not (state := settled(db))[0]:
            assert time.monotonic() < deadline, f"the work did not settle: {state[1]}"
            time.sleep(0.5)
    finally:
        hotline.stop()
    summary = {
        "seed": SEED,
        "seconds": SECONDS,
        "kills": dict(tally.kills),
        "sms": len(tally.sms_acked),
        "chat": len(tally.chat_acked),
        "staff_events": tally.staff_events,
        "errors": dict(tally.errors),
        "end": settled(db)[1],
    }
    print(json.dumps(summary, ensure_ascii=False))
    assert sum(tally.kills.values()) >= 2 and tally.sms_acked and tally.chat_acked
    assert tally.staff_events > 0, "the agent's live feed saw the tickets"

    with sqlite3.connect(db) as conn:
        inbound = Counter(
            row[0]
            for row in conn.execute(
                "SELECT provider_id FROM messages WHERE direction = 'in' AND channel = 'sms'"
                " AND provider_id LIKE 'SOAK-%'"
            )
        )
        per_conversation = conn.execute(
            """
            SELECT m.provider_id,
                   (SELECT count(*) FROM tickets t WHERE t.conversation_id = m.conversation_id),
                   (SELECT count(*) FROM messages r WHERE r.conversation_id = m.conversation_id
                      AND r.direction = 'out' AND r.kind = 'auto_reply'),
                   (SELECT count(*) FROM messages r WHERE r.conversation_id = m.conversation_id
                      AND r.direction = 'out' AND r.kind = 'auto_reply' AND r.status = 'sent')
            FROM messages m WHERE m.direction = 'in' AND m.provider_id LIKE 'SOAK-%'
            """
        ).fetchall()
        chat_ids = Counter(
            row[0].split(":", 1)[1]
            for row in conn.execute(
                "SELECT provider_id FROM messages WHERE channel = 'webchat' AND direction = 'in'"
            )
        )
        stuck = conn.execute(
            "SELECT count(*) FROM jobs WHERE state IN ('running', 'dead')"
        ).fetchone()[0]
        failed = conn.execute("SELECT count(*) FROM inbox WHERE state != 'done'").fetchone()[0]
    assert set(inbound) >= tally.sms_acked, "an acknowledged SMS was lost"
    assert max(inbound.values()) == 1, "an SMS was stored twice"
    bad = [row for row in per_conversation if row[1:] != (1, 1, 1)]
    assert not bad, f"not one ticket and one receipt that went out: {bad[:5]}"
    acked_chat = Counter(key.split(":", 1)[1] for key in tally.chat_acked)
    assert set(chat_ids) >= set(acked_chat), "an acknowledged chat message was lost"
    assert max(chat_ids.values()) == 1, "a chat message was stored twice"
    assert stuck == 0 and failed == 0
