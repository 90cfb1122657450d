"""TOTP two-factor sign-in over real HTTP on the injected clock: required for admins and
supervisors (enrolled with a QR code at the first sign-in), a code good in its window,
refused outside it, never twice; wrong codes are failed sign-ins that lock."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from callcenter.domain.totp import code_at
from callcenter.store.tables import audit_events, users
from tests.conftest import load_test_city, make_settings
from tests.integration.test_staff_auth import login


@pytest_asyncio.fixture
async def client(tmp_path: Path, sqlite_url: str, clock: ManualClock) -> AsyncIterator[TestClient]:
    settings = make_settings(
        tmp_path, sqlite_url, staff={"two_factor_roles": ["admin", "supervisor"]}
    )
    rt = build_runtime(settings, clock=clock, seed=1)
    async with TestClient(TestServer(create_app(settings, runtime=rt, start_jobs=False))) as c:
        await load_test_city(rt)
        c.rt = rt  # type: ignore[attr-defined]
        yield c


async def code(client: TestClient, value: str) -> tuple[int, str]:
    response = await client.post("/ui/login/code", data={"code": value}, allow_redirects=False)
    return response.status, await response.text()


async def _secret(client: TestClient, username: str) -> str | None:
    async with client.rt.db.read() as conn:  # type: ignore[attr-defined]
        return await conn.scalar(select(users.c.totp_secret).where(users.c.username == username))


async def test_required_enrolled_then_codes_in_window_once(client: TestClient) -> None:
    clock: ManualClock = client.rt.clock  # type: ignore[attr-defined]
    first = await login(client, "admin")
    page = await first.text()
    assert first.status == 200 and 'id="qr" src="data:image/svg+xml' in page
    secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', page)
    assert secret is not None
    assert (await client.get("/api/me")).status == 401  # no session yet
    status, text = await code(
        client, "000000" if code_at(secret[1], clock.now()) != "000000" else "111111"
    )
    assert status == 400 and "验证码不正确" in text
    assert await _secret(client, "admin") is None  # a wrong code enrols nothing
    status, _ = await code(client, code_at(secret[1], clock.now()))
    assert status == 303 and (await client.get("/api/me")).status == 200
    assert await _secret(client, "admin") == secret[1]
    used = code_at(secret[1], clock.now())

    async def again(value: str) -> int:
        client.session.cookie_jar.clear()
        response = await login(client, "admin")
        assert response.status == 200 and 'id="qr"' not in await response.text()
        return (await code(client, value))[0]

    assert await again(used) == 400  # the same code is never taken twice
    clock.advance(seconds=30)
    assert await again(code_at(secret[1], clock.now() - timedelta(seconds=30))) == 400  # used step
    assert await again(code_at(secret[1], clock.now() + timedelta(seconds=90))) == 400  # too early
    assert await again(code_at(secret[1], clock.now() + timedelta(seconds=30))) == 303  # clock skew
    clock.advance(seconds=300)
    assert await again(code_at(secret[1], clock.now() - timedelta(seconds=90))) == 400  # too late
    assert await again(code_at(secret[1], clock.now())) == 303
    async with client.rt.db.read() as conn:  # type: ignore[attr-defined]
        actions = [
            r.action
            for r in (
                await conn.execute(
                    select(audit_events.c.action)
                    .where(audit_events.c.entity_type == "user")
                    .order_by(audit_events.c.seq)
                )
            ).all()
        ]
    assert actions.count("user.two_factor_on") == 1
    assert actions.count("user.login") == 3 and actions.count("user.login_failed") == 5


async def test_wrong_codes_lock_the_account(client: TestClient) -> None:
    response = await login(client, "supervisor")
    assert response.status == 200 and 'id="qr"' in await response.text()
    statuses = [(await code(client, "12345x"))[0] for _ in range(5)]
    assert statuses[:4] == [400] * 4
    client.session.cookie_jar.clear()
    assert (await login(client, "supervisor")).status == 429  # locked, even the password


async def test_others_sign_in_with_a_password(client: TestClient) -> None:
    assert (await login(client, "agent1")).status == 303


async def test_an_agent_turns_it_on_and_then_needs_it(client: TestClient) -> None:
    from tests.integration.test_staff_auth import csrf_of

    clock: ManualClock = client.rt.clock  # type: ignore[attr-defined]
    assert (await login(client, "agent1")).status == 303
    token = csrf_of(await (await client.get("/ui/account")).text())
    page = await client.post("/ui/account/two_factor", data={"csrf": token, "turn": "on"})
    secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', await page.text())
    assert page.status == 200 and secret is not None
    assert (await code(client, code_at(secret[1], clock.now())))[0] == 303
    assert await _secret(client, "agent1") == secret[1]
    client.session.cookie_jar.clear()
    second = await login(client, "agent1")  # now the agent too signs in in two steps
    assert second.status == 200 and 'id="code"' in await second.text()
    clock.advance(seconds=30)
    assert (await code(client, code_at(secret[1], clock.now())))[0] == 303
