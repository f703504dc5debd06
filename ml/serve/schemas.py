"""Request and response bodies of the HTTP API (they are also what the OpenAPI schema publishes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

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


class ObservationContractResponse(BaseModel):
    symbols: list[str]
    feature_names: list[str]
    features: dict[str, Any]
    window: int
    warmup: int
    bars_needed: int
    normalizer_mean: list[float]
    normalizer_std: list[float]
    normalizer_fitted_on: list[str]
    account_features: list[str]
    obs_dim: int
    layout: str
    env: dict[str, Any]
    action_meaning: str
    bar_frequency: str
    periods_per_year: float
    dataset: str
    dataset_fingerprint: str
    training_period: list[str]
    execution: str
    version: int


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
    contract: ObservationContractResponse | None = Field(
        default=None, description="how to build observations from raw bars (POST /v1/act/bars); null when absent"
    )
    lacks: list[str] = Field(default_factory=list, description="what this checkpoint does not carry, and why")


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


class Bar(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: str = Field(description="ISO 8601 time of the bar; without a zone it is read as UTC")
    open: FiniteFloat
    high: FiniteFloat
    low: FiniteFloat
    close: FiniteFloat
    volume: FiniteFloat


class Position(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shares: FiniteFloat = Field(description="shares held (negative: short)")
    entry_price: FiniteFloat = Field(
        default=0.0, description="average entry price of the open position (needed when shares is not 0)"
    )


class AccountState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cash: FiniteFloat = Field(description="cash at the close of the last bar (negative when borrowing)")
    positions: dict[str, Position] = Field(default_factory=dict, description="per symbol; a symbol left out is flat")


class BarsActRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bars: dict[str, list[Bar]] = Field(
        min_length=1,
        description="per symbol of the model (GET /v1/model: contract.symbols), its recent raw OHLCV bars sorted "
        "by time, at least contract.bars_needed of them; every symbol's bars share timestamps",
    )
    account: AccountState
    return_observation: bool = Field(default=False, description="also return the observation the action came from")


class BarsActResponse(BaseModel):
    action: int | list[int] | list[float] = Field(
        description="an index (one asset, discrete), one index per asset (several assets, discrete) or target "
        "weights (continuous); see contract.action_meaning"
    )
    value: float = Field(description="the critic's value estimate")
    probabilities: list[float] | list[list[float]] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    symbols: list[str] = Field(description="the order of per-asset entries")
    decision_bar: str = Field(description="timestamp of the bar the decision is for (the last bar sent), UTC")
    fills_at: str = Field(description="when the order fills under the environment's convention")
    observation: list[float] | None = Field(default=None, description="when return_observation was true")
    model_version: str
