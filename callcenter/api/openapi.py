"""The OpenAPI 3.1 document, made from the endpoint registry and its pydantic models."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from callcenter import __version__
from callcenter.api.http import ENDPOINTS, Endpoint
from callcenter.api.schemas import ErrorOut

REF = "#/components/schemas/{model}"
_ERROR_TEXT = {
    400: "Invalid input (also: a query parameter or body field the operation does not know)",
    401: "No valid credentials",
    403: "Not allowed for this role or department",
    404: "Not found",
    408: "The body did not arrive in time",
    409: "Conflicts with the current state (illegal workflow step, stale version)",
    413: "The body is over 64 kB, or a text in it over its limit (field_too_long)",
    429: "Too many attempts (wrong tokens from this address): see Retry-After",
    503: "A service it needs (the media server, a channel) is not available now",
}


def error_statuses(ep: Endpoint) -> list[int]:
    """Every error status the operation can answer, whatever its handler declares: the
    request's own checks can refuse any of them, so the document says so."""
    found = set(ep.errors) | {400, 429}  # unknown parameters; wrong tokens from the address
    if ep.roles is not None:
        found |= {401, 403}
    if "{" in ep.path:
        found.add(404)
    if ep.body is not None:
        found |= {408, 413}
    return sorted(found)


def _model_of(response: Any) -> type[BaseModel] | None:
    if response is None:
        return None
    if getattr(response, "__origin__", None) is list:
        return response.__args__[0]  # type: ignore[no-any-return,unused-ignore]
    return response  # type: ignore[no-any-return,unused-ignore]


@lru_cache(maxsize=4)
def build_openapi(server_url: str) -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], Any]] = [(ErrorOut, "serialization")]
    for ep in ENDPOINTS:
        if ep.body is not None:
            wanted.append((ep.body, "validation"))
        model = _model_of(ep.response)
        if model is not None:
            wanted.append((model, "serialization"))
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(unique, ref_template=REF)
    schemas = top.get("$defs", {})

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return refs[(model, mode)]  # type: ignore[index]

    paths: dict[str, dict[str, Any]] = {}
    for ep in ENDPOINTS:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, ref)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Citizen hotline API",
            "version": __version__,
            "description": (
                "JSON API of the citizen hotline. Errors are "
                "`{error: {code, message, details}}`, the message in the caller's language "
                "(`?lang=` or Accept-Language: zh-CN or en)."
            ),
        },
        "servers": [{"url": server_url + "/api"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }


def _operation(ep: Endpoint, ref: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": ep.name,
        "summary": ep.summary,
        "tags": [ep.tag],
        "parameters": [],
        "responses": {},
    }
    for name in re.findall(r"{(\w+)}", ep.path):
        operation["parameters"].append(
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        )
    if ep.query is not None:
        schema = ep.query.model_json_schema(ref_template=REF)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": {k: v for k, v in prop.items() if k != "title"},
            }
            if "description" in prop:
                param["description"] = prop["description"]
            operation["parameters"].append(param)
    if ep.roles is not None:
        operation["security"] = [{"bearer": []}]
        operation["x-roles"] = sorted(r.value for r in ep.roles)
    if ep.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(ep.body, "validation")}},
        }
    model = _model_of(ep.response)
    if ep.media_type != "application/json":
        operation["responses"][str(ep.status)] = {
            "description": "OK",
            "content": {ep.media_type: {"schema": {"type": "string"}}},
        }
    elif ep.status == 204:
        operation["responses"]["204"] = {"description": "Done"}
    elif model is not None:
        schema = ref(model, "serialization")
        if getattr(ep.response, "__origin__", None) is list:
            schema = {"type": "array", "items": schema}
        operation["responses"][str(ep.status)] = {
            "description": "OK",
            "content": {"application/json": {"schema": schema}},
        }
    else:
        operation["responses"][str(ep.status)] = {
            "description": "OK",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    for status in error_statuses(ep):
        operation["responses"][str(status)] = {
            "description": _ERROR_TEXT[status],
            "content": {"application/json": {"schema": ref(ErrorOut, "serialization")}},
        }
    return operation
