"""Nobody speaks as a citizen through the simulated provider from another machine.

The provider's inbound endpoint takes an unauthenticated ``from``: it answers
only requests from this machine (and no proxy's forwarded ones) unless a token
is configured, it is off when a real SMS adapter is configured beside it, and
the server says at start which channels are open to whom.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.bootstrap import access_report, build_runtime
from callcenter.config import Settings
from tests.e2e.test_cli import run
from tests.fakes.twilio_api import TwilioStandIn


@pytest.mark.slow
def test_only_this_machine_or_the_token_holder_may_post(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("this test needs root and unshare(1) for a network namespace")
    script = (
        "ip link set lo up && ip addr add 10.200.0.1/32 dev lo && "
        f"exec {sys.executable} -m tests.integration.netns_simulated {tmp_path}"
    )
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])

    plain = got["no_token"]
    assert plain["other"][0] == 403 and plain["other"][1]["error"]["code"] == "local_only"
    assert plain["forwarded"][0] == 403  # a proxy on this machine is not this machine
    assert plain["other_token"][0] == 403  # no token is configured: none is accepted
    assert plain["loopback"][0] == 202
    assert plain["stored"] == ["SIM-loopback"] and plain["count"] == 1

    token = got["token"]
    assert token["other_token"][0] == 202
    assert token["other_wrong_token"][0] == 403 and token["other"][0] == 403
    assert token["loopback"][0] == 202
    assert token["stored"] == ["SIM-loopback", "SIM-other_token"]


async def test_the_simulated_provider_is_off_beside_a_real_sms_adapter(tmp_path: Path) -> None:
    async with TwilioStandIn() as standin:
        settings = Settings(
            data_dir=tmp_path / "data",
            channels=[
                "channels.simulated:SimulatedSms",
                "channels.twilio.sms:TwilioSms",
                "channels.webchat:WebChat",
            ],
            channel_options={
                "sms": {
                    "account_sid": standin.account_sid,
                    "auth_token": standin.auth_token,
                    "from_number": "+14155550100",
                    "api_base_url": standin.base_url,
                },
                "webchat": {"allowed_origins": ["https://www.minghu.gov.cn"]},
            },
            default_locale="en",
        )
        rt = build_runtime(settings)
        try:
            sms = rt.channels.get("sms")
            assert type(sms).__name__ == "TwilioSms"
            lines = access_report(rt)
        finally:
            await rt.db.dispose()
    assert lines == [
        "sms: POST /channels/twilio/sms, /channels/twilio/sms/status — only requests signed "
        "by the provider (X-Twilio-Signature)",
        "webchat: GET /chat/, /chat/ws — open to everyone (https://www.minghu.gov.cn)",
        "webchat: GET /status, POST /status/lookup — open to everyone",
    ]


@pytest.mark.slow
def test_serve_says_which_channels_are_open_to_whom_and_simulate_refuses_a_real_provider(
    tmp_path: Path,
) -> None:
    import socket
    import time

    from tests.e2e.test_cli import free_port

    run(tmp_path, "migrate")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "callcenter.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(4)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(10)
    assert lines[0].startswith("callcenter: serving on")
    assert "sms：POST /channels/simulated/sms — 只接受本机" in lines[1]
    assert "webchat：GET /chat/, /chat/ws — 对所有人开放 (*)" in lines[2]

    env_twilio = {
        "CALLCENTER_CHANNELS": '["channels.twilio.sms:TwilioSms"]',
        "CALLCENTER_CHANNEL_OPTIONS": json.dumps(
            {
                "sms": {
                    "account_sid": "AC" + "0" * 32,
                    "auth_token": "x",
                    "from_number": "+14155550100",
                }
            }
        ),
    }
    refused = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "simulate", "sms", "--from", "13800000000", "x"],
        cwd=tmp_path,
        env={**env, **env_twilio},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "模拟短信服务已关闭" in refused.stderr
