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

Each run measures the hotline (and the baseline) with SQLite's ``synchronous=NORMAL``
and then ``FULL`` (the hotline's setting: every commit synced to the disk), so
the cost of durable commits is read off one run (``--synchronous FULL`` for one).

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


@dataclass
class HotlineRun:
    synchronous: str
    loads: tuple[Result, Result, Handled | None, Handled | None]
    stored: int
    conversations: int
    tickets: int

    @property
    def sent(self) -> int:
        return self.loads[0].count + self.loads[1].count


def run_hotline(folder: Path, args: argparse.Namespace, synchronous: str) -> HotlineRun:
    """One hotline, in a data directory of its own, with ``sqlite_synchronous`` set."""
    data = folder / f"data-{synchronous.lower()}"
    env = python_env(
        CALLCENTER_DATA_DIR=str(data),
        CALLCENTER_SQLITE_SYNCHRONOUS=synchronous,
        **dict(args.set),
    )
    cli = [PYTHON, "-m", "callcenter.cli"]
    subprocess.run([*cli, "migrate"], cwd=folder, env=env, check=True, capture_output=True)
    subprocess.run(
        [*cli, "demo-data", "--tickets", "0"], cwd=folder, env=env, check=True, capture_output=True
    )
    port = free_port()
    worker = None
    if args.worker:  # the web node answers; a worker process does the rest
        worker = subprocess.Popen([*cli, "worker"], cwd=folder, env=env, stdout=subprocess.DEVNULL)
        env = {**env, "CALLCENTER_JOBS__DRIVER": "none"}
    server = start(
        [*cli, "serve", "--port", str(port)],
        cwd=folder,
        env=env,
        health=f"http://127.0.0.1:{port}/api/health",
    )
    db_path = data / "callcenter.db"
    try:
        loads = run_load(f"http://127.0.0.1:{port}/channels/simulated/sms", "h", args, db_path)
    finally:
        stop(server)
        if worker is not None:
            stop(worker)
    with sqlite3.connect(db_path) as db:
        stored = db.execute("SELECT count(*) FROM messages WHERE direction = 'in'").fetchone()[0]
        tickets = db.execute("SELECT count(*) FROM tickets").fetchone()[0]
        conversations = db.execute("SELECT count(*) FROM conversations").fetchone()[0]
    return HotlineRun(synchronous, loads, stored, conversations, tickets)


def run_baseline(
    folder: Path, args: argparse.Namespace, synchronous: str
) -> tuple[Result, Result, Handled | None, Handled | None]:
    port = free_port()
    server = start(
        [
            PYTHON,
            str(Path(__file__).parent / "baseline_server.py"),
            str(folder / f"baseline-{synchronous.lower()}.db"),
            str(port),
            synchronous,
        ],
        cwd=folder,
        env=python_env(),
        health=f"http://127.0.0.1:{port}/health",
    )
    try:
        return run_load(f"http://127.0.0.1:{port}/sms", "b", args)
    finally:
        stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--synchronous",
        nargs="+",
        choices=["FULL", "NORMAL"],
        default=["NORMAL", "FULL"],
        help="SQLite's synchronous setting for each hotline (and baseline) run, in order; "
        "FULL is the hotline's own, NORMAL what it ran before",
    )
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

    runs: list[tuple[HotlineRun, tuple[Result, Result, Handled | None, Handled | None]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        for synchronous in args.synchronous:
            runs.append(
                (
                    run_hotline(Path(tmp), args, synchronous),
                    run_baseline(Path(tmp), args, synchronous),
                )
            )

    print(
        f"intake benchmark: {args.n} messages from {args.concurrency} clients, then "
        f"{args.rate:.0f} msgs/s for {args.seconds:.0f} s; hotline: "
        + ("`serve` (answers) + `worker` (the rest)" if args.worker else "one `serve` process")
    )
    ok = True
    for hotline, baseline in runs:
        print(f"== SQLite synchronous={hotline.synchronous} (hotline and baseline)")
        loads = hotline.loads
        print("answered (the text stored, the provider answered): throughput (closed loop)")
        print("  " + loads[0].line("hotline"))
        print("  " + baseline[0].line("baseline"))
        print(f"  hotline / baseline: {loads[0].rate / baseline[0].rate:.2f}")
        print(f"answered: latency at {args.rate:.0f} msgs/s (open loop)")
        print("  " + loads[1].line("hotline"))
        print("  " + baseline[1].line("baseline"))
        assert loads[2] is not None and loads[3] is not None
        print("handled (citizen, conversation, ticket routed and dispatched, receipt queued)")
        print("  " + loads[2].line("burst"))
        print("  " + loads[3].line(f"{args.rate:.0f}/s"))
        print(
            f"stored: {hotline.stored}/{hotline.sent} inbound messages, "
            f"{hotline.conversations} conversations, {hotline.tickets} tickets"
        )
        ok = ok and hotline.stored == hotline.sent
    if len(runs) > 1:
        first, last = runs[0][0], runs[-1][0]
        print(
            f"answered msgs/s, synchronous={last.synchronous} / {first.synchronous}: "
            f"hotline {last.loads[0].rate / first.loads[0].rate:.2f}, "
            f"baseline {runs[-1][1][0].rate / runs[0][1][0].rate:.2f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
