"""Request and response bodies of the HTTP API (they are also what the OpenAPI schema publishes)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Strict: "1.5" or true is a client bug, not a number; JSON's NaN/Infinity extensions are rejected too.
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class ActRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    observations: Annotated[
        list[list[FiniteFloat]],
        Field(
            min_length=1,
            description="a batch of raw observations, each a list of obs_dim finite numbers (see GET /v1/model)",
            examples=[[[0.01, -0.2, 0.03, 0.4]]],
        ),
    ]


class ActResponse(BaseModel):
    actions: list[int] | list[list[int]] | list[list[float]] = Field(
        description="one action per observation: an index (discrete), one index per sub-action (multi-discrete) "
        "or a vector clipped to the bounds (continuous)"
    )
    values: list[float] = Field(description="the critic's value estimate of each observation")
    probabilities: list[list[float]] | list[list[list[float]]] | None = Field(
        default=None,
        description="discrete policies: the probability of every action; multi-discrete: one such list per sub-action",
    )
    mean: list[list[float]] | None = Field(default=None, description="continuous policies: the Gaussian's mean")
    std: list[list[float]] | None = Field(default=None, description="continuous policies: the Gaussian's std")
    model_version: str


class ObservationSpace(BaseModel):
    shape: list[int]
    dtype: Literal["float32"] = "float32"


class ActionSpace(BaseModel):
    kind: str = Field(description="discrete, multi_discrete or continuous")
    n: int | None = Field(default=None, description="discrete: number of actions")
    nvec: list[int] | None = Field(default=None, description="multi-discrete: number of choices per sub-action")
    shape: list[int] | None = Field(default=None, description="continuous and multi-discrete: action shape")
    low: list[float] | None = None
    high: list[float] | None = None


class ModelResponse(BaseModel):
    name: str
    version: str
    algo: str
    checkpoint: str
    checkpoint_sha256: str
    dataset_fingerprint: str | None
    created_at: str
    global_step: int
    environment: str
    observation_space: ObservationSpace
    action_space: ActionSpace


class StatusResponse(BaseModel):
    status: Literal["ok", "ready"]
    model_version: str | None = None


class FieldError(BaseModel):
    field: str = Field(description="where in the request: 'observations[2][0]', 'body', 'Authorization' ...")
    message: str


class ErrorResponse(BaseModel):
    """Every error the service returns, whatever its status."""

    status: int
    error: str = Field(description="a stable code: invalid_request, malformed_json, unauthorized, ...")
    message: str = Field(description="what is wrong and how to fix it")
    fields: list[FieldError] = Field(default_factory=list)
