"""Runs from the rendered templates through the Argo server: submit one, read a run's steps back.

Every failure to talk to the server (refused token, missing permission or template, name clash, nothing
listening, a TLS mismatch, no answer) becomes one RlopsError line that says what to check.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from hera.exceptions import HeraException
from hera.workflows import WorkflowsService
from hera.workflows import models as m
from pydantic import ValidationError

from rlops_core.errors import RlopsError
from workflows import common

T = TypeVar("T")
TIMEOUT_S = 30.0
ENV_SERVER, ENV_TOKEN, ENV_NAMESPACE = "ARGO_SERVER", "ARGO_TOKEN", "ARGO_NAMESPACE"


@dataclass(frozen=True)
class Server:
    """Where the Argo server is and how to talk to it; flags win over the Argo CLI's environment variables."""

    url: str
    token: str | None
    namespace: str
    verify_tls: bool = True

    @classmethod
    def resolve(
        cls,
        url: str | None,
        token: str | None,
        namespace: str | None,
        verify_tls: bool = True,
        environ: Mapping[str, str] = os.environ,
    ) -> Server:
        address = url or environ.get(ENV_SERVER)
        if not address:
            raise RlopsError(f"no Argo server: pass --server https://HOST[:PORT] or set {ENV_SERVER}")
        if "://" not in address:  # the Argo CLI's ARGO_SERVER is host:port, served over TLS
            address = f"https://{address}"
        if not address.startswith(("http://", "https://")):
            raise RlopsError(f"--server {address}: use an http:// or https:// URL")
        return cls(
            url=address.rstrip("/"),
            token=token or environ.get(ENV_TOKEN) or None,
            namespace=resolve_namespace(namespace, environ),
            verify_tls=verify_tls,
        )

    def ui_url(self, run: str) -> str:
        return f"{self.url}/workflows/{self.namespace}/{run}"


def resolve_namespace(namespace: str | None, environ: Mapping[str, str] = os.environ) -> str:
    return namespace or environ.get(ENV_NAMESPACE) or common.NAMESPACE


class _TimeoutSession(requests.Session):
    """Hera sends requests without a timeout; a server that never answers must not hang the command."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", TIMEOUT_S)
        return super().request(*args, **kwargs)


def _service(server: Server) -> WorkflowsService:
    return WorkflowsService(
        host=server.url + "/",
        token=server.token,
        namespace=server.namespace,
        verify_ssl=server.verify_tls,
        session=_TimeoutSession(),
    )


def _server_message(exc: HeraException) -> str:
    match = re.search(r"message: `(.*)`", str(exc), flags=re.DOTALL)
    return " ".join((match.group(1) if match else str(exc)).split())


def call(server: Server, what: str, action: Callable[[WorkflowsService], T]) -> T:
    """Run one request; every way it can fail is one line naming the server, the namespace and what to check."""
    where = f"Argo server {server.url}"
    try:
        with _service(server) as service:
            return action(service)
    except requests.exceptions.SSLError as exc:
        raise RlopsError(
            f"{what}: TLS with {where} failed ({_reason(exc)}); check the URL's scheme (http:// or https://) "
            "and the server's certificate"
        ) from exc
    except requests.exceptions.Timeout as exc:
        raise RlopsError(f"{what}: {where} did not answer within {TIMEOUT_S:.0f} s") from exc
    except requests.exceptions.ConnectionError as exc:
        raise RlopsError(f"{what}: cannot reach {where} ({_reason(exc)}); check --server or {ENV_SERVER}") from exc
    except ValidationError as exc:
        raise RlopsError(f"{what}: {where} answered with something that is not a Workflow ({exc.error_count()} "
                         f"problem(s), first: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']})") from exc  # fmt: skip
    except HeraException as exc:
        detail = _server_message(exc)
        hints = {
            401: f"the server refused the token (401 Unauthorized); set --token or {ENV_TOKEN}",
            403: f"the token may not do this in namespace {server.namespace} (403 Forbidden)",
            404: f"not found in namespace {server.namespace} (404)",
            409: f"already exists in namespace {server.namespace} (409 Conflict)",
        }
        code = getattr(exc, "status_code", None)
        hint = hints.get(code, f"{where} answered {code}") if isinstance(code, int) else f"{where} failed"
        raise RlopsError(f"{what}: {hint}: {detail}") from exc


def _reason(exc: Exception) -> str:
    """The innermost cause of a connection failure, without the URL and object reprs requests adds."""
    text = str(exc.args[0]) if exc.args else str(exc)
    found = re.findall(r"\[[A-Z_]+: [A-Z_]+\][^()'\"]*|\[Errno -?\d+\][^()'\"]*|Connection refused", text)
    return " ".join((found[-1] if found else text).split())


# --------------------------------------------------------------------------------------------------------------
# submitting a run


def workflow_from_template(
    template: str,
    declared: Sequence[m.Parameter],
    values: Sequence[str],
    namespace: str,
) -> dict[str, Any]:
    """The Workflow that runs `template` with `values` (each NAME=VALUE), checked against what it declares."""
    known = {p.name: p for p in declared}
    given: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise RlopsError(f"--param {item!r}: expected NAME=VALUE")
        if name not in known:
            raise RlopsError(f"--param {name}: {template} takes {', '.join(sorted(known))}")
        given[name] = value
    missing = [p.name for p in declared if p.name not in given and p.value is None and p.value_from is None]
    if missing:
        raise RlopsError(f"{template} needs --param for {', '.join(missing)}")
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "generateName": f"{template}-",
            "namespace": namespace,
            "labels": {**common.LABELS, "workflows.argoproj.io/workflow-template": template},
        },
        "spec": {
            "workflowTemplateRef": {"name": template},
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in given.items()]},
        },
    }


def submit(server: Server, workflow: dict[str, Any]) -> str:
    """Create the run; returns the name the server gave it."""
    request = m.WorkflowCreateRequest(namespace=server.namespace, workflow=m.Workflow.model_validate(workflow))
    template = workflow["spec"]["workflowTemplateRef"]["name"]
    created = call(server, f"submit {template}", lambda s: s.create_workflow(request, namespace=server.namespace))
    name = created.metadata.name
    if not name:
        raise RlopsError(f"submit {template}: the Argo server answered without a run name")
    return str(name)


# --------------------------------------------------------------------------------------------------------------
# a run's steps


@dataclass(frozen=True)
class StepStatus:
    name: str
    kind: str
    phase: str
    started: str
    finished: str
    message: str


def run_status(server: Server, run: str) -> tuple[str, list[StepStatus]]:
    """The run's phase and each of its steps (pods and resources), in the order they started."""
    found = call(server, f"status {run}", lambda s: s.get_workflow(run, namespace=server.namespace))
    status = found.status
    if status is None:
        return "Pending", []
    steps = [
        StepStatus(
            name=node.display_name or node.name or node_id,
            kind=str(node.type),
            phase=str(node.phase or "Pending"),
            started=_time(node.started_at),
            finished=_time(node.finished_at),
            message=node.message or "",
        )
        for node_id, node in (status.nodes or {}).items()
        if node.type in ("Pod", "Skipped", "Suspend")
    ]
    steps.sort(key=lambda step: (step.started == "", step.started, step.name))
    return str(status.phase or "Pending"), steps


def _time(value: object) -> str:
    stamp = getattr(value, "root", value)
    return stamp.strftime("%Y-%m-%d %H:%M:%S") if hasattr(stamp, "strftime") else ""
