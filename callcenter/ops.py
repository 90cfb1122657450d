"""What the operators' tools ask a node: is it ready, and how is it doing.

- ``GET /ready``: readiness for a load balancer: the database, Redis (``redis_url``),
  the Celery broker (``jobs.driver = "celery"``) and the media server (unless
  ``media.janus = "off"``), each within ``CHECK_SECONDS``; 200 when every one that is
  configured answers, else 503, with what each said. ``GET /api/health`` stays the
  liveness check (the process answers).
- ``GET /metrics``: Prometheus' text format (``prometheus-client``, a registry of this
  node's own): requests by route and status, request and webhook latency; and, read
  from the database at each scrape, the jobs due, scheduled, running and dead, the
  inbox's backlog, the contacts waiting in each queue and the longest wait, the agents
  by presence. Counts from the database are the cluster's (every node reports the same);
  requests and latencies are this node's.

Only this machine may read them (a direct connection from loopback with no proxy
header), or whoever shows ``ops.metrics_token`` as a bearer token.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from callcenter.runtime import Runtime
from callcenter.store.tables import agent_states, conversations, inbox, jobs

CHECK_SECONDS = 2.0
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """This node's Prometheus registry and the figures it serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "hotline_http_requests",
            "Requests answered, by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "hotline_http_request_seconds",
            "Time to answer a request, by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.webhooks = Histogram(
            "hotline_webhook_seconds",
            "Time to answer a provider's webhook (stored before the answer), by channel",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.jobs = Gauge("hotline_jobs", "Jobs in the outbox, by state", ["state"], registry=r)
        self.oldest_due = Gauge(
            "hotline_jobs_oldest_due_seconds", "How long the oldest due job has waited", registry=r
        )
        self.inbox = Gauge(
            "hotline_inbox_backlog", "Stored inbound texts not handled yet", ["state"], registry=r
        )
        self.inbox_oldest = Gauge(
            "hotline_inbox_oldest_pending_seconds",
            "How long the oldest unhandled text has waited",
            registry=r,
        )
        self.waiting = Gauge(
            "hotline_queue_waiting", "Contacts waiting for an agent", ["queue"], registry=r
        )
        self.longest_wait = Gauge(
            "hotline_queue_longest_wait_seconds",
            "The longest current wait for an agent",
            ["queue"],
            registry=r,
        )
        self.agents = Gauge("hotline_agents", "Agents by presence", ["presence"], registry=r)
        self.bus = Gauge(
            "hotline_bus_connected", "1 when the live events' Redis answers", registry=r
        )

    async def refresh(self, rt: Runtime) -> None:
        """Read the figures that live in the database (at each scrape)."""
        now = rt.clock.now()
        async with rt.db.read(long=True) as conn:
            by_state = dict(
                (
                    await conn.execute(
                        select(jobs.c.state, func.count())
                        .where(jobs.c.state.in_(("running", "dead")))
                        .group_by(jobs.c.state)
                    )
                ).all()
            )
            due_count, oldest_due = (
                await conn.execute(
                    select(func.count(), func.min(jobs.c.run_at)).where(
                        jobs.c.state == "pending", jobs.c.run_at <= now
                    )
                )
            ).one()
            scheduled = await conn.scalar(
                select(func.count()).where(jobs.c.state == "pending", jobs.c.run_at > now)
            )
            inbox_rows = (
                await conn.execute(
                    select(inbox.c.state, func.count(), func.min(inbox.c.received_at))
                    .where(inbox.c.state.in_(("pending", "failed")))
                    .group_by(inbox.c.state)
                )
            ).all()
            waiting = conversations.c
            waits = (
                await conn.execute(
                    select(waiting.queue, func.count(), func.min(waiting.queued_at))
                    .where(waiting.state == "queued")
                    .group_by(waiting.queue)
                )
            ).all()
            presence = (
                await conn.execute(
                    select(agent_states.c.presence, func.count()).group_by(agent_states.c.presence)
                )
            ).all()
        counts = {
            "due": due_count,
            "scheduled": scheduled or 0,
            "running": by_state.get("running", 0),
            "dead": by_state.get("dead", 0),
        }
        for state, count in counts.items():
            self.jobs.labels(state).set(count)
        self.oldest_due.set((now - oldest_due).total_seconds() if oldest_due else 0)
        backlog = {"pending": 0, "failed": 0}
        oldest_text = None
        for state, count, first in inbox_rows:
            backlog[state] = count
            if state == "pending":
                oldest_text = first
        for state, count in backlog.items():
            self.inbox.labels(state).set(count)
        self.inbox_oldest.set((now - oldest_text).total_seconds() if oldest_text else 0)
        self.waiting.clear()
        self.longest_wait.clear()
        for queue, count, first in waits:
            self.waiting.labels(queue or "").set(count)
            wait = (now - first).total_seconds() if first is not None else 0
            self.longest_wait.labels(queue or "").set(max(wait, 0))
        self.agents.clear()
        for state in ("available", "busy", "wrap_up", "away"):
            self.agents.labels(state).set(0)
        for state, count in presence:
            self.agents.labels(state).set(count)
        connected = getattr(rt.bus, "connected", None)
        self.bus.set(1 if connected is None or connected else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        info = request.match_info
        resource = info.route.resource if info.route is not None else None
        route = resource.canonical if resource is not None else "unmatched"
        self.requests.labels(request.method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if request.path.startswith("/channels/"):
            self.webhooks.labels(request.path.split("/")[2]).observe(seconds)


def metrics_middleware(metrics: Metrics) -> Any:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as answer:
            metrics.observe(request, answer.status, time.perf_counter() - started)
            raise
        except Exception:
            metrics.observe(request, 500, time.perf_counter() - started)
            raise
        metrics.observe(request, response.status, time.perf_counter() - started)
        return response

    return middleware


# --- readiness -------------------------------------------------------------------------


async def _bounded(check: Awaitable[Any]) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            await check
    except Exception as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    return {"ok": True}


async def _database(rt: Runtime) -> None:
    async with rt.db.read() as conn:
        await conn.execute(text("SELECT 1"))


async def _redis(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=CHECK_SECONDS)
    try:
        await client.ping()
    finally:
        await client.aclose()


def _broker_blocking(url: str) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=CHECK_SECONDS) as connection:
        connection.ensure_connection(max_retries=1)


async def _broker(url: str) -> None:
    if url.startswith(("redis://", "rediss://")):
        await _redis(url)
    else:
        await asyncio.to_thread(_broker_blocking, url)


async def _media(rt: Runtime) -> None:
    if rt.media is None or not rt.media.healthy:
        raise ConnectionError("no media node answers")


async def readiness(rt: Runtime) -> dict[str, Any]:
    """Each dependency this node is configured with, and whether it answers."""
    settings = rt.settings
    checks: dict[str, Awaitable[dict[str, Any]]] = {"database": _bounded(_database(rt))}
    if settings.redis_url:
        checks["redis"] = _bounded(_redis(settings.redis_url))
    broker = settings.jobs.broker_url or settings.redis_url
    if settings.jobs.driver == "celery" and broker:
        checks["broker"] = _bounded(_broker(broker))
    if rt.media is not None and rt.media.enabled:
        checks["media"] = _bounded(_media(rt))
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    return {"ready": all(r["ok"] for r in results.values()), "checks": results}


# --- who may ask -----------------------------------------------------------------------


def may_read(request: web.Request, token: str | None) -> bool:
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False  # came through a proxy: not this machine's own scraper
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


# --- the routes ------------------------------------------------------------------------

METRICS = web.AppKey("metrics", Metrics)


def setup_ops(app: web.Application, rt: Runtime) -> None:
    """``/ready`` and ``/metrics``, and the middleware that counts requests (outermost,
    so that it sees every answer as it leaves)."""
    metrics = app[METRICS] = Metrics()
    token = rt.settings.ops.metrics_token

    async def ready(request: web.Request) -> web.Response:
        if not may_read(request, token):
            raise web.HTTPForbidden()
        answer = await readiness(rt)
        return web.json_response(answer, status=200 if answer["ready"] else 503)

    async def scrape(request: web.Request) -> web.Response:
        if not may_read(request, token):
            raise web.HTTPForbidden()
        await metrics.refresh(rt)
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", scrape)
    app.middlewares.insert(0, metrics_middleware(metrics))
