"""The parties' pages refuse bad input with a clear page in the party's language, and let
nobody in: an expired link, a changed signature, another party's link, wrong PINs (rate
limited), someone with no invitation, joining before the time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from callcenter.actions import mediations as med
from callcenter.bootstrap import build_runtime, create_app
from callcenter.clock import ManualClock
from tests.conftest import load_test_city, make_settings
from tests.integration.test_mediations import APPLICANT, RESPONDENT, case, link_and_pin, outbound


@pytest_asyncio.fixture
async def world(tmp_path: Path, sqlite_url: str, clock: ManualClock) -> AsyncIterator[Any]:
    settings = make_settings(tmp_path, sqlite_url)
    rt = build_runtime(settings, clock=clock, seed=5)
    app = create_app(settings, runtime=rt, start_jobs=False)
    async with TestClient(TestServer(app)) as client:
        await load_test_city(rt)
        _, dept, m = await case(rt)
        at = clock.now() + timedelta(days=1)
        await med.schedule_mediation(rt, m["id"], at, actor=dept)
        client.rt, client.clock, client.at = rt, clock, at  # type: ignore[attr-defined]
        client.zh = link_and_pin((await outbound(rt, APPLICANT))[0])  # type: ignore[attr-defined]
        client.en = link_and_pin((await outbound(rt, RESPONDENT))[0])  # type: ignore[attr-defined]
        yield client


async def page(client: TestClient, path: str, **kw: Any) -> tuple[int, str]:
    response = await client.request(kw.pop("method", "GET"), path, allow_redirects=False, **kw)
    return response.status, await response.text()


async def nothing_inside(client: TestClient, link: str) -> None:
    """Without the PIN's seat no page of the room answers with its contents."""
    status, _ = await page(client, f"/m/{link}/room")
    assert status in (303, 403, 404, 410)
    response = await client.post(f"/m/{link}/api/state", json={})
    assert response.status in (403, 404, 410)
    assert "janus" not in await response.text()


async def test_joining_before_the_time_says_when_the_room_opens(world: Any) -> None:
    link, _ = world.zh
    status, text = await page(world, f"/m/{link}")
    assert status == 403 and "调解室于" in text and "开放" in text
    assert "无法进入调解室" in text and "12345" in text  # what to do: call the hotline
    await nothing_inside(world, link)


async def test_a_changed_signature_or_no_invitation_is_not_valid(world: Any) -> None:
    world.clock.set(world.at - timedelta(minutes=5))
    link, _ = world.en
    party, nonce, sig = link.split("-")
    forged = f"{party}-{nonce}-{sig[::-1]}"
    status, text = await page(world, f"/m/{forged}")
    assert status == 404 and "This link is not valid." in text  # the party's own language
    for stranger in ("1-abc-def", "nothing", f"{int(party) + 50}-{nonce}-{sig}"):
        status, text = await page(world, f"/m/{stranger}", headers={"Accept-Language": "zh-CN"})
        assert status == 404 and "此链接无效" in text
        await nothing_inside(world, stranger)
    status, _ = await page(world, f"/m/{forged}", method="POST", data={"pin": world.en[1]})
    assert status == 404
    await nothing_inside(world, forged)


async def test_another_party_s_link_and_wrong_pins_get_nowhere_then_are_locked(
    world: Any,
) -> None:
    world.clock.set(world.at - timedelta(minutes=5))
    (link_zh, pin_zh), (_link_en, pin_en) = world.zh, world.en
    status, text = await page(world, f"/m/{link_zh}", method="POST", data={"pin": pin_en})
    assert status == 403 and "密码错误，还可尝试4次" in text  # the other party's PIN
    for left in (3, 2, 1):
        status, text = await page(world, f"/m/{link_zh}", method="POST", data={"pin": "123"})
        assert status == 403 and f"还可尝试{left}次" in text
    response = await world.post(f"/m/{link_zh}", data={"pin": "999"}, allow_redirects=False)
    assert response.status == 429 and "密码错误次数过多" in await response.text()  # the fifth
    response = await world.post(f"/m/{link_zh}", data={"pin": pin_zh}, allow_redirects=False)
    assert response.status == 429  # even the right PIN, while locked
    assert int(response.headers["Retry-After"]) > 60
    assert not any(c.key.startswith("seat_") for c in world.session.cookie_jar)
    await nothing_inside(world, link_zh)
    world.clock.advance(minutes=16)
    response = await world.post(f"/m/{link_zh}", data={"pin": pin_zh}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == f"/m/{link_zh}/room"


async def test_a_place_in_use_and_an_expired_link_are_refused(world: Any) -> None:
    world.clock.set(world.at - timedelta(minutes=5))
    link, pin = world.en
    response = await world.post(f"/m/{link}", data={"pin": pin}, allow_redirects=False)
    assert response.status == 303
    status, text = await page(world, f"/m/{link}/room")
    assert status == 200 and "Do you agree to be recorded?" in text
    response = await world.post(f"/m/{link}/api/enter", json={"consent": True})
    assert response.status == 200
    other = TestClient(TestServer(world.app), loop=None)  # a second browser, same link
    await other.start_server()
    try:
        status, text = await page(other, f"/m/{link}", method="POST", data={"pin": pin})
        assert status == 409 and "in use on another device" in text
        await nothing_inside(other, link)
    finally:
        await other.close()
    world.clock.set(world.at + timedelta(hours=3))
    status, text = await page(world, f"/m/{link}")
    assert status == 410 and "This link has expired." in text
    await nothing_inside(world, link)


async def test_the_agreement_link_gives_the_pdf_to_its_party_only(world: Any) -> None:
    from sqlalchemy import update

    from callcenter.actions.mediation_files import agreement_pdf
    from callcenter.store.tables import mediation_parties, mediations

    rt = world.rt
    async with rt.db.read() as conn:
        party = (
            await conn.execute(mediation_parties.select().order_by(mediation_parties.c.id))
        ).first()
    out = rt.settings.data_dir / "documents" / "agreement.pdf"
    out.parent.mkdir(parents=True, exist_ok=True)
    agreement_pdf(
        rt,
        out,
        {
            "number": "20261127-0001", "time": "2026-11-28 10:00", "issued": "2026-11-28 11:00",
            "outcome": "agreement", "agreement": "月底前修好管道。", "mediator": "调解员",
            "parties": [{"name": "张伟", "role": "applicant", "phone": APPLICANT}],
        },
    )  # fmt: skip
    async with rt.transaction() as tx:  # as the agreement job leaves it
        await tx.execute(
            update(mediations).values(state="concluded", agreement_path="documents/agreement.pdf")
        )
    link = med.make_link(rt, party.id, party.nonce, "doc")
    response = await world.get(f"/m/doc/{link}")
    assert response.status == 200 and response.content_type == "application/pdf"
    assert (await response.read())[:5] == b"%PDF-"
    join_link = med.make_link(rt, party.id, party.nonce)  # the room's link is not the document's
    status, text = await page(world, f"/m/doc/{join_link}")
    assert status == 404 and "此链接无效" in text
