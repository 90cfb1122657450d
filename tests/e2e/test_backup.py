"""``callcenter backup`` under load, and ``callcenter restore``: every text acknowledged
before the backup began is in it, and the restored database is whole (integrity, audit chain).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.test_cli import free_port, run

pytestmark = pytest.mark.slow

LOAD_SECONDS = 4.0
CLIENTS = 8


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env["CALLCENTER_DATA_DIR"] = str(data_dir)
    return env


async def _load(url: str, acked: dict[str, float], stop: asyncio.Event) -> None:
    """Citizens writing through the simulated provider; ``acked``: id -> when it was answered."""
    counter = iter(range(10**9))

    async def client(session: aiohttp.ClientSession, n: int) -> None:
        while not stop.is_set():
            i = next(counter)
            sms = {
                "from": f"+86139{i % 10**8:08d}",
                "text": "港湾路垃圾没人清运",
                "id": f"LOAD-{i}",
            }
            async with session.post(url, json=sms) as response:
                if response.status == 202:
                    acked[sms["id"]] = time.monotonic()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session, n) for n in range(CLIENTS)))


async def _load_and_back_up(
    base: str, env: dict[str, str], target: Path
) -> tuple[set[str], set[str]]:
    """Texts acknowledged before the backup began, and after."""
    acked: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(base + "/api/health") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    stop = asyncio.Event()
    load = asyncio.create_task(_load(base + "/channels/simulated/sms", acked, stop))
    await asyncio.sleep(LOAD_SECONDS / 2)
    began = time.monotonic()
    backup = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callcenter.cli",
        "backup",
        str(target),
        cwd=target.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await backup.communicate()
    assert backup.returncode == 0, out.decode()
    await asyncio.sleep(LOAD_SECONDS / 2)
    stop.set()
    await load
    before = {key for key, at in acked.items() if at < began}
    return before, set(acked) - before


def _cli(tmp_path: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callcenter.cli", *args],
        cwd=tmp_path,
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_backup_taken_under_load_holds_every_acknowledged_text(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    run(tmp_path, "demo-data", "--tickets", "20", "--days", "3")
    port = free_port()
    env = _env(tmp_path / "data")
    server = subprocess.Popen(
        [sys.executable, "-m", "callcenter.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        before, after = asyncio.run(
            _load_and_back_up(f"http://127.0.0.1:{port}", env, tmp_path / "under-load.db")
        )
    finally:
        server.terminate()
        server.wait(20)
    assert len(before) >= 50 and after, (len(before), len(after))  # the load ran on both sides

    restored = tmp_path / "restored"
    done = _cli(tmp_path, restored, "restore", str(tmp_path / "under-load.db"))
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(restored / "callcenter.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {
            row[0]
            for row in db.execute("SELECT provider_id FROM inbox WHERE provider_id LIKE 'LOAD-%'")
        }
    missing = before - stored
    assert not missing, f"{len(missing)} acknowledged texts missing from the backup"
    verify = _cli(tmp_path, restored, "audit", "verify")
    assert verify.returncode == 0 and "审计链完整" in verify.stdout, verify.stdout

    again = _cli(tmp_path, restored, "restore", str(tmp_path / "under-load.db"))
    assert again.returncode == 2 and "--replace" in again.stderr  # never over a database by chance
    (tmp_path / "broken.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    broken = _cli(tmp_path, restored, "restore", "--replace", str(tmp_path / "broken.db"))
    assert broken.returncode == 1 and "restore failed" in broken.stderr, broken.stderr
    with sqlite3.connect(restored / "callcenter.db") as db:  # the database is untouched
        count = db.execute("SELECT count(*) FROM inbox WHERE provider_id LIKE 'LOAD-%'")
        assert count.fetchone()[0] == len(stored)
