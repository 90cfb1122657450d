"""Intake benchmark: simulated inbound SMS through the HTTP intake path.

Starts the hotline (``callcenter serve``, SQLite, demo directory) and, in the
same run, the bare baseline (``bench/baseline_server.py``: one INSERT into
SQLite per request). Both get the same load from this process:

- throughput: N messages from C concurrent clients, as fast as they are answered;
- latency: a fixed rate (200 messages/s by default) for a few seconds.

The hotline answers a webhook once the text is stored in its inbox (as the
baseline answers once its row is stored); the inbox then hands each text to
the intake: citizen, conversation, message, ticket routed and dispatched, the
receipt queued and sent. After each load the benchmark waits until every text
is handled and reports, from the inbox's own timestamps, how fast they were
handled and how long each waited between stored and handled. Then it checks
that every message is stored with its conversation and counts the tickets.

    .venv/bin/python bench/intake.py [--n 2000] [--concurrency 16] [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import PYTHON, Result, closed_loop, free_port, open_loop, python_env, start, stop

TEXTS = [
    "小区路灯坏了，晚上很黑",
    "港湾路垃圾三天没人清运",
    "楼下烧烤店太吵，影响休息",
    "家里停水了，也没有接到通知",
    "There is a pothole on Hubin Road",
    "你好，我想咨询一下",  # no category: waits for an agent
    "公司拖欠工资三个月",
    "物业不修电梯",
]


def body(run: str) -> Any:
    def make(i: int) -> dict[str, Any]:
        # a citizen writes a few times: 1 in 4 messages comes from a number seen before
        phone = f"+86139{(i // 4 if i % 4 == 0 else i) % 10**8:08d}"
        return {"from": phone, "text": TEXTS[i % len(TEXTS)], "id": f"{run}-{i}"}

    return make


@dataclass
class Handled:
    """How the texts of one load were handled, from the inbox's timestamps."""

    count: int
    seconds: float  # from the first stored to the last handled
    waits: list[float]  # stored -> handled, per text

    def line(self, name: str) -> str:
        ordered = sorted(self.waits)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

        return (
            f"{name:10} {self.count:6d} msgs  {self.count / self.seconds:8.1f} msgs/s  "
            f"stored->handled p50 {pct(50):7.2f} ms  p99 {pct(99):7.2f} ms"
        )


def handled(db_path: Path, prefix: str, expected: int, wait: float = 600) -> Handled:
    """Wait (bounded) until the inbox has handled every text of one load."""
    deadline = time.monotonic() + wait
    while True:
        with sqlite3.connect(db_path) as db:
            rows = db.execute(
                "SELECT received_at, processed_at FROM inbox"
                " WHERE provider_id LIKE ? AND state = 'done'",
                (prefix + "-%",),
            ).fetchall()
        if len(rows) >= expected:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(rows)}/{expected} handled after {wait} s")
        time.sleep(0.2)
    stored = [datetime.fromisoformat(r[0]) for r in rows]
    done = [datetime.fromisoformat(r[1]) for r in rows]
    return Handled(
        len(rows),
        (max(done) - min(stored)).total_seconds(),
        [(d - s).total_seconds() for s, d in zip(stored, done, strict=True)],
    )


def run_load(
    url: str, run: str, args: argparse.Namespace, db_path: Path | None = None
) -> tuple[Result, Result, Handled | None, Handled | None]:
    """The two loads; with ``db_path`` (the hotline's), each waits until its texts are handled."""

    async def go() -> tuple[Result, Result, Handled | None, Handled | None]:
        throughput = await closed_loop(url, body(run + "t"), args.n, args.concurrency)
        burst = (
            None
            if db_path is None
            else await asyncio.to_thread(handled, db_path, run + "t", args.n)
        )
        latency = await open_loop(url, body(run + "l"), args.rate, args.seconds)
        steady = (
            None
            if db_path is None
            else await asyncio.to_thread(handled, db_path, run + "l", latency.count)
        )
        return throughput, latency, burst, steady

    return asyncio.run(go())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--worker",
        action="store_true",
        help="run a `callcenter worker` beside the server, which then only answers",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=lambda text: tuple(text.split("=", 1)),
        metavar="CALLCENTER_NAME=VALUE",
        help="a setting for the hotline, e.g. CALLCENTER_INTAKE__INBOX_BATCH_MS=10",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        folder = Path(tmp)
        env = python_env(CALLCENTER_DATA_DIR=str(folder / "data"), **dict(args.set))
        cli = [PYTHON, "-m", "callcenter.cli"]
        subprocess.run([*cli, "migrate"], cwd=folder, env=env, check=True, capture_output=True)
        subprocess.run(
            [*cli, "demo-data", "--tickets", "0"],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
        )

        port = free_port()
        worker = None
        if args.worker:  # the web node answers; a worker process does the rest
            worker = subprocess.Popen(
                [*cli, "worker"], cwd=folder, env=env, stdout=subprocess.DEVNULL
            )
            env = {**env, "CALLCENTER_JOBS__DRIVER": "none"}
        server = start(
            [*cli, "serve", "--port", str(port)],
            cwd=folder,
            env=env,
            health=f"http://127.0.0.1:{port}/api/health",
        )
        db_path = folder / "data" / "callcenter.db"
        try:
            hotline = run_load(
                f"http://127.0.0.1:{port}/channels/simulated/sms", "h", args, db_path
            )
        finally:
            stop(server)
            if worker is not None:
                stop(worker)
        with sqlite3.connect(db_path) as db:
            stored = db.execute("SELECT count(*) FROM messages WHERE direction = 'in'").fetchone()[
                0
            ]
            tickets = db.execute("SELECT count(*) FROM tickets").fetchone()[0]
            conversations = db.execute("SELECT count(*) FROM conversations").fetchone()[0]

        port = free_port()
        baseline_db = folder / "baseline.db"
        server = start(
            [
                PYTHON,
                str(Path(__file__).parent / "baseline_server.py"),
                str(baseline_db),
                str(port),
            ],
            cwd=folder,
            env=python_env(),
            health=f"http://127.0.0.1:{port}/health",
        )
        try:
            baseline = run_load(f"http://127.0.0.1:{port}/sms", "b", args)
        finally:
            stop(server)

    sent = hotline[0].count + hotline[1].count
    print(
        f"intake benchmark: {args.n} messages from {args.concurrency} clients, then "
        f"{args.rate:.0f} msgs/s for {args.seconds:.0f} s; hotline: "
        + ("`serve` (answers) + `worker` (the rest)" if args.worker else "one `serve` process")
    )
    print("answered (the text stored, the provider answered): throughput (closed loop)")
    print("  " + hotline[0].line("hotline"))
    print("  " + baseline[0].line("baseline"))
    print(f"  hotline / baseline: {hotline[0].rate / baseline[0].rate:.2f}")
    print(f"answered: latency at {args.rate:.0f} msgs/s (open loop)")
    print("  " + hotline[1].line("hotline"))
    print("  " + baseline[1].line("baseline"))
    assert hotline[2] is not None and hotline[3] is not None
    print("handled (citizen, conversation, ticket routed and dispatched, receipt queued)")
    print("  " + hotline[2].line("burst"))
    print("  " + hotline[3].line(f"{args.rate:.0f}/s"))
    print(
        f"stored: {stored}/{sent} inbound messages, {conversations} conversations, "
        f"{tickets} tickets"
    )
    return 0 if stored == sent else 1


if __name__ == "__main__":
    sys.exit(main())
