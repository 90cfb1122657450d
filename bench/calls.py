"""Calls benchmark: N simultaneous SIP calls through the whole IVR flow.

Starts the hotline (``callcenter serve`` with the SIP adapter in direct mode,
SQLite, the demo city) and has sipp place N calls at once. Each caller picks
English (2), checks a ticket (1), types its 13-digit number and # from the
RFC 2833 pcaps Debian ships, hears its status and is hung up on. Afterwards
every call's stored DTMF path is compared with what sipp sent.

Baseline, same run, same sipp scenario: sipp's own UAS (``-sn uas``) answering
the N calls, which is what the SIP stack and the machine can carry with no
IVR behind it.

For N in the given steps (default 1 5 10 25 50) it prints calls completed,
DTMF accuracy (digits right / digits sent) and the largest N with no failure.
Needs root (sipp's pcap replay). Bounded: one sipp run per step, each with a
time limit.

    .venv/bin/python bench/calls.py [--steps 1 5 10 25 50]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import PYTHON, python_env

from tests.voice.tools import Step, dtmf_pcap, free_port_pair, free_udp_port, uac_scenario


def wait_udp_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Poll until the SIP port is bound (bind fails while the server holds it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stdout.read().decode() if process.stdout else "exited")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.2)
    raise RuntimeError("the hotline did not open its SIP port")


def sipp(
    scenario: Path, target: int, n: int, folder: Path, *, uas: bool = False, timeout: float = 300
) -> tuple[int, int, float]:
    """Run sipp; returns (successful calls, failed calls, seconds)."""
    stats = folder / f"stats-{'uas' if uas else 'uac'}-{n}.csv"
    began = time.monotonic()
    cmd = [
        "sipp",
        "127.0.0.1",
        "-p",
        str(free_udp_port()),
        "-sf",
        str(scenario),
        "-m",
        str(n),
        "-l",
        str(n),
        "-r",
        str(n),
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port_pair()),
        "-s",
        "hotline",
        "-rsa",
        f"127.0.0.1:{target}",
        "-nostdin",
        "-timeout",
        str(int(timeout)),
        "-timeout_error",
        "-trace_stat",
        "-stf",
        str(stats),
        "-fd",
        "1",
    ]
    done = subprocess.run(cmd, cwd=folder, capture_output=True, timeout=timeout + 30, check=False)
    seconds = time.monotonic() - began
    ok = failed = 0
    if stats.exists():
        rows = [r.split(";") for r in stats.read_text().splitlines() if r.strip()]
        header = rows[0]
        last = rows[-1]
        ok = int(last[header.index("SuccessfulCall(C)")])
        failed = int(last[header.index("FailedCall(C)")])
    elif done.returncode != 0:
        failed = n
    return ok, failed, seconds


def uas_scenario_baseline(folder: Path, n: int, scenario: Path) -> tuple[int, int, float]:
    """sipp's built-in UAS as the callee; our caller scenario expects the callee to hang up,
    so the baseline caller hangs up itself after the same holding time."""
    port = free_udp_port()
    server = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        return sipp(scenario, port, n, folder, uas=True)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5, 10, 25, 50])
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("sipp's pcap replay needs root")
    folder = Path(tempfile.mkdtemp(prefix="calls-bench-"))
    data = folder / "data"
    sip_port = free_udp_port()
    rtp = free_port_pair()
    env = python_env(
        CALLCENTER_DATA_DIR=str(data),
        CALLCENTER_PORT=str(free_udp_port()),
        CALLCENTER_CHANNELS=json.dumps(
            ["channels.simulated:SimulatedSms", "channels.sip:SipChannel"]
        ),
        CALLCENTER_CHANNEL_OPTIONS=json.dumps(
            {
                "sip": {
                    "mode": "direct",
                    "host": "127.0.0.1",
                    "port": sip_port,
                    "rtp_low": rtp,
                    "rtp_high": rtp + 2000,
                }
            }
        ),
    )
    cli = [PYTHON, "-m", "callcenter.cli"]
    subprocess.run([*cli, "migrate"], cwd=folder, env=env, check=True, capture_output=True)
    subprocess.run(
        [*cli, "demo-data", "--tickets", "20", "--days", "5"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    with sqlite3.connect(data / "callcenter.db") as db:
        number = db.execute("SELECT number FROM tickets ORDER BY id LIMIT 1").fetchone()[0]
    keys = ["2", "1", *number.replace("-", ""), "#"]
    steps = [Step(1.0, dtmf_pcap(keys[0])), Step(1.5, dtmf_pcap(keys[1]))]
    steps += [Step(0.4, dtmf_pcap(k)) for k in keys[2:]]
    scenario = folder / "caller.xml"
    scenario.write_text(uac_scenario(steps, wait_bye_ms=120_000))
    baseline_scenario = folder / "baseline.xml"
    baseline_scenario.write_text(uac_scenario(steps, hang_up_after=12.0))

    server = subprocess.Popen(
        [*cli, "serve"], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    print(
        f"calls through the default flow: 2, 1, ticket {number} (13 digits) and #, "
        f"{len(keys)} keys per call"
    )
    best = 0
    try:
        wait_udp_ready(sip_port, server)
        seen = 0
        for n in args.steps:
            base_ok, base_failed, base_s = uas_scenario_baseline(folder, n, baseline_scenario)
            ok, failed, seconds = sipp(scenario, sip_port, n, folder)
            time.sleep(2.0)
            with sqlite3.connect(data / "callcenter.db") as db:
                rows = db.execute(
                    "SELECT dtmf, path, ended_at FROM calls ORDER BY id LIMIT -1 OFFSET ?", (seen,)
                ).fetchall()
            seen += len(rows)
            expected = "".join(keys)
            right = sum(
                sum(1 for a, b in zip(dtmf, expected, strict=False) if a == b)
                for dtmf, _, _ in rows
            )
            sent = len(expected) * n
            perfect = sum(
                1
                for dtmf, path, ended in rows
                if dtmf == expected and ended and json.loads(path)[-1] == "goodbye"
            )
            accuracy = right / sent if sent else 0.0
            no_failure = failed == 0 and ok == n and perfect == n
            if no_failure:
                best = n
            print(
                f"N={n:3d}  hotline: {ok:3d} completed, {failed:3d} failed, "
                f"{perfect:3d} with every key right, DTMF accuracy {accuracy * 100:6.2f} %, "
                f"{seconds:5.1f} s   |   "
                f"baseline sipp UAS: {base_ok:3d} completed, {base_failed:3d} failed, "
                f"{base_s:5.1f} s"
            )
            if not no_failure:
                break
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"largest N with no failure: {best} (target: 50 with every digit right)")


if __name__ == "__main__":
    main()
