"""Schemathesis against the published OpenAPI schema: valid and invalid requests never get a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from .serve_helpers import RunningServer


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("model", ["cartpole", "trading"])
def test_fuzzing_the_openapi_schema_finds_no_server_error(
    model: str, mode: GenerationMode, request: pytest.FixtureRequest
) -> None:
    # CartPole has no observation contract (/v1/act/bars answers 409); the trading model has one.
    server: RunningServer = request.getfixturevalue("discrete_server" if model == "cartpole" else "multi_server")
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
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
        response = case.call(base_url=server.url, timeout=10)
        statuses.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    check()
    assert statuses and max(statuses) < 500
    with server.client() as client:
        width = client.get("/v1/model").json()["observation_space"]["shape"][0]
        assert client.post("/v1/act", json={"observations": [[0.0] * width]}).status_code == 200
