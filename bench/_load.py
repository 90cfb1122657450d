"""Load generation shared by the benchmarks: closed-loop throughput and open-loop latency."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    cmd: Sequence[str], *, cwd: Path, env: dict[str, str], health: str
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stdout.read().decode())  # type: ignore[union-attr]
        try:
            urllib.request.urlopen(health, timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{cmd} did not come up")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass
class Result:
    count: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def line(self, name: str) -> str:
        return (
            f"{name:10} {self.count:6d} msgs  {self.rate:8.1f} msgs/s  "
            f"p50 {self.pct(50):7.2f} ms  p99 {self.pct(99):7.2f} ms  errors {self.errors}"
        )


async def closed_loop(
    url: str, bodies: Callable[[int], dict[str, Any]], n: int, concurrency: int
) -> Result:
    """As fast as ``concurrency`` clients can go: throughput."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(n))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal errors
            for i in counter:
                began = time.perf_counter()
                async with session.post(url, json=bodies(i)) as response:
                    await response.read()
                    if response.status >= 300:
                        errors += 1
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Result(n, errors, elapsed, latencies)


async def open_loop(
    url: str, bodies: Callable[[int], dict[str, Any]], rate: float, seconds: float
) -> Result:
    """Requests sent at a fixed rate whatever the answers do: latency under a given load."""
    latencies: list[float] = []
    errors = 0
    n = int(rate * seconds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> None:
            nonlocal errors
            began = time.perf_counter()
            async with session.post(url, json=bodies(i)) as response:
                await response.read()
                if response.status >= 300:
                    errors += 1
            latencies.append(time.perf_counter() - began)

        tasks = []
        start_at = time.perf_counter()
        for i in range(n):
            delay = start_at + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start_at
    return Result(n, errors, elapsed, latencies)


def python_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(extra)
    return env


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


PYTHON = sys.executable
