"""The FastAPI app: routes, JSON errors, readiness, authentication and the model's life cycle.

The model loads in the background after the server starts listening, so a liveness probe answers at once
while ``/readyz`` says 503 until the policy is in memory (an S3 download can take a while). A load failure
is reported through ``on_load_failure`` (the command line stops the server with the message).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

import rlops_core
from ml.envs.observation import observe_bars
from ml.serve.bars import decision_input
from ml.serve.batching import MicroBatcher
from ml.serve.errors import ServiceError, invalid
from ml.serve.metrics import ServeMetrics
from ml.serve.middleware import BodyLimitMiddleware, MetricsMiddleware
from ml.serve.model import Inference, ModelInfo, ServedModel, load_model
from ml.serve.payloads import act_payload, bars_payload, contract_response, non_finite_outputs
from ml.serve.schemas import (
    ActionSpace,
    ActRequest,
    ActResponse,
    BarsActRequest,
    BarsActResponse,
    ErrorResponse,
    FieldError,
    ModelResponse,
    ObservationSpace,
    StatusResponse,
)
from ml.serve.settings import ServeSettings
from rlops_core.errors import RlopsError

logger = logging.getLogger("rlops.serve")
ACT_EXAMPLE = '{"observations": [[...], ...]}'
BARS_EXAMPLE = '{"bars": {"<symbol>": [{"timestamp": ..., "open": ...}, ...]}, "account": {"cash": ...}}'
Body = TypeVar("Body", bound=BaseModel)

Loader = Callable[[ServeSettings], ServedModel]


@dataclass
class ServiceState:
    settings: ServeSettings
    metrics: ServeMetrics
    status: Literal["loading", "ready", "failed", "stopping"] = "loading"
    model: ServedModel | None = None
    batcher: MicroBatcher | None = None
    load_error: str | None = None
    _load_task: asyncio.Task[None] | None = field(default=None, repr=False)

    def require_ready(self) -> tuple[ServedModel, MicroBatcher]:
        if self.status == "ready" and self.model is not None and self.batcher is not None:
            return self.model, self.batcher
        raise ServiceError(503, "not_ready", self.not_ready_reason(), headers={"Retry-After": "1"})

    def not_ready_reason(self) -> str:
        if self.status == "failed":
            return f"the model failed to load: {self.load_error}"
        if self.status == "stopping":
            return "the server is shutting down; retry on another replica"
        return f"the model is still loading from {self.settings.checkpoint}; retry shortly"


def _json_error(status: int, error: str, message: str, fields: Sequence[FieldError] = (), **kw: Any) -> JSONResponse:
    body = ErrorResponse(status=status, error=error, message=message, fields=list(fields))
    return JSONResponse(body.model_dump(), status_code=status, **kw)


def _field_path(loc: Sequence[int | str]) -> str:
    """('body', 'observations', 0, 2) -> 'observations[0][2]'; a whole-body problem is just 'body'."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    if not parts:
        return "body"
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _describe(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    value = error.get("input")
    if isinstance(value, (str, int, float, bool)) or value is None:
        shown = repr(value)
        message += f" (got {shown if len(shown) <= 40 else shown[:37] + '...'})"
    return message


def _validation_response(errors: Sequence[Any], example: str = ACT_EXAMPLE) -> JSONResponse:
    """422 naming every field at fault, or 400 when the body is not JSON at all."""
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "invalid JSON")
            if error.get("loc") and isinstance(error["loc"][-1], int):  # FastAPI's parser gives a character offset
                reason = f"{reason} at character {error['loc'][-1]}"
            message = f"request body is not valid JSON: {reason}"
            return _json_error(400, "malformed_json", message, [FieldError(field="body", message=message)])
    fields = []
    for error in errors:
        path = _field_path(error.get("loc", ()))
        if path == "body" and error.get("type") in {"model_type", "model_attributes_type", "dict_type", "missing"}:
            text = f"the body must be a JSON object like {example}"
        else:
            text = _describe(error)
        fields.append(FieldError(field=path, message=text))
    exc = invalid(fields)
    return _json_error(422, exc.error, exc.message, exc.fields)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _check_observations(observations: list[list[float]], obs_dim: int, limit: int) -> NDArray[np.float32]:
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


class BearerToken(HTTPBearer):
    """The bearer-token check of /v1/*; as an HTTPBearer it also declares the scheme in the OpenAPI schema."""

    def __init__(self, token: str) -> None:
        super().__init__(auto_error=False, description="the token set in RLOPS_SERVE_AUTH_TOKEN")
        self._expected = token.encode()

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        challenge = {"WWW-Authenticate": "Bearer"}
        credentials = await super().__call__(request)
        if credentials is None:
            message = "missing bearer token: send 'Authorization: Bearer <token>'"
            raise ServiceError(401, "unauthorized", message, "Authorization", challenge)
        # Constant-time comparison: response timing must not reveal how much of a guess was right.
        if not hmac.compare_digest(credentials.credentials.encode(), self._expected):
            raise ServiceError(401, "unauthorized", "invalid bearer token", "Authorization", challenge)
        return credentials


async def _load(
    state: ServiceState,
    loader: Loader,
    on_load_failure: Callable[[str], None] | None,
    on_ready: Callable[[ModelInfo], None] | None,
) -> None:
    settings = state.settings
    try:
        model = await asyncio.to_thread(loader, settings)
    except RlopsError as exc:
        state.load_error = str(exc)
    except Exception as exc:  # anything else is a bug or an environment problem; keep the service answering
        logger.exception("loading %s failed", settings.checkpoint)
        state.load_error = f"{type(exc).__name__}: {exc}"
    else:
        batcher = MicroBatcher(
            model.infer, settings.max_batch, settings.max_wait_ms / 1000, state.metrics.observe_batch
        )
        batcher.start()
        state.model, state.batcher = model, batcher
        state.metrics.model_loaded(model.info)
        state.status = "ready"
        if on_ready is not None:
            on_ready(model.info)
        return
    state.status = "failed"
    logger.error("cannot serve: %s", state.load_error)
    if on_load_failure is not None:
        on_load_failure(state.load_error or "unknown error")


def create_app(
    settings: ServeSettings,
    loader: Loader = load_model,
    on_load_failure: Callable[[str], None] | None = None,
    on_ready: Callable[[ModelInfo], None] | None = None,
) -> FastAPI:
    """An app serving ``settings.checkpoint``; ``loader`` is replaceable so tests can gate or break loading.

    ``on_ready`` runs once the checkpoint is loaded and accepted (the command line prints its banner then).
    """
    metrics = ServeMetrics()
    state = ServiceState(settings=settings, metrics=metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state._load_task = asyncio.create_task(_load(state, loader, on_load_failure, on_ready))
        try:
            yield
        finally:
            if state.status != "failed":
                state.status = "stopping"
            metrics.ready.set(0)
            if not state._load_task.done():
                state._load_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await state._load_task
            if state.batcher is not None:
                await state.batcher.close()

    app = FastAPI(
        title="rlops inference",
        version=rlops_core.__version__,
        description="Actions, action distributions and value estimates of one trained rlops policy.",
        lifespan=lifespan,
    )
    app.state.service = state
    error_responses: dict[int | str, dict[str, Any]] = {
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

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return _json_error(exc.status, exc.error, exc.message, exc.fields, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no route {request.url.path}; see /docs or /openapi.json for the API"
            return _json_error(404, "not_found", message)
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
            return _json_error(405, "method_not_allowed", message, headers=exc.headers)
        return _json_error(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return _json_error(500, "internal_error", f"internal error ({type(exc).__name__}); the server logged it")

    async def infer(model: ServedModel, batcher: MicroBatcher, obs: NDArray[np.float32]) -> Inference:
        """The batch's outputs, or a 500 when any is NaN or infinite (counted for the canary analysis)."""
        try:
            result = await batcher.submit(obs)
        except RlopsError as exc:
            raise ServiceError(503, "not_ready", str(exc), headers={"Retry-After": "1"}) from exc
        broken = non_finite_outputs(result)
        if broken:
            metrics.nonfinite_outputs.inc()
            message = (
                f"model {model.info.version} produced non-finite {', '.join(broken)}; its weights are unusable "
                "and no action is returned"
            )
            logger.error("%s", message)
            raise ServiceError(500, "non_finite_output", message)
        return result

    async def _parse(request: Request, schema: type[Body], example: str = ACT_EXAMPLE) -> Body | Response:
        content_type = request.headers.get("content-type")
        if content_type is not None and not _is_json(content_type):
            message = f"the body must be JSON sent with 'Content-Type: application/json', not {content_type!r}"
            raise ServiceError(415, "unsupported_media_type", message, "Content-Type")
        try:
            return schema.model_validate_json(await request.body())
        except ValidationError as exc:
            return _validation_response(exc.errors(include_url=False), example)

    # Flat routes (no included router) so that the metrics middleware can name every route by its template.
    v1: dict[str, Any] = {"tags": ["model"], "responses": error_responses, "dependencies": []}
    if settings.auth_token is not None:
        v1["dependencies"].append(Depends(BearerToken(settings.auth_token.get_secret_value())))

    # The body is parsed by pydantic's own JSON parser rather than FastAPI's json.loads + validation: about
    # 4x faster for a batch of 64 observations, which is most of a request's cost. The schema is declared
    # by hand so that OpenAPI (and the fuzzer) still see it.
    components: dict[str, Any] = {}

    def json_body(schema: type[BaseModel]) -> dict[str, Any]:
        """The OpenAPI request body of ``schema``; its nested models go to the document's components, where
        the references point (a ``$defs`` inside the body would leave them dangling)."""
        body = schema.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}

    act_body = json_body(ActRequest)
    act_responses = {**error_responses, 415: {"model": ErrorResponse, "description": "body not sent as JSON"}}

    @app.post(
        "/v1/act",
        response_model=ActResponse,
        summary="Actions for a batch of observations",
        openapi_extra=act_body,
        **{**v1, "responses": act_responses},
    )
    async def act(request: Request) -> Response:
        model, batcher = state.require_ready()
        body = await _parse(request, ActRequest)
        if isinstance(body, Response):
            return body
        obs = _check_observations(body.observations, model.info.obs_dim, settings.max_request_observations)
        result = await infer(model, batcher, obs)
        return Response(act_payload(result, model.info.version), media_type="application/json")

    bars_body = json_body(BarsActRequest)
    bars_responses = {
        **act_responses,
        409: {"model": ErrorResponse, "description": "the checkpoint carries no observation contract"},
    }

    @app.post(
        "/v1/act/bars",
        response_model=BarsActResponse,
        summary="The action for the last of each asset's recent raw OHLCV bars, given the account",
        openapi_extra=bars_body,
        **{**v1, "responses": bars_responses},
    )
    async def act_on_bars(request: Request) -> Response:
        model, batcher = state.require_ready()
        contract = model.info.contract
        if contract is None:
            message = f"model {model.info.version} lacks an " + "; ".join(model.info.lacks)
            raise ServiceError(409, "no_observation_contract", message)
        body = await _parse(request, BarsActRequest, BARS_EXAMPLE)
        if isinstance(body, Response):
            return body
        decision = decision_input(body, contract)
        try:
            # Features, normaliser and kernel: CPU work kept off the event loop.
            obs = await asyncio.to_thread(observe_bars, decision.panel, contract, decision.account)
        except RlopsError as exc:  # e.g. prices so extreme that a feature overflows
            raise ServiceError(422, "invalid_request", f"bars: {exc}", "bars") from exc
        result = await infer(model, batcher, obs[None, :])
        payload = bars_payload(result, decision, contract, model.info.version, body.return_observation, obs)
        return Response(to_json(payload), media_type="application/json")

    @app.get("/v1/model", response_model=ModelResponse, summary="The served model and its spaces", **v1)
    async def model_info() -> ModelResponse:
        model, _ = state.require_ready()
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

    if settings.metrics_port is None:  # otherwise /metrics lives on its own port (ml.serve.metrics_app)

        @app.get(
            "/metrics",
            tags=["probes"],
            summary="Prometheus metrics",
            response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
        )
        async def prometheus() -> Response:
            body, content_type = metrics.render()
            return Response(body, media_type=content_type)

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate_openapi()
        document.setdefault("components", {}).setdefault("schemas", {}).update(components)
        return document

    app.openapi = openapi  # type: ignore[method-assign]

    # Added last = outermost: metrics see the 413s the body limit answers.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=lambda: app.routes)
    return app
