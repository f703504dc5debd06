"""Schemathesis against the published OpenAPI schema: valid and invalid requests never get a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from .serve_helpers import RunningServer


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_the_openapi_schema_finds_no_server_error(discrete_server: RunningServer, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{discrete_server.url}/openapi.json")
    statuses: list[int] = []

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=discrete_server.url, timeout=10)
        statuses.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    check()
    assert statuses and max(statuses) < 500
    with discrete_server.client() as client:
        assert client.post("/v1/act", json={"observations": [[0.0] * 4]}).status_code == 200
