"""Cluster benchmark: handled messages/s with 1, 2, 4 Celery workers on PostgreSQL, beside
the embedded single process on SQLite and on PostgreSQL, in the same run.

Each configuration gets the same two loads of simulated inbound SMS (the intake
benchmark's texts, ``bench/intake.py``): a burst of ``--n`` from ``--concurrency``
clients as fast as they are answered, then a fixed rate of ``--rate`` a second for
``--seconds``. A text is *handled* when the inbox has made it a conversation (and a
ticket, routed, where it says what is wrong) and queued its receipt; *sent* when the
receipt's delivery job is done. Figures, from the database's own timestamps:
handled/s and stored->handled p50/p99, stored->sent p99, for each load; and the CPU the
hotline's processes used per handled message (their user+system time over the run,
read from ``/proc``; PostgreSQL's own processes are not counted), so that the figures
carry to machines with more cores.

- ``embedded-sqlite``: ``callcenter serve`` alone (in-process jobs), SQLite (FULL);
- ``embedded-pg``: the same on PostgreSQL;
- ``celery-N``: a web node that only answers (``jobs.driver = "none"``) and N
  ``callcenter worker --celery`` processes (each: the inbox, the relay, 8 job threads),
  Redis as the broker, PostgreSQL.

    .venv/bin/python bench/cluster.py [--n 1000] [--rate 50] [--seconds 10] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import PYTHON, closed_loop, free_port, open_loop, python_env, start, stop
from intake import body

PG = os.environ.get(
    "CALLCENTER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("CALLCENTER_TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/") + "/8"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User+system time of these processes and their children, from /proc."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
        total += (utime + stime + cutime + cstime) / TICKS
    return total


@dataclass
class Figures:
    count: int
    seconds: float
    handled: list[float]
    sent: list[float]

    def line(self, name: str) -> str:
        def pct(values: list[float], p: float) -> float:
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

        return (
            f"{name:16} {self.count:5d} msgs {self.count / self.seconds:7.1f} handled/s  "
            f"stored->handled p50 {pct(self.handled, 50):8.1f} ms"
            f" p99 {pct(self.handled, 99):8.1f} ms"
            f"  stored->sent p99 {pct(self.sent, 99):8.1f} ms"
        )


_SAME_TX = (
    "FROM messages r WHERE r.conversation_id = m.conversation_id"
    " AND r.direction = 'out' AND r.created_at = m.created_at"
)


class Store:
    """Reads the figures of one configuration from its database."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _query(self, query: str) -> list[tuple[Any, ...]]:
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.split(":///", 1)[1]) as db:
                found = db.execute(query).fetchall()
            return [
                tuple(datetime.fromisoformat(v) if isinstance(v, str) else v for v in r)
                for r in found
            ]

        async def read() -> list[Any]:
            conn = await asyncpg.connect(self.url.replace("+asyncpg", ""))
            try:
                return [tuple(r) for r in await conn.fetch(query)]
            finally:
                await conn.close()

        return asyncio.run(read())

    def wait(self, prefix: str, expected: int, limit: float = 600) -> Figures:
        """Until every text is handled and every delivery due is done (bounded)."""
        deadline = time.monotonic() + limit
        while True:
            # a receipt is written in the transaction that handled its text (same "now")
            rows = self._query(
                "SELECT i.received_at, i.processed_at, (SELECT min(j.finished_at) "
                + _SAME_TX.replace(
                    "WHERE", "JOIN jobs j ON j.key = 'deliver:' || r.id AND j.state = 'done' WHERE"
                )
                + ") FROM inbox i JOIN messages m ON m.id = i.message_id"
                f" WHERE i.provider_id LIKE '{prefix}-%' AND i.state = 'done'"
            )
            now = datetime.now().astimezone().isoformat(sep=" ")
            due = self._query(
                "SELECT count(*) FROM jobs WHERE kind = 'message.deliver'"
                f" AND state IN ('pending', 'running') AND run_at <= '{now}'"
            )[0][0]
            if len(rows) >= expected and not due:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(rows)}/{expected} handled, {due} deliveries due")
            time.sleep(0.3)
        sent = [(r[2] - r[0]).total_seconds() for r in rows if r[2] is not None]
        return Figures(
            len(rows),
            (max(r[1] for r in rows) - min(r[0] for r in rows)).total_seconds(),
            [(r[1] - r[0]).total_seconds() for r in rows],
            sent or [float("nan")],
        )


def pg_database() -> str:
    name = f"bench_cluster_{uuid.uuid4().hex[:8]}"

    async def make() -> None:
        conn = await asyncpg.connect(PG.replace("+asyncpg", ""))
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(make())
    return PG.rsplit("/", 1)[0] + f"/{name}"


def drop(url: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(PG.replace("+asyncpg", ""))
        await conn.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        await conn.close()

    asyncio.run(go())


def run(name: str, folder: Path, url: str, workers: int, args: argparse.Namespace) -> list[str]:
    data = folder / name
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = python_env(
        CALLCENTER_DATA_DIR=str(data),
        CALLCENTER_DATABASE_URL=url,
        CALLCENTER_MEDIA__JANUS="off",
        CALLCENTER_UI="[]",
        CALLCENTER_ACD__ENABLED="false",
    )
    cli = [PYTHON, "-m", "callcenter.cli"]
    subprocess.run([*cli, "migrate"], cwd=folder, env=env, check=True, capture_output=True)
    subprocess.run(
        [*cli, "demo-data", "--tickets", "0"], cwd=folder, env=env, check=True, capture_output=True
    )
    processes = []
    web_env = env
    if workers:
        cluster = {
            "CALLCENTER_REDIS_URL": REDIS,
            "CALLCENTER_REDIS_PREFIX": queue,
            "CALLCENTER_JOBS__CELERY_QUEUE": queue,
        }
        web_env = {**env, **cluster, "CALLCENTER_JOBS__DRIVER": "none"}
        for n in range(workers):
            processes.append(
                subprocess.Popen(
                    [
                        *cli,
                        "worker",
                        "--celery",
                        "--",
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel=WARNING",
                        "-n",
                        f"b{n}@%h",
                    ],
                    cwd=folder,
                    env={**env, **cluster, "CALLCENTER_JOBS__DRIVER": "celery"},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    port = free_port()
    server = start(
        [*cli, "serve", "--port", str(port)],
        cwd=folder,
        env=web_env,
        health=f"http://127.0.0.1:{port}/api/health",
    )
    processes.append(server)
    time.sleep(2 if workers else 0.2)  # the workers' Celery consumers come up
    target = f"http://127.0.0.1:{port}/channels/simulated/sms"
    store = Store(url)
    pids = [p.pid for p in processes]
    try:
        cpu0 = cpu_seconds(pids)
        asyncio.run(closed_loop(target, body(f"{name}b"), args.n, args.concurrency))
        burst = store.wait(f"{name}b", args.n)
        cpu1 = cpu_seconds(pids)
        steady_load = asyncio.run(open_loop(target, body(f"{name}s"), args.rate, args.seconds))
        steady = store.wait(f"{name}s", steady_load.count)
        cpu2 = cpu_seconds(pids)
    finally:
        for process in processes:
            stop(process)
    return [
        burst.line(f"{name} burst") + f"  cpu {1000 * (cpu1 - cpu0) / burst.count:6.1f} ms/msg",
        steady.line(f"{name} {args.rate:g}/s")
        + f"  cpu {1000 * (cpu2 - cpu1) / steady.count:6.1f} ms/msg",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    print(
        f"cores: {os.cpu_count()}  burst {args.n} msgs x{args.concurrency}, "
        f"then {args.rate:g}/s for {args.seconds:g} s"
    )
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines += run(
            "embedded-sqlite", folder, f"sqlite+aiosqlite:///{folder}/embedded.db", 0, args
        )
        for line in lines:
            print(line, flush=True)
        for name, workers in [("embedded-pg", 0), *((f"celery-{n}", n) for n in args.workers)]:
            url = pg_database()
            try:
                lines += run(name, folder, url, workers, args)
            finally:
                drop(url)
            for line in lines[-2:]:
                print(line, flush=True)
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
