"""Readiness and Prometheus metrics (``callcenter/ops.py``), over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from callcenter.bootstrap import build_runtime, create_app
from tests.conftest import load_test_city, make_settings


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


async def _client(settings: Any) -> TestClient:
    rt = build_runtime(settings, seed=1)
    client = TestClient(TestServer(create_app(settings, runtime=rt, start_jobs=False)))
    await client.start_server()
    client.rt = rt  # type: ignore[attr-defined]
    return client


@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> AsyncIterator[TestClient]:
    client = await _client(make_settings(tmp_path, database_url, ops={"metrics_token": "s3cret"}))
    await load_test_city(client.rt)  # type: ignore[attr-defined]
    yield client
    await client.close()


async def test_ready_checks_what_is_configured(node: TestClient) -> None:
    answer = await node.get("/ready")
    assert answer.status == 200
    assert await answer.json() == {"ready": True, "checks": {"database": {"ok": True}}}


async def test_a_redis_that_does_not_answer_makes_the_node_unready(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    down = make_settings(
        tmp_path / "down", sqlite_url, redis_url="redis://127.0.0.1:1/0", jobs={"driver": "celery"}
    )
    client = await _client(down)
    try:
        answer = await client.get("/ready")
        body = await answer.json()
        assert answer.status == 503, body
        assert body["checks"]["database"] == {"ok": True}
        assert (
            body["checks"]["redis"]["ok"] is False
            and "Connection" in body["checks"]["redis"]["error"]
        )
        assert body["checks"]["broker"]["ok"] is False
    finally:
        await client.close()
    up = make_settings(tmp_path / "up", sqlite_url, redis_url=redis_url, jobs={"driver": "celery"})
    client = await _client(up)
    try:
        answer = await client.get("/ready")
        assert answer.status == 200
        assert set((await answer.json())["checks"]) == {"database", "redis", "broker"}
    finally:
        await client.close()


async def test_metrics_count_requests_webhooks_jobs_inbox_and_agents(node: TestClient) -> None:
    for n in range(3):
        answer = await node.post(
            "/channels/simulated/sms?wait=1",
            json={"from": f"+861380000020{n}", "text": "你好"},
        )
        assert answer.status == 201
    scraped = await node.get("/metrics")
    assert scraped.status == 200
    assert scraped.headers["Content-Type"].startswith("text/plain")
    got = samples(await scraped.text())
    key = (("method", "POST"), ("route", "/channels/simulated/sms"), ("status", "201"))
    assert got[("hotline_http_requests_total", key)] == 3
    assert got[("hotline_webhook_seconds_count", (("channel", "simulated"),))] == 3
    # the jobs do not run here: what the texts caused is due and waiting
    assert got[("hotline_jobs", (("state", "due"),))] >= 3
    assert got[("hotline_jobs", (("state", "dead"),))] == 0
    assert got[("hotline_jobs_oldest_due_seconds", ())] >= 0
    assert got[("hotline_inbox_backlog", (("state", "pending"),))] == 0
    assert got[("hotline_queue_waiting", (("queue", "general"),))] == 3
    assert got[("hotline_queue_longest_wait_seconds", (("queue", "general"),))] >= 0
    assert ("hotline_agents", (("presence", "available"),)) in got


async def test_only_this_machine_or_the_token_holder_reads_them(node: TestClient) -> None:
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    for path in ("/metrics", "/ready"):
        assert (await node.get(path, headers=proxied)).status == 403
        token = {**proxied, "Authorization": "Bearer s3cret"}
        assert (await node.get(path, headers=token)).status == 200
        wrong = {**proxied, "Authorization": "Bearer nope"}
        assert (await node.get(path, headers=wrong)).status == 403
