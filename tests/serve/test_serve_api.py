"""The HTTP API against a real server: actions equal load_policy's, metrics follow traffic, auth, bad input."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from ml.agents.checkpoint import Checkpoint, save_checkpoint
from ml.agents.networks import ActorCritic
from ml.agents.policy import load_policy
from ml.agents.spaces import SpaceSpec

from .conftest import Checkpoints
from .serve_helpers import RunningServer, metric, serving


def act(client: httpx.Client, observations: Any) -> httpx.Response:
    return client.post("/v1/act", json={"observations": observations})


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_actions_equal_load_policy_for_the_same_observations(
    kind: str, checkpoints: Checkpoints, discrete_server: RunningServer, continuous_server: RunningServer
) -> None:
    path = getattr(checkpoints, kind)
    server = discrete_server if kind == "discrete" else continuous_server
    policy = load_policy(path)
    obs = np.random.default_rng(1).normal(scale=2.0, size=(37, policy.spec.obs_dim)).astype(np.float32)
    expected = policy.act(obs, deterministic=True)
    with torch.no_grad():
        values = policy.model.value(policy.preprocess(obs)).numpy()
    with server.client() as client:
        response = act(client, obs.tolist())
        version = client.get("/v1/model").json()["version"]
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == version
    np.testing.assert_allclose(body["values"], values, rtol=1e-5, atol=1e-6)
    if kind == "discrete":
        assert body["actions"] == expected.tolist()
        probabilities = np.asarray(body["probabilities"])
        assert probabilities.shape == (37, policy.spec.num_actions)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        assert (probabilities.argmax(axis=1) == expected).all()
        assert "mean" not in body
    else:
        np.testing.assert_allclose(body["actions"], expected, rtol=1e-5, atol=1e-6)
        actions = np.asarray(body["actions"])
        assert actions.min() >= -2.0 and actions.max() <= 2.0
        np.testing.assert_allclose(np.clip(body["mean"], -2.0, 2.0), actions, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(body["std"], np.exp(policy.model.log_std.detach().numpy()).repeat(37)[:, None])
        assert "probabilities" not in body


def test_concurrent_single_observations_each_get_their_own_action(
    checkpoints: Checkpoints, discrete_server: RunningServer
) -> None:
    policy = load_policy(checkpoints.discrete)
    obs = np.random.default_rng(2).normal(size=(48, 4)).astype(np.float32)
    expected = policy.act(obs, deterministic=True)
    passes_before = metric(discrete_server, "rlops_serve_inference_batch_size_count")
    with discrete_server.client() as client, ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda row: act(client, [row.tolist()]), obs))
    assert [r.status_code for r in responses] == [200] * 48
    assert [r.json()["actions"][0] for r in responses] == expected.tolist()
    passes = metric(discrete_server, "rlops_serve_inference_batch_size_count") - passes_before
    assert 1 <= passes <= 48


def test_model_endpoint_describes_checkpoint_and_spaces(
    checkpoints: Checkpoints, discrete_server: RunningServer, continuous_server: RunningServer
) -> None:
    with discrete_server.client() as client:
        info = client.get("/v1/model").json()
    digest = hashlib.sha256(checkpoints.discrete.read_bytes()).hexdigest()
    assert info["checkpoint_sha256"] == digest
    assert info["version"] == digest[:12]
    assert info["name"] == "ppo-CartPole-v1"
    assert info["algo"] == "ppo"
    assert info["checkpoint"] == str(checkpoints.discrete)
    assert info["dataset_fingerprint"] is None  # a gymnasium task has no dataset
    assert info["global_step"] == 128
    assert info["observation_space"] == {"shape": [4], "dtype": "float32"}
    assert info["action_space"]["kind"] == "discrete" and info["action_space"]["n"] == 2
    with continuous_server.client() as client:
        space = client.get("/v1/model").json()["action_space"]
    assert space == {"kind": "continuous", "n": None, "nvec": None, "shape": [1], "low": [-2.0], "high": [2.0]}


def test_metrics_move_with_traffic(discrete_server: RunningServer) -> None:
    ok = {"route": "/v1/act", "method": "POST", "status": "200"}
    bad = {"route": "/v1/act", "method": "POST", "status": "422"}
    before = {
        "ok": metric(discrete_server, "rlops_serve_requests_total", **ok),
        "bad": metric(discrete_server, "rlops_serve_requests_total", **bad),
        "latency": metric(discrete_server, "rlops_serve_request_duration_seconds_count", **ok),
        "observations": metric(discrete_server, "rlops_serve_inference_batch_size_sum"),
    }
    with discrete_server.client() as client:
        for _ in range(5):
            assert act(client, [[0.0, 0.1, 0.2, 0.3]] * 3).status_code == 200
        assert act(client, [[0.0]]).status_code == 422
    assert metric(discrete_server, "rlops_serve_requests_total", **ok) == before["ok"] + 5
    assert metric(discrete_server, "rlops_serve_requests_total", **bad) == before["bad"] + 1
    assert metric(discrete_server, "rlops_serve_request_duration_seconds_count", **ok) == before["latency"] + 5
    assert metric(discrete_server, "rlops_serve_inference_batch_size_sum") == before["observations"] + 15
    version = discrete_server.service.state.model.info.version  # type: ignore[union-attr]
    assert metric(discrete_server, "rlops_serve_model_info", version=version, algo="ppo") == 1
    assert metric(discrete_server, "rlops_serve_ready") == 1
    text = httpx.get(f"{discrete_server.url}/metrics")
    assert text.headers["content-type"].startswith("text/plain")


@pytest.fixture(scope="module")
def secured_server(checkpoints: Checkpoints) -> Iterator[RunningServer]:
    with serving(checkpoints.discrete, auth_token="s3cret-token") as server:
        yield server


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer wrong-token"}, "invalid bearer token"),
        ({"Authorization": "Basic czNjcmV0LXRva2Vu"}, "missing bearer token"),
        ({"Authorization": "Bearer s3cret-token-and-more"}, "invalid bearer token"),
    ],
)
def test_auth_on_rejects_without_the_right_token(
    secured_server: RunningServer, headers: dict[str, str], reason: str
) -> None:
    with secured_server.client(headers=headers) as client:
        for response in (act(client, [[0.0] * 4]), client.get("/v1/model")):
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            body = response.json()
            assert body["error"] == "unauthorized" and reason in body["message"]
            assert body["fields"][0]["field"] == "Authorization"
        # Probes and metrics stay open: the kubelet and Prometheus carry no token.
        for path in ("/healthz", "/readyz", "/metrics"):
            assert client.get(path).status_code == 200
    with secured_server.client(headers={"Authorization": "Bearer s3cret-token"}) as client:
        assert act(client, [[0.0] * 4]).status_code == 200


def test_auth_off_needs_no_token(discrete_server: RunningServer) -> None:
    with discrete_server.client() as client:
        assert act(client, [[0.0] * 4]).status_code == 200
        assert client.get("/v1/model").status_code == 200
    schema = httpx.get(f"{discrete_server.url}/openapi.json").json()
    assert "securitySchemes" not in schema.get("components", {})


BAD_BODIES: list[tuple[str, Any, int, str, str]] = [
    ("short row", {"observations": [[0.1, 0.2, 0.3, 0.4], [0.1, 0.2]]}, 422, "observations[1]", "expects 4"),
    ("long row", {"observations": [[0.1] * 5]}, 422, "observations[0]", "has 5 values"),
    ("flat list", {"observations": [0.1, 0.2, 0.3, 0.4]}, 422, "observations[0]", "valid array"),
    ("3-d", {"observations": [[[0.1] * 4]]}, 422, "observations[0][0]", "valid number"),
    ("string", {"observations": [[0.1, "0.2", 0.3, 0.4]]}, 422, "observations[0][1]", "valid number"),
    ("boolean", {"observations": [[0.1, True, 0.3, 0.4]]}, 422, "observations[0][1]", "valid number"),
    ("null", {"observations": [[0.1, None, 0.3, 0.4]]}, 422, "observations[0][1]", "valid number"),
    ("empty batch", {"observations": []}, 422, "observations", "at least 1"),
    ("missing field", {"obs": [[0.1] * 4]}, 422, "observations", "required"),
    ("not an object", [[0.1] * 4], 422, "body", "JSON object"),
    ("float32 overflow", {"observations": [[0.1, 1e39, 0.3, 0.4]]}, 422, "observations[0][1]", "float32 range"),
]


@pytest.mark.parametrize(
    ("body", "status", "field", "phrase"), [case[1:] for case in BAD_BODIES], ids=[case[0] for case in BAD_BODIES]
)
def test_bad_input_gets_a_json_4xx_naming_the_field_and_the_server_keeps_serving(
    discrete_server: RunningServer, body: Any, status: int, field: str, phrase: str
) -> None:
    with discrete_server.client() as client:
        response = client.post("/v1/act", json=body)
        assert response.status_code == status, response.text
        error = response.json()
        assert error["status"] == status
        assert any(item["field"] == field for item in error["fields"]), error
        assert phrase in error["message"]
        assert act(client, [[0.0] * 4]).status_code == 200


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(discrete_server: RunningServer, token: str) -> None:
    # json.dumps never writes these, so send the raw text that Python's and JS's encoders can produce.
    raw = f'{{"observations": [[0.1, 0.2, {token}, 0.4]]}}'
    with discrete_server.client() as client:
        response = client.post("/v1/act", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert response.json()["fields"][0] == {
            "field": "observations[0][2]",
            "message": f"Input should be a finite number (got {float(token)!r})",
        }
        assert act(client, [[0.0] * 4]).status_code == 200


@pytest.mark.parametrize("raw", [b'{"observations": [[0.1, 0.2', b"observations=1", b"{'observations': []}"])
def test_malformed_json_gets_400(discrete_server: RunningServer, raw: bytes) -> None:
    with discrete_server.client() as client:
        response = client.post("/v1/act", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "malformed_json"
        assert body["message"].startswith("request body is not valid JSON")
        assert act(client, [[0.0] * 4]).status_code == 200


def test_a_body_that_is_not_declared_json_gets_415(discrete_server: RunningServer) -> None:
    with discrete_server.client() as client:
        raw = json.dumps({"observations": [[0.0] * 4]})
        response = client.post("/v1/act", content=raw, headers={"content-type": "text/plain"})
        assert response.status_code == 415
        assert response.json()["fields"][0]["field"] == "Content-Type"
        typed = client.post("/v1/act", content=raw, headers={"content-type": "application/json; charset=utf-8"})
        assert typed.status_code == 200


def test_too_many_observations_in_one_request(checkpoints: Checkpoints) -> None:
    with serving(checkpoints.discrete, max_request_observations=8) as server, server.client() as client:
        response = act(client, [[0.0] * 4] * 9)
        assert response.status_code == 422
        assert "9 rows exceed the limit of 8" in response.json()["message"]
        assert act(client, [[0.0] * 4] * 8).status_code == 200


def test_oversized_body_gets_413_declared_or_chunked(checkpoints: Checkpoints) -> None:
    with serving(checkpoints.discrete, max_body_bytes=4096) as server, server.client() as client:
        big = json.dumps({"observations": [[0.123456] * 4] * 400}).encode()
        assert len(big) > 4096
        response = client.post("/v1/act", content=big, headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        assert "4096-byte limit" in response.json()["message"]

        def chunks(data: bytes) -> Iterator[bytes]:
            for start in range(0, len(data), 1000):
                yield data[start : start + 1000]

        # A generator body is sent with Transfer-Encoding: chunked, without Content-Length.
        chunked = client.post("/v1/act", content=chunks(big), headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        small = json.dumps({"observations": [[0.1] * 4] * 10}).encode()
        accepted = client.post("/v1/act", content=chunks(small), headers={"content-type": "application/json"})
        assert accepted.status_code == 200
        assert len(accepted.json()["actions"]) == 10
        assert metric(server, "rlops_serve_requests_total", route="/v1/act", status="413") == 2
        assert act(client, [[0.0] * 4]).status_code == 200


def test_unknown_route_and_wrong_method_are_json(discrete_server: RunningServer) -> None:
    with discrete_server.client() as client:
        missing = client.get("/v2/act")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        wrong = client.get("/v1/act")
        assert wrong.status_code == 405 and "GET is not allowed on /v1/act" in wrong.json()["message"]
    assert metric(discrete_server, "rlops_serve_requests_total", route="unmatched", status="404") >= 1


def test_multi_discrete_policies_answer_one_choice_and_distribution_per_sub_action(tmp_path: Path) -> None:
    spec = SpaceSpec(name="two-assets", obs_dim=5, action_kind="multi_discrete", action_dim=2, action_nvec=(3, 2))
    torch.manual_seed(0)
    model = ActorCritic(spec, hidden_sizes=(16,))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()  # a decisive policy: no near-ties between actions
    config = {"hidden_sizes": [16], "activation": "tanh", "log_std_init": 0.0}
    path = save_checkpoint(
        Checkpoint(algo="a3c", config=config, env_spec=spec, model_state=model.state_dict()), tmp_path / "multi.pt"
    )
    obs = np.random.default_rng(4).normal(size=(6, 5)).astype(np.float32)
    expected = load_policy(path).act(obs)
    with serving(path) as server, server.client() as client:
        body = act(client, obs.tolist()).json()
        space = client.get("/v1/model").json()["action_space"]
    assert body["actions"] == expected.tolist()
    assert [len(row) for row in body["actions"]] == [2] * 6
    for row, actions in zip(body["probabilities"], body["actions"], strict=True):
        assert [len(part) for part in row] == [3, 2]
        assert [int(np.argmax(part)) for part in row] == actions
        np.testing.assert_allclose([sum(part) for part in row], 1.0, rtol=1e-5)
    assert space == {"kind": "multi_discrete", "n": None, "nvec": [3, 2], "shape": [2], "low": None, "high": None}
