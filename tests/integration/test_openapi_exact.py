"""The OpenAPI document is the API: what it says is answered and taken, nothing else."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.test_api import Spec, auth, spec  # noqa: F401  (spec: a fixture)


async def test_every_get_documents_its_400_and_every_error_it_can_answer(spec: Spec) -> None:  # noqa: F811
    for path, item in spec.doc["paths"].items():
        for method, op in item.items():
            answers = set(op["responses"])
            assert {"400", "429"} <= answers, (method, path)
            if op.get("security"):
                assert {"401", "403"} <= answers, (method, path)
            if "{" in path:
                assert "404" in answers, (method, path)
            if "requestBody" in op:
                assert {"408", "413"} <= answers, (method, path)


async def test_an_unknown_query_parameter_on_a_get_is_a_documented_400(
    api: TestClient,
    spec: Spec,  # noqa: F811
) -> None:
    response = await api.get("/api/acd/me?surprise=1", headers=auth("agent1"))
    body = await response.json()
    assert response.status == 400 and body["error"]["details"]["problem"] == "extra_forbidden"
    spec.check("GET", "/api/acd/me", 400, body)


async def test_a_query_parameter_over_its_limit_is_a_documented_400_naming_it(
    api: TestClient,
    spec: Spec,  # noqa: F811
) -> None:
    """No body, so no 413 (which the document gives only where a body is taken)."""
    response = await api.get("/api/citizens?q=" + "王" * 101, headers=auth("agent1"))
    body = await response.json()
    assert response.status == 400 and body["error"]["code"] == "field_too_long"
    assert body["error"]["details"]["limit"] == 100
    spec.check("GET", "/api/citizens", 400, body)


async def test_the_csv_reports_are_described_and_served_as_csv(
    api: TestClient,
    spec: Spec,  # noqa: F811
) -> None:
    csv = [path for path in spec.doc["paths"] if path.endswith(".csv")]
    assert {"/reports/kpis.csv", "/reports/tickets.csv"} <= set(csv)
    for path in csv:
        content = spec.doc["paths"][path]["get"]["responses"]["200"]["content"]
        assert list(content) == ["text/csv"], path
        response = await api.get("/api" + path, headers=auth("supervisor"))
        assert response.status == 200 and response.content_type == "text/csv", path
        assert "," in (await response.text()).splitlines()[0]


async def _post_ticket(api: TestClient, data: bytes) -> tuple[int, Any]:
    response = await api.post(
        "/api/tickets",
        data=data,
        headers={**auth("agent1", "en"), "Content-Type": "application/json"},
    )
    return response.status, await response.json()


async def test_wrong_types_are_refused_not_coerced(api: TestClient) -> None:
    for body, field in (
        (b'{"description": "x", "lat": 30.1, "lon": false}', "lon"),
        (b'{"description": "x", "dispatch": 0}', "dispatch"),
        (b'{"description": "x", "priority": 1}', "priority"),
        (b'{"description": 5}', "description"),
        (b'{"description": "x", "citizen_id": "7"}', "citizen_id"),
        (b'{"description": "x", "citizen_id": 7.0}', "citizen_id"),
    ):
        status, answer = await _post_ticket(api, body)
        assert status == 400, (body, answer)
        assert answer["error"]["details"]["field"] == field, (body, answer)
    for blank in (b"", b"  \n"):
        status, answer = await _post_ticket(api, blank)
        assert status == 400 and answer["error"]["code"] == "missing_body", answer
    status, answer = await _post_ticket(api, b'{"description": "JSON types are fine", "lat": 30}')
    assert status == 400 and answer["error"]["details"]["field"] == "lon"  # lat alone
    status, answer = await _post_ticket(
        api, b'{"description": "an integer is a number", "lat": 30, "lon": 120}'
    )
    assert status == 201, answer


async def test_query_dates_must_be_written_as_dates(api: TestClient) -> None:
    for query in ("created_to=0.5", "created_from=1700000000", "created_to=yesterday"):
        response = await api.get(f"/api/tickets?{query}", headers=auth("agent1"))
        body = await response.json()
        assert response.status == 400, (query, body)
        assert body["error"]["details"]["field"] in ("created_to", "created_from")
    response = await api.get(
        "/api/tickets?created_from=2026-11-01T00:00:00%2B08:00&created_to=2026-11-30T00:00:00Z",
        headers=auth("agent1"),
    )
    assert response.status == 200
    for query in ("start=0.5", "end=1700000000"):
        response = await api.get(f"/api/reports/kpis?{query}", headers=auth("supervisor"))
        assert response.status == 400, query
    response = await api.get(
        "/api/reports/kpis?start=2026-11-01&end=2026-11-30", headers=auth("supervisor")
    )
    assert response.status == 200
