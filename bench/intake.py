"""Intake benchmark: simulated inbound SMS through the HTTP intake path.

Starts the hotline (``callcenter serve``, SQLite, demo directory) and, in the
same run, the bare baseline (``bench/baseline_server.py``: one INSERT into
SQLite per request). Both get the same load from this process:

- throughput: N messages from C concurrent clients, as fast as they are answered;
- latency: a fixed rate (200 messages/s by default) for a few seconds.

Then it checks that every message of the hotline's run is stored, with its
conversation, and counts the tickets they became.

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


def run_load(url: str, run: str, args: argparse.Namespace) -> tuple[Result, Result]:
    async def go() -> tuple[Result, Result]:
        throughput = await closed_loop(url, body(run + "t"), args.n, args.concurrency)
        latency = await open_loop(url, body(run + "l"), args.rate, args.seconds)
        return throughput, latency

    return asyncio.run(go())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        folder = Path(tmp)
        env = python_env(CALLCENTER_DATA_DIR=str(folder / "data"))
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
        server = start(
            [*cli, "serve", "--port", str(port)],
            cwd=folder,
            env=env,
            health=f"http://127.0.0.1:{port}/api/health",
        )
        try:
            hotline = run_load(f"http://127.0.0.1:{port}/channels/simulated/sms", "h", args)
            time.sleep(1)
        finally:
            stop(server)
        with sqlite3.connect(folder / "data" / "callcenter.db") as db:
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
        f"{args.rate:.0f} msgs/s for {args.seconds:.0f} s"
    )
    print("throughput (closed loop)")
    print("  " + hotline[0].line("hotline"))
    print("  " + baseline[0].line("baseline"))
    print(f"  hotline / baseline: {hotline[0].rate / baseline[0].rate:.2f}")
    print(f"latency at {args.rate:.0f} msgs/s (open loop)")
    print("  " + hotline[1].line("hotline"))
    print("  " + baseline[1].line("baseline"))
    print(
        f"stored: {stored}/{sent} inbound messages, {conversations} conversations, "
        f"{tickets} tickets"
    )
    return 0 if stored == sent else 1


if __name__ == "__main__":
    sys.exit(main())
