"""The routes: actions for observations or raw bars, the model's description, and the probes.

Routes are flat (no included router) so that the metrics middleware can name every route by its template.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from numpy.typing import NDArray
from pydantic import BaseModel
from pydantic_core import to_json

from ml.envs.observation import observe_bars
from ml.serve.auth import BearerToken
from ml.serve.bars import decision_input
from ml.serve.batching import MicroBatcher
from ml.serve.errors import ServiceError
from ml.serve.model import Inference, ServedModel
from ml.serve.payloads import act_payload, bars_payload, contract_response, non_finite_outputs
from ml.serve.responses import BARS_EXAMPLE, parse_body
from ml.serve.schemas import (
    ActionSpace,
    ActRequest,
    ActResponse,
    BarsActRequest,
    BarsActResponse,
    ErrorResponse,
    ModelResponse,
    ObservationSpace,
    StatusResponse,
)
from ml.serve.state import ServiceState
from rlops_core.errors import RlopsError

logger = logging.getLogger("rlops.serve")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "malformed JSON",
        401: "missing or wrong bearer token (when authentication is on)",
        413: "body over the size limit",
        422: "invalid observations; `fields` names each one at fault",
        500: "the model produced a NaN or an infinity (`non_finite_output`), or an internal error",
        503: "model not loaded (yet)",
    }.items()
}
ACT_RESPONSES = {**ERROR_RESPONSES, 415: {"model": ErrorResponse, "description": "body not sent as JSON"}}
BARS_RESPONSES = {
    **ACT_RESPONSES,
    409: {"model": ErrorResponse, "description": "the checkpoint carries no observation contract"},
}


class RequestBodies:
    """Request bodies declared by hand in OpenAPI. Bodies are parsed by pydantic's own JSON parser rather than
    FastAPI's json.loads + validation (about 4x faster for a batch of 64 observations, most of a request's
    cost), so FastAPI cannot see them; declared here, OpenAPI (and the fuzzer) still do."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def declare(self, schema: type[BaseModel]) -> dict[str, Any]:
        """The OpenAPI request body of ``schema``; its nested models go to the document's components, where
        the references point (a ``$defs`` inside the body would leave them dangling)."""
        body = schema.model_json_schema(ref_template="#/components/schemas/{model}")
        self.components.update(body.pop("$defs", {}))
        return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}

    def install(self, app: FastAPI) -> None:
        generate_openapi = app.openapi

        def openapi() -> dict[str, Any]:
            document = generate_openapi()
            document.setdefault("components", {}).setdefault("schemas", {}).update(self.components)
            return document

        app.openapi = openapi  # type: ignore[method-assign]


def check_observations(observations: list[list[float]], obs_dim: int, limit: int) -> NDArray[np.float32]:
    if len(observations) > limit:
        raise ServiceError(
            422,
            "invalid_request",
            f"observations: {len(observations)} rows exceed the limit of {limit} per request; split the batch",
            "observations",
        )
    try:
        # Numbers beyond float32's range become inf here and are reported below, not warned about.
        with np.errstate(over="ignore"):
            obs = np.asarray(observations, dtype=np.float32)
    except ValueError:  # ragged rows
        obs = np.empty((0, 0), dtype=np.float32)
    if obs.ndim != 2 or obs.shape[1] != obs_dim:
        index, row = next((i, row) for i, row in enumerate(observations) if len(row) != obs_dim)
        raise ServiceError(
            422,
            "invalid_request",
            f"observations[{index}]: has {len(row)} values, the model expects {obs_dim} (see GET /v1/model)",
            f"observations[{index}]",
        )
    finite = np.isfinite(obs)
    if not finite.all():
        # The JSON value was finite (pydantic checked) but beyond what the float32 network takes, e.g. 1e39.
        i, j = (int(k) for k in np.argwhere(~finite)[0])
        raise ServiceError(
            422,
            "invalid_request",
            f"observations[{i}][{j}]: {observations[i][j]} is outside the float32 range the model uses",
            f"observations[{i}][{j}]",
        )
    return obs


async def infer(state: ServiceState, model: ServedModel, batcher: MicroBatcher, obs: NDArray[np.float32]) -> Inference:
    """The batch's outputs, or a 500 when any is NaN or infinite (counted for the canary analysis)."""
    try:
        result = await batcher.submit(obs)
    except RlopsError as exc:
        raise ServiceError(503, "not_ready", str(exc), headers={"Retry-After": "1"}) from exc
    broken = non_finite_outputs(result)
    if broken:
        state.metrics.nonfinite_outputs.inc()
        message = (
            f"model {model.info.version} produced non-finite {', '.join(broken)}; its weights are unusable "
            "and no action is returned"
        )
        logger.error("%s", message)
        raise ServiceError(500, "non_finite_output", message)
    return result


def add_model_routes(app: FastAPI, state: ServiceState, bodies: RequestBodies) -> None:
    """/v1/act, /v1/act/bars and /v1/model, behind the bearer token when one is set."""
    settings = state.settings
    v1: dict[str, Any] = {"tags": ["model"], "responses": ERROR_RESPONSES, "dependencies": []}
    if settings.auth_token is not None:
        v1["dependencies"].append(Depends(BearerToken(settings.auth_token.get_secret_value())))

    @app.post(
        "/v1/act",
        response_model=ActResponse,
        summary="Actions for a batch of observations",
        openapi_extra=bodies.declare(ActRequest),
        **{**v1, "responses": ACT_RESPONSES},
    )
    async def act(request: Request) -> Response:
        model, batcher = state.require_ready()
        body = await parse_body(request, ActRequest)
        if isinstance(body, Response):
            return body
        obs = check_observations(body.observations, model.info.obs_dim, settings.max_request_observations)
        result = await infer(state, model, batcher, obs)
        return Response(act_payload(result, model.info.version), media_type="application/json")

    @app.post(
        "/v1/act/bars",
        response_model=BarsActResponse,
        summary="The action for the last of each asset's recent raw OHLCV bars, given the account",
        openapi_extra=bodies.declare(BarsActRequest),
        **{**v1, "responses": BARS_RESPONSES},
    )
    async def act_on_bars(request: Request) -> Response:
        model, batcher = state.require_ready()
        contract = model.info.contract
        if contract is None:
            message = f"model {model.info.version} lacks an " + "; ".join(model.info.lacks)
            raise ServiceError(409, "no_observation_contract", message)
        body = await parse_body(request, BarsActRequest, BARS_EXAMPLE)
        if isinstance(body, Response):
            return body
        decision = decision_input(body, contract)
        try:
            # Features, normaliser and kernel: CPU work kept off the event loop.
            obs = await asyncio.to_thread(observe_bars, decision.panel, contract, decision.account)
        except RlopsError as exc:  # e.g. prices so extreme that a feature overflows
            raise ServiceError(422, "invalid_request", f"bars: {exc}", "bars") from exc
        result = await infer(state, model, batcher, obs[None, :])
        payload = bars_payload(result, decision, contract, model.info.version, body.return_observation, obs)
        return Response(to_json(payload), media_type="application/json")

    @app.get("/v1/model", response_model=ModelResponse, summary="The served model and its spaces", **v1)
    async def model_info() -> ModelResponse:
        model, _ = state.require_ready()
        return describe_model(model)


def describe_model(model: ServedModel) -> ModelResponse:
    info = model.info
    kind = info.action_kind
    return ModelResponse(
        name=info.name,
        version=info.version,
        algo=info.algo,
        checkpoint=info.checkpoint,
        checkpoint_sha256=info.checkpoint_sha256,
        dataset_fingerprint=info.dataset_fingerprint,
        created_at=info.created_at,
        global_step=info.global_step,
        environment=info.environment,
        observation_space=ObservationSpace(shape=[info.obs_dim]),
        action_space=ActionSpace(
            kind=kind,
            n=info.num_actions if kind == "discrete" else None,
            nvec=list(info.action_nvec) if kind == "multi_discrete" else None,
            shape=None if kind == "discrete" else [info.action_dim],
            low=list(info.action_low) if kind == "continuous" else None,
            high=list(info.action_high) if kind == "continuous" else None,
        ),
        contract=None if info.contract is None else contract_response(info.contract),
        lacks=list(info.lacks),
    )


def add_probe_routes(app: FastAPI, state: ServiceState) -> None:
    """Liveness, readiness, and /metrics unless the metrics have a port of their own."""

    @app.get("/healthz", response_model=StatusResponse, tags=["probes"], summary="Liveness")
    async def healthz() -> StatusResponse:
        return StatusResponse(status="ok")

    @app.get(
        "/readyz",
        response_model=StatusResponse,
        tags=["probes"],
        summary="Readiness: 200 once the model is loaded",
        responses={503: {"model": ErrorResponse, "description": "loading, failed or shutting down"}},
    )
    async def readyz() -> StatusResponse:
        model, _ = state.require_ready()
        return StatusResponse(status="ready", model_version=model.info.version)

    if state.settings.metrics_port is None:  # otherwise /metrics lives on its own port (ml.serve.metrics_app)

        @app.get(
            "/metrics",
            tags=["probes"],
            summary="Prometheus metrics",
            response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
        )
        async def prometheus() -> Response:
            body, content_type = state.metrics.render()
            return Response(body, media_type=content_type)
