"""The ``callcenter`` command as an operator uses it, in real subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def run(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    result = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_migrate_demo_simulate_audit(tmp_path: Path) -> None:
    from callcenter.store.migrate import head_revision

    assert f"revision {head_revision()}" in run(tmp_path, "migrate").stdout
    assert (tmp_path / "data" / "callcenter.db").exists()  # the default data directory
    out = run(tmp_path, "demo-data", "--tickets", "40", "--days", "10").stdout
    assert "46 departments" in out and "demo-agent1" in out
    assert "nothing loaded" in run(tmp_path, "demo-data").stdout  # a second run changes nothing

    out = run(
        tmp_path, "simulate", "sms", "--from", "13800000000", "--id", "SM-CLI-1", "小区路灯坏了"
    ).stdout
    assert "+8613800000000" in out
    assert "明湖市市政设施管理处" in out and "路灯故障" in out
    assert "[sent]" in out  # the auto reply went out through the simulated provider
    again = run(
        tmp_path,
        "simulate",
        "sms",
        "--from",
        "+86 138 0000 0000",
        "--id",
        "SM-CLI-1",
        "小区路灯坏了",
    ).stdout
    assert "duplicate" in again

    outbox = run(tmp_path, "simulate", "outbox", "--limit", "1").stdout
    assert "+8613800000000" in outbox and "工单号" in outbox

    bad = run(tmp_path, "simulate", "sms", "--from", "not a number", "路灯", check=False)
    assert bad.returncode == 2 and "不是可用的电话号码" in bad.stderr

    verify = run(tmp_path, "audit", "verify")
    assert "审计链完整" in verify.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "callcenter.db") as db:
        db.execute("UPDATE audit_events SET actor_name = 'x' WHERE seq = 50")
    broken = run(tmp_path, "audit", "verify", check=False)
    assert broken.returncode == 1 and "第 50 条" in broken.stdout

    # the inbox: what is stored, what failed, and putting it back in line
    with sqlite3.connect(tmp_path / "data" / "callcenter.db") as db:
        db.execute(
            "UPDATE inbox SET state = 'failed', error = 'RuntimeError: for the test'"
            " WHERE provider_id = 'SM-CLI-1'"
        )
    status = run(tmp_path, "inbox", "status").stdout
    assert status.splitlines()[0] == "pending=0 done=0 failed=1"
    assert "SM-CLI-1" in status and "RuntimeError: for the test" in status
    assert run(tmp_path, "inbox", "retry").stdout.strip() == "requeued 1"
    assert run(tmp_path, "inbox", "status").stdout.splitlines() == ["pending=1 done=0 failed=0"]


def test_serve_answers_the_api_and_turns_an_sms_into_a_ticket(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    run(tmp_path, "demo-data", "--tickets", "10", "--days", "3")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "callcenter.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a loaded machine starts the server slowly
        while True:
            try:
                urllib.request.urlopen(base + "/api/health", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.1)
        request = urllib.request.Request(
            base + "/channels/simulated/sms?wait=1",
            method="POST",
            data=json.dumps(
                {"from": "13900001111", "text": "港湾路垃圾没人清运", "id": "SM-E2E"}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        intake = json.loads(urllib.request.urlopen(request, timeout=10).read())
        number = intake["ticket"]["number"]
        request = urllib.request.Request(
            f"{base}/api/tickets/{number}",
            headers={"Authorization": "Bearer demo-agent1", "Accept-Language": "en"},
        )
        ticket = json.loads(urllib.request.urlopen(request, timeout=10).read())
        assert ticket["department"]["name"] == "Xingang District Urban Management Bureau"
        assert ticket["state"] == "dispatched" and ticket["routing"]["rule"] == "text"
        for _ in range(50):  # the in-process executor sends the reply without being asked
            request = urllib.request.Request(
                f"{base}/api/conversations/{intake['conversation_id']}",
                headers={"Authorization": "Bearer demo-agent1"},
            )
            conversation = json.loads(urllib.request.urlopen(request, timeout=10).read())
            if conversation["messages"][-1]["status"] == "sent":
                break
            time.sleep(0.1)
        assert conversation["messages"][-1]["status"] == "sent"
    finally:
        server.terminate()
        server.wait(10)


def test_commands_beside_a_running_sip_server_leave_its_port_alone(tmp_path: Path) -> None:
    """Only the serving process opens the SIP port: workers and simulate do not."""
    run(tmp_path, "migrate")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:  # the server's SIP port
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        env["CALLCENTER_CHANNELS"] = json.dumps(
            ["channels.simulated:SimulatedSms", "channels.sip:SipChannel"]
        )
        env["CALLCENTER_CHANNEL_OPTIONS"] = json.dumps(
            {"sip": {"mode": "direct", "host": "127.0.0.1", "port": port}}
        )
        cli = [sys.executable, "-m", "callcenter.cli"]
        sms = subprocess.run(
            [*cli, "simulate", "sms", "--from", "13800000000", "路灯坏了"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sms.returncode == 0, sms.stdout + sms.stderr
        assert "Address already in use" not in sms.stderr and "+8613800000000" in sms.stdout
        worker = subprocess.Popen(
            [*cli, "worker"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            assert worker.stdout is not None
            line = worker.stdout.readline().decode()
            assert "running jobs" in line, line + worker.stdout.read().decode()
            time.sleep(0.5)
            assert worker.poll() is None
        finally:
            worker.terminate()
            worker.wait(20)
