"""A model whose forward pass yields NaN answers 500 `non_finite_output`, counted, never a NaN in JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.agents.checkpoint import load_checkpoint

from .conftest import Checkpoints
from .serve_helpers import RunningServer, metric, nan_checkpoint, serving


def test_the_counter_exists_at_zero_from_start_up(discrete_server: RunningServer) -> None:
    with discrete_server.client() as client:
        text = client.get("/metrics").text
    assert "rlops_serve_nonfinite_outputs_total 0.0" in text.splitlines()


def test_nan_checkpoint_keeps_the_format_and_poisons_every_float_weight(
    checkpoints: Checkpoints, tmp_path: Path
) -> None:
    path = nan_checkpoint(checkpoints.discrete, tmp_path / "nan.pt")
    original, poisoned = load_checkpoint(checkpoints.discrete), load_checkpoint(path)
    assert poisoned.env_spec == original.env_spec and poisoned.config == original.config
    assert all(tensor.isnan().all() for tensor in poisoned.model_state.values() if tensor.is_floating_point())


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_non_finite_outputs_answer_500_and_count(kind: str, checkpoints: Checkpoints, tmp_path: Path) -> None:
    source = getattr(checkpoints, kind)
    width = 4 if kind == "discrete" else 3
    with serving(nan_checkpoint(source, tmp_path / f"{kind}.pt")) as server, server.client() as client:
        labels = {"route": "/v1/act", "method": "POST", "status": "500"}
        for expected in (1, 2):
            response = client.post("/v1/act", json={"observations": [[0.1] * width, [0.2] * width]})
            assert response.status_code == 500
            assert "NaN" not in response.text and "nan" not in response.text.replace("non_finite", "")
            body = response.json()
            assert body["status"] == 500 and body["error"] == "non_finite_output"
            assert "non-finite" in body["message"] and body["fields"] == []
            assert metric(server, "rlops_serve_nonfinite_outputs_total") == expected
            assert metric(server, "rlops_serve_requests_total", **labels) == expected
        assert metric(server, "rlops_serve_request_duration_seconds_count", **labels) == 2
        # Readiness stays up (the process is healthy; the canary analysis, not the kubelet, judges the model).
        assert client.get("/readyz").status_code == 200
