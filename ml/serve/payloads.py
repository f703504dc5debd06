"""Response bodies built from a forward pass's outputs (serialized by pydantic-core, no model round trip)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic_core import to_json

from ml.envs.contract import ObservationContract
from ml.serve.bars import DecisionInput
from ml.serve.model import Inference
from ml.serve.schemas import ObservationContractResponse


def non_finite_outputs(result: Inference) -> list[str]:
    """Names of the outputs holding a NaN or an infinity (JSON cannot carry them, and a client must never act
    on them)."""
    outputs: dict[str, NDArray[Any] | None] = {
        "actions": result.actions,
        "values": result.values,
        "probabilities": result.probabilities,
        "mean": result.mean,
        "std": result.std,
    }
    for index, part in enumerate(result.sub_probabilities or ()):
        outputs[f"probabilities[{index}]"] = part
    return [
        name
        for name, array in outputs.items()
        if array is not None and array.dtype.kind == "f" and not np.isfinite(array).all()
    ]


def _distribution(result: Inference) -> dict[str, Any]:
    """Per observation: every action's probability (discrete), one list per sub-action (multi-discrete), or the
    Gaussian's mean and std (continuous)."""
    out: dict[str, Any] = {}
    if result.probabilities is not None:
        out["probabilities"] = result.probabilities.tolist()
    if result.sub_probabilities is not None:
        parts = [part.tolist() for part in result.sub_probabilities]
        out["probabilities"] = [[part[i] for part in parts] for i in range(len(result.values))]
    if result.mean is not None and result.std is not None:
        out["mean"] = result.mean.tolist()
        out["std"] = result.std.tolist()
    return out


def act_payload(result: Inference, version: str) -> bytes:
    payload: dict[str, Any] = {"actions": result.actions.tolist(), "values": result.values.tolist()}
    payload.update(_distribution(result))
    payload["model_version"] = version
    return to_json(payload)


def bars_payload(
    result: Inference,
    decision: DecisionInput,
    contract: ObservationContract,
    version: str,
    with_observation: bool,
    obs: NDArray[np.float32],
) -> dict[str, Any]:
    """The one decision of a /v1/act/bars request, with the bar it is for and when it fills."""
    bar = decision.panel.timestamps[-1].isoformat()
    payload: dict[str, Any] = {"action": result.actions[0].tolist(), "value": float(result.values[0])}
    payload.update({name: rows[0] for name, rows in _distribution(result).items()})
    payload["symbols"] = list(contract.symbols)
    payload["decision_bar"] = bar
    payload["fills_at"] = f"the open of the next bar after {bar} (the account is marked at that bar's close)"
    if with_observation:
        payload["observation"] = obs.tolist()
    payload["model_version"] = version
    return payload


def contract_response(contract: ObservationContract) -> ObservationContractResponse:
    return ObservationContractResponse(**contract.to_dict(), bars_needed=contract.bars_needed)
