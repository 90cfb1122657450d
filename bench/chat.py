"""Web chat benchmark: N concurrent citizen chats and M agents, with the ``websockets`` client.

Starts the hotline (``callcenter serve``, SQLite, the demo directory plus M bench agents
of capacity ceil(N/M)). M agents open the staff websocket, go available and accept
every offer; N citizens open the widget's websocket and write once, so that each
chat is queued and offered to an agent. Once every chat is with an agent, each
citizen writes K more messages, one every ``--interval`` seconds on average (10: a
person typing; 500 chats then offer about 50 messages/s). The figure is
the time from a citizen's send to the holding agent's websocket receiving it
(stored, committed, published, filtered, pushed): p50 and p99.

In the same run, the same clients load a bare relay (an aiohttp websocket server
that forwards each citizen's text to an agent socket, no database): the baseline.

    .venv/bin/python bench/chat.py [--chats 500] [--agents 20] [--messages 4] [--interval 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import PYTHON, free_port, python_env, start, stop

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


PREPARE = """
import asyncio, sys
from callcenter.bootstrap import open_runtime, close_runtime
from callcenter.config import Settings
from callcenter.store.migrate import upgrade
from callcenter.actions.directory import load_city
from callcenter.demo import city
from callcenter.domain.workflow import SYSTEM

async def main(agents):
    settings = Settings()
    await upgrade(settings.effective_database_url)
    rt = await open_runtime(settings, start_jobs=False)
    await load_city(rt, city(), actor=SYSTEM)
    users = [{"username": f"bench{i}", "display_name": f"Bench agent {i}", "role": "agent",
              "token": f"bench-{i}"} for i in range(agents)]
    await load_city(rt, {"users": users}, actor=SYSTEM)
    await close_runtime(rt)

asyncio.run(main(int(sys.argv[1])))
"""


class Agent:
    def __init__(self, index: int, url: str, http: str) -> None:
        self.index = index
        self.url = url
        self.http = http
        self.token = f"bench-{index}"
        self.held: set[int] = set()
        self.ws: Any = None

    async def post(self, http: Any, path: str, body: dict[str, Any] | None = None) -> int:
        async with http.post(
            self.http + path, json=body or {}, headers={"Authorization": f"Bearer {self.token}"}
        ) as response:
            return int(response.status)


async def run_hotline(
    args: argparse.Namespace, base: str, received: dict[str, float]
) -> dict[str, Any]:
    ws_base = base.replace("http", "ws")
    agents = [
        Agent(i, ws_base + "/ui/ws?topics=conversations", base + "/api") for i in range(args.agents)
    ]
    accepted = 0
    errors = 0

    import aiohttp

    http = aiohttp.ClientSession()

    async def agent_loop(agent: Agent) -> None:
        nonlocal accepted, errors
        async with connect(
            agent.url,
            additional_headers={"Authorization": f"Bearer {agent.token}"},
            max_size=2**20,
        ) as ws:
            agent.ws = ws
            await agent.post(http, "/acd/presence", {"presence": "available"})
            async for raw in ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                if frame.get("type") != "event":
                    continue
                data = frame["data"]
                if frame["event"] == "offer.changed" and data["state"] == "pending":
                    try:
                        status = await agent.post(http, f"/acd/offers/{data['offer_id']}/accept")
                        accepted += status == 204
                        errors += status != 204
                    except Exception:
                        errors += 1
                elif frame["event"] == "message.created" and data["direction"] == "in":
                    token = data["body"].rsplit(" ", 1)[-1]
                    if token.startswith("B") and token not in received:
                        received[token] = now

    agent_tasks = [asyncio.create_task(agent_loop(a)) for a in agents]
    await asyncio.sleep(1.0)
    sent: dict[str, float] = {}
    acked: dict[str, float] = {}
    sockets: list[Any] = []
    assigned: set[int] = set()

    async def citizen(i: int) -> None:
        nonlocal errors
        ws = await connect(ws_base + "/chat/ws", max_size=2**20)
        sockets.append(ws)
        await ws.send(json.dumps({"type": "hello", "session": None, "after": 0, "locale": "zh-CN"}))

        async def reader() -> None:
            async for raw in ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                if frame.get("type") == "state" and frame.get("state") == "assigned":
                    assigned.add(i)
                elif frame.get("type") == "ack" and str(frame.get("id", "")).startswith("B"):
                    acked[frame["id"]] = now

        task = asyncio.create_task(reader())
        await ws.send(
            json.dumps({"type": "message", "id": f"first-{i}", "text": f"你好，请转人工 {i}"})
        )
        await ready.wait()
        if i not in assigned:
            return
        for k in range(args.messages):
            await asyncio.sleep(random.uniform(0, 2 * args.interval))
            token = f"B{i}-{k}"
            sent[token] = time.perf_counter()
            try:
                await ws.send(
                    json.dumps({"type": "message", "id": token, "text": f"第{k}条 {token}"})
                )
            except Exception:
                errors += 1
        await asyncio.sleep(2)
        task.cancel()

    ready = asyncio.Event()
    started = time.perf_counter()
    citizens = [asyncio.create_task(citizen(i)) for i in range(args.chats)]
    deadline = time.perf_counter() + 90
    while len(assigned) < args.chats and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    assign_seconds = time.perf_counter() - started
    async with http.get(base + "/chat/health") as response:
        health = await response.json()
    ready.set()
    await asyncio.gather(*citizens, return_exceptions=True)
    await asyncio.sleep(1)
    for task in agent_tasks:
        task.cancel()
    for ws in sockets:
        await ws.close()
    await http.close()
    latencies = [received[k] - sent[k] for k in sent if k in received]
    if os.environ.get("BENCH_TRACE"):  # send time and acknowledgement latency, to plot
        Path(os.environ["BENCH_TRACE"]).write_text(  # noqa: ASYNC240
            "".join(
                f"{sent[k] - started:.3f} {acked.get(k, 0) - sent[k]:.4f}\n"
                for k in sorted(sent, key=lambda key: sent[key])
            )
        )
    return {
        "acks": [acked[k] - sent[k] for k in sent if k in acked],
        "latencies": latencies,
        "expected": len(sent),
        "delivered": len(latencies),
        "assigned": len(assigned),
        "accepted": accepted,
        "assign_seconds": assign_seconds,
        "sessions": health["sessions"],
        "errors": errors,
    }


BASELINE = """
import sys
from aiohttp import web, WSMsgType
agents = []
async def agent(request):
    ws = web.WebSocketResponse(); await ws.prepare(request); agents.append(ws)
    async for _ in ws: pass
    return ws
async def citizen(request):
    ws = web.WebSocketResponse(); await ws.prepare(request)
    index = int(request.query["i"])
    async for msg in ws:
        if msg.type == WSMsgType.TEXT and agents:
            await agents[index % len(agents)].send_str(msg.data)
    return ws
async def health(request):
    return web.json_response({"ok": True})
app = web.Application()
app.router.add_get("/a", agent); app.router.add_get("/c", citizen)
app.router.add_get("/health", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


async def run_baseline(args: argparse.Namespace, base: str) -> dict[str, Any]:
    ws_base = base.replace("http", "ws")
    received: dict[str, float] = {}
    sent: dict[str, float] = {}

    async def agent_loop() -> None:
        async with connect(ws_base + "/a") as ws:
            async for raw in ws:
                now = time.perf_counter()
                token = json.loads(raw)["text"].rsplit(" ", 1)[-1]
                received.setdefault(token, now)

    agents = [asyncio.create_task(agent_loop()) for _ in range(args.agents)]
    await asyncio.sleep(0.5)

    async def citizen(i: int) -> None:
        async with connect(ws_base + f"/c?i={i}") as ws:
            for k in range(args.messages):
                await asyncio.sleep(random.uniform(0, 2 * args.interval))
                token = f"B{i}-{k}"
                sent[token] = time.perf_counter()
                await ws.send(
                    json.dumps({"type": "message", "id": token, "text": f"第{k}条 {token}"})
                )
            await asyncio.sleep(2)

    await asyncio.gather(*(citizen(i) for i in range(args.chats)))
    for task in agents:
        task.cancel()
    latencies = [received[k] - sent[k] for k in sent if k in received]
    return {"latencies": latencies, "expected": len(sent), "delivered": len(latencies)}


def line(name: str, result: dict[str, Any]) -> str:
    lat = result["latencies"]
    return (
        f"{name:9} delivered {result['delivered']:5d}/{result['expected']:<5d} "
        f"p50 {pct(lat, 50):7.1f} ms  p99 {pct(lat, 99):7.1f} ms  "
        f"mean {statistics.mean(lat) * 1000 if lat else float('nan'):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument(
        "--interval",
        type=float,
        default=10.0,
        help="mean seconds between one citizen's messages (uniform 0..2x)",
    )
    parser.add_argument(
        "--database-url", default=None, help="an empty PostgreSQL database (default: SQLite)"
    )
    args = parser.parse_args()
    random.seed(7)
    import gc

    gc.freeze()  # the client's collector pauses would be measured too
    gc.set_threshold(100_000, 50, 100)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = python_env(
            CALLCENTER_DATA_DIR=tmp,
            CALLCENTER_PORT=str(port),
            CALLCENTER_CHANNELS='["channels.simulated:SimulatedSms","channels.webchat:WebChat"]',
            CALLCENTER_ACD__DEFAULT_CAPACITY=str(math.ceil(args.chats / args.agents)),
            CALLCENTER_INTAKE__ACKNOWLEDGE_QUEUED="false",
            CALLCENTER_ACD__AWAY_ON_MISSED_OFFER="false",
            # every simulated citizen connects from 127.0.0.1: the per-address limit on
            # chat connections (security.chat_connections_per_ip) would refuse the load
            CALLCENTER_SECURITY__CHAT_CONNECTIONS_PER_IP=str(2 * args.chats + 100),
        )
        if args.database_url:
            env["CALLCENTER_DATABASE_URL"] = args.database_url
        import subprocess

        subprocess.run([PYTHON, "-c", PREPARE, str(args.agents)], cwd=tmp, env=env, check=True)
        server = start(
            [PYTHON, "-m", "callcenter.cli", "serve", "--port", str(port)],
            cwd=Path(tmp),
            env=env,
            health=f"http://127.0.0.1:{port}/api/health",
        )
        try:
            hotline = asyncio.run(run_hotline(args, f"http://127.0.0.1:{port}", {}))
        finally:
            stop(server)
        bport = free_port()
        baseline_server = start(
            [PYTHON, "-c", BASELINE, str(bport)],
            cwd=Path(tmp),
            env=env,
            health=f"http://127.0.0.1:{bport}/health",
        )
        try:
            baseline = asyncio.run(run_baseline(args, f"http://127.0.0.1:{bport}"))
        finally:
            stop(baseline_server)
    print(
        f"web chat on {'PostgreSQL' if args.database_url else 'SQLite'}: "
        f"{args.chats} concurrent chats, {args.agents} agents, "
        f"{args.messages} messages per chat, one every {args.interval:.0f} s on average "
        f"(about {args.chats / args.interval:.0f} messages/s), {os.cpu_count()} cores"
    )
    print(
        f"sessions held: {hotline['sessions']} citizen websockets + {args.agents} agent "
        f"websockets; {hotline['assigned']}/{args.chats} chats with an agent after "
        f"{hotline['assign_seconds']:.1f} s ({hotline['accepted']} offers accepted, "
        f"{hotline['errors']} errors)"
    )
    print("citizen -> agent delivery:")
    print(line("hotline", hotline))
    print(line("baseline", baseline))
    acks = hotline["acks"]
    print(
        f"citizen -> stored and acknowledged: {len(acks)} acks, "
        f"p50 {pct(acks, 50):.1f} ms  p99 {pct(acks, 99):.1f} ms"
    )


if __name__ == "__main__":
    main()
