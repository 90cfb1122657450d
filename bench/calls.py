"""Calls benchmark: N simultaneous SIP calls through the whole IVR flow.

Starts the hotline (``callcenter serve`` with the SIP adapter in direct mode,
SQLite, the demo city, the Whisper recogniser; ``--servers 2``: two such
processes, each with its own port and database, the calls split between
them) and has sipp place N calls at once. Most callers pick English (2),
check a ticket (1), type its 13-digit number and # from the RFC 2833 pcaps
Debian ships, hear its status and are hung up on; a share of them
(``--speech-share``, default 20 %) report a problem by voice instead (2, 2,
a sentence of espeak-ng speech after the tone, transcribed by Whisper, then
1 to confirm the category) and get a ticket. Afterwards every call's stored
keys, path and outcome are compared with what sipp sent.

Baseline, same run, same sipp scenario: sipp's own UAS (``-sn uas``) answering
the N calls, which is what the SIP stack and the machine can carry with no
IVR behind it.

For N in the given steps (default 1 10 25 50 100) it prints calls completed,
calls with every key right (and, for the speakers, a transcript and a
ticket), DTMF accuracy (digits right / digits sent) and the largest N with no
failure. Needs root (sipp's pcap replay). Bounded: one sipp run per step and
scenario, each with a time limit.

    .venv/bin/python bench/calls.py [--steps 1 10 25 50 100] [--servers 2]
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import PYTHON, python_env

from ivr.audio import read_wav
from ivr.engine import Say
from ivr.models import join_packaged_whisper_base
from ivr.tts import PromptAudio, speak_to_wav
from tests.voice.tools import (
    Step,
    dtmf_pcap,
    free_port_pair,
    free_udp_port,
    uac_scenario,
    write_rtp_pcap,
)

ROOT = Path(__file__).resolve().parents[1]
SPEECH = "The street light outside number twelve Harbour Road has been broken for three days"
SPEAKER = "+8613900000099"  # the caller id of the calls that speak


def describe_prompt_seconds(folder: Path) -> float:
    """How long the English "describe the problem" prompt plays, as the IVR renders it."""
    texts = json.loads((ROOT / "callcenter" / "i18n" / "en" / "voice.json").read_text("utf-8"))
    say = Say(texts["voice"]["describe_problem"], "en", "describe_problem")
    return float(PromptAudio(folder / "prompts").duration(say))


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
    scenario: Path,
    target: int,
    n: int,
    folder: Path,
    *,
    uas: bool = False,
    timeout: float = 400,
    name: str = "uac",
) -> tuple[int, int, float]:
    """Run sipp; returns (successful calls, failed calls, seconds)."""
    stats = folder / f"stats-{'uas' if uas else name}-{n}.csv"
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


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    sip_port: int
    data: Path
    seen: int = 0


def start_server(folder: Path, index: int, whisper: Path, ticket: str | None) -> Server:
    """A hotline (``callcenter serve``) with its own SQLite database and the demo city."""
    data = folder / f"data-{index}"
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
                    "rtp_high": rtp + 4000,
                }
            }
        ),
        CALLCENTER_VOICE__WHISPER_MODEL=str(whisper),
        CALLCENTER_VOICE__MAX_CALLS="200",
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
    if ticket is not None:  # every server knows the ticket the callers ask about
        with sqlite3.connect(data / "callcenter.db") as db:
            if db.execute("SELECT 1 FROM tickets WHERE number = ?", (ticket,)).fetchone() is None:
                db.execute("UPDATE tickets SET number = ? WHERE id = 1", (ticket,))
    log = (folder / f"server-{index}.log").open("wb")
    process = subprocess.Popen([*cli, "serve"], cwd=folder, env=env, stdout=log, stderr=log)
    wait_udp_ready(sip_port, process)
    return Server(process, sip_port, data)


def speech_pcap(folder: Path) -> tuple[Path, float]:
    wav = folder / "speech.wav"
    speak_to_wav(SPEECH, "en", wav)
    pcm, _ = read_wav(wav)
    return folder / "speech.pcap", write_rtp_pcap(folder / "speech.pcap", pcm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 10, 25, 50, 100])
    parser.add_argument("--servers", type=int, default=1, help="hotline processes")
    parser.add_argument("--speech-share", type=float, default=0.2)
    parser.add_argument("--whisper-model", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("sipp's pcap replay needs root")
    folder = Path(tempfile.mkdtemp(prefix="calls-bench-"))
    whisper = args.whisper_model or join_packaged_whisper_base(folder / "whisper-base")
    first = start_server(folder, 0, whisper, None)
    with sqlite3.connect(first.data / "callcenter.db") as db:
        number = db.execute("SELECT number FROM tickets WHERE id = 1").fetchone()[0]
    servers = [first] + [start_server(folder, i, whisper, number) for i in range(1, args.servers)]
    keys = ["2", "1", *number.replace("-", ""), "#"]
    steps = [Step(1.0, dtmf_pcap(keys[0])), Step(1.5, dtmf_pcap(keys[1]))]
    steps += [Step(0.4, dtmf_pcap(k)) for k in keys[2:]]
    scenario = folder / "caller.xml"
    scenario.write_text(uac_scenario(steps, wait_bye_ms=180_000))
    baseline_scenario = folder / "baseline.xml"
    baseline_scenario.write_text(uac_scenario(steps, hang_up_after=12.0))
    pcap, speech_s = speech_pcap(folder)
    spoken = [
        Step(1.0, dtmf_pcap("2")),  # English
        Step(1.5, dtmf_pcap("2")),  # report a problem
        Step(describe_prompt_seconds(folder) + 1.5, pcap),  # after the tone
        Step(speech_s + 4.0, dtmf_pcap("1")),  # confirm the category
    ]
    speech_scenario = folder / "speaker.xml"
    speech_scenario.write_text(uac_scenario(spoken, caller=SPEAKER, wait_bye_ms=180_000))
    print(
        f"calls through the default flow on {args.servers} hotline process(es): "
        f"{1 - args.speech_share:.0%} check ticket {number} (2, 1, 13 digits, #: "
        f"{len(keys)} keys), {args.speech_share:.0%} report a problem by voice "
        f"(2, 2, {speech_s:.1f} s of speech to Whisper, 1 to confirm)"
    )
    best = 0
    try:
        for n in args.steps:
            base_ok, base_failed, base_s = uas_scenario_baseline(folder, n, baseline_scenario)
            speakers = round(n * args.speech_share)
            runs = []
            for i, server in enumerate(servers):
                share = (n - speakers) // len(servers) + (i < (n - speakers) % len(servers))
                talk = speakers // len(servers) + (i < speakers % len(servers))
                if share:
                    runs.append((scenario, server.sip_port, share))
                if talk:
                    runs.append((speech_scenario, server.sip_port, talk))
            began = time.monotonic()
            with ThreadPoolExecutor(len(runs)) as pool:
                results = list(
                    pool.map(
                        lambda r: sipp(r[0], r[1], r[2], folder, name=f"{r[0].stem}-{r[1]}"), runs
                    )
                )
            seconds = time.monotonic() - began
            ok = sum(r[0] for r in results)
            failed = sum(r[1] for r in results)
            time.sleep(3.0)
            rows = []
            for server in servers:
                with sqlite3.connect(server.data / "callcenter.db") as db:
                    got = db.execute(
                        "SELECT from_number, dtmf, path, ended_at, outcome, transcript "
                        "FROM calls ORDER BY id LIMIT -1 OFFSET ?",
                        (server.seen,),
                    ).fetchall()
                server.seen += len(got)
                rows += got
            expected = "".join(keys)
            sent = right = perfect = heard = 0
            for caller, dtmf, path, ended, outcome, transcript in rows:
                want = "221" if caller == SPEAKER else expected
                sent += len(want)
                right += sum(1 for a, b in zip(dtmf, want, strict=False) if a == b)
                done = bool(ended) and json.loads(path)[-1] == "goodbye" and dtmf == want
                if caller == SPEAKER:
                    done = done and outcome == "ticket" and bool(transcript)
                    heard += bool(transcript)
                perfect += done
            accuracy = right / sent if sent else 0.0
            no_failure = failed == 0 and ok == n and perfect == n and len(rows) == n
            if no_failure:
                best = n
            print(
                f"N={n:3d}  hotline: {ok:3d} completed, {failed:3d} failed, "
                f"{perfect:3d} with every key right ({speakers} by voice, {heard} transcribed), "
                f"DTMF accuracy {accuracy * 100:6.2f} %, {seconds:5.1f} s   |   "
                f"baseline sipp UAS: {base_ok:3d} completed, {base_failed:3d} failed, "
                f"{base_s:5.1f} s"
            )
            if not no_failure:
                break
    finally:
        for server in servers:
            server.process.terminate()
            try:
                server.process.wait(20)
            except subprocess.TimeoutExpired:
                server.process.kill()
    print(f"largest N with no failure: {best} (target: 100 with every key right)")


if __name__ == "__main__":
    main()
