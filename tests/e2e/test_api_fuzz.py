"""A schema fuzzer (schemathesis, as a library) against the live server, with every role's
token and none: no 5xx, every answer matching its schema and content type, every status
documented, and data the document calls invalid refused.

Bounded: ``CALLCENTER_FUZZ_EXAMPLES`` examples (3 by default) per operation and role,
with valid data for every operation first, then invalid data, and at most
``CALLCENTER_FUZZ_SECONDS`` (90) in all.
Hypothesis runs derandomized, so a run is repeatable; set ``CALLCENTER_FUZZ_SEED``
to explore other inputs, and more examples for a longer hunt.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from callcenter.config import JobSettings, SecuritySettings
from tests.e2e.test_browser import Server

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("CALLCENTER_FUZZ_EXAMPLES", "3"))
SECONDS = float(os.environ.get("CALLCENTER_FUZZ_SECONDS", "90"))
SEED = os.environ.get("CALLCENTER_FUZZ_SEED")
ROLES = ["agent1", "supervisor", "admin", "mh-water", None]  # None: no token


class LiveServer(Server):
    """The whole server (API, channels, pages) in a thread, as the browser tests run it."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        # the fuzzer sends made-up tokens: locking its address out would leave nothing but
        # 429s to check
        self.settings = self.settings.model_copy(
            update={
                "jobs": JobSettings(driver="none"),
                "security": SecuritySettings(bad_tokens_per_ip=10**9),
            }
        )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("fuzz"))
    server.thread.start()
    assert server.ready.wait(60)
    yield server
    server.stop()


def test_the_api_answers_every_generated_request_as_its_document_says(live: LiveServer) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        negative_data_rejection,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )
    from schemathesis.config import SchemathesisConfig

    checks = [
        not_a_server_error,
        status_code_conformance,
        response_schema_conformance,
        content_type_conformance,
        negative_data_rejection,
    ]
    document = requests.get(live.url + "/api/openapi.json", timeout=10).json()
    # a text over its limit in a body is refused with 413 (docs/api.md), which
    # schemathesis does not count as a refusal unless told; its own list, and that
    refusals = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428"]
    refusals += ["429", "5xx"]
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": refusals}}}
    )
    schema = schemathesis.openapi.from_dict(document, config=config)
    session = requests.Session()
    failures: dict[str, set[str]] = {}
    statuses: Counter[tuple[str, bool, int]] = Counter()
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40, "the document lists every operation"

    def fuzz(operation: Any, mode: Any) -> None:
        @settings(
            max_examples=EXAMPLES * len(ROLES),
            deadline=None,
            database=None,
            derandomize=SEED is None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @given(case=operation.as_strategy(generation_mode=mode), role=st.sampled_from(ROLES))
        def run(case: Any, role: str | None) -> None:
            token = {"Authorization": f"Bearer demo-{role}"} if role else {}
            case.headers = {**(case.headers or {}), **token}
            response = case.call(base_url=live.url + "/api", session=session, timeout=30)
            statuses[(mode.value, bool(token), response.status_code // 100)] += 1
            try:
                case.validate_response(response, checks=checks)
            except BaseException as exc:  # schemathesis raises failure groups
                if isinstance(exc, KeyboardInterrupt):
                    raise
                lines = [line for line in str(exc).splitlines() if line.strip()]
                failures.setdefault(operation.label, set()).add(" | ".join(lines[:8]))

        if SEED is not None:
            run = hypothesis.seed(int(SEED))(run)
        with contextlib.suppress(Unsatisfiable):  # no invalid data for some operations
            run()

    # every operation with valid data first, then with invalid data: a run cut short by
    # the time limit has still reached every operation
    reached: Counter[str] = Counter()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:
            if time.monotonic() - started < SECONDS:
                fuzz(operation, mode)
                reached[mode.value] += 1

    elapsed = time.monotonic() - started
    print(f"operations reached: {dict(reached)} of {len(operations)}")
    print(
        f"fuzzed {sum(statuses.values())} requests in {elapsed:.0f} s: {sorted(statuses.items())}"
    )
    assert not failures, "\n".join(
        f"{label}:\n  " + "\n  ".join(sorted(found)[:5])
        for label, found in sorted(failures.items())
    )
    assert reached["positive"] == len(operations), "every operation got valid data"
    # the run did reach the API: valid data with a token was answered 2xx many times
    assert statuses[("positive", True, 2)] >= 2 * len(operations)
    assert sum(statuses.values()) >= 8 * len(operations)
