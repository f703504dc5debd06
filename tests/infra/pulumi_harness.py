"""Runs Pulumi code under fresh mocks and records every resource it registers (type, name, inputs).

pulumi-eks components live in a provider plugin, so under mocks only `eks:index:Cluster` and
`eks:index:ManagedNodeGroup` themselves arrive here; their outputs are faked below.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import SETTINGS

from policies.rlops_guard.evaluate import InventoryResource

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION_KEY = "aws:region"
OIDC_ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    custom: bool
    provider: str


class RecordingMonitor(MockMonitor):
    """The mock engine, also noting the provider map each registration carried."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:
        # Registrations arrive on several threads, so key by (type, name) rather than by arrival order.
        self.recording.provider_maps[(request.type, request.name)] = dict(request.providers)
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    region: str = "us-east-1"
    resources: list[Registered] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    # What the program returned, resolved: lets a test read Outputs after the run.
    results: list[Any] = field(default_factory=list)
    # Every URN the mock engine handed out; a child's URN carries its parents' types (parent$child).
    urns: list[str] = field(default_factory=list)
    # (type, name) -> package -> provider reference: how components (pulumi-eks) receive their providers.
    provider_maps: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        outputs = {**inputs, **self._fake_outputs(args.typ, args.name, inputs)}
        self.resources.append(Registered(args.typ, args.name, inputs, outputs, bool(args.custom), args.provider or ""))
        resource_id = outputs.get("bucket") if args.typ == "aws:s3/bucket:Bucket" else f"{args.name}-id"
        return str(resource_id), outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append(args.token)
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            # The mock monitor iterates the failures list, so "no failures" must be [] rather than None.
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDA"}, []
        raise AssertionError(f"unexpected invoke {args.token} under mocks")

    def _fake_outputs(self, typ: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        service = typ.split(":")[1].split("/")[0]
        fake: dict[str, Any] = {"arn": f"arn:aws:{service}:{self.region}:{ACCOUNT}:{name}"}
        if typ == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or f"{inputs.get('bucketPrefix', name)}abc123"
            fake = {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        elif typ == "aws:iam/role:Role":
            fake = {"arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "name": name}
        elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(inputs["url"]).removeprefix("https://")
            fake = {"arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"}
        elif typ == "aws:ecr/repository:Repository":
            fake["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com/{inputs.get('name', name)}"
        elif typ == "aws:kms/key:Key":
            fake["keyId"] = f"{name}-key-id"
        elif typ == "eks:index:Cluster":
            kubeconfig = {"apiVersion": "v1", "clusters": [{"name": name}], "kind": "Config"}
            fake = {
                "kubeconfig": kubeconfig,
                "kubeconfigJson": json.dumps(kubeconfig),
                "oidcProviderArn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC_ISSUER.removeprefix('https://')}",
                "oidcProviderUrl": OIDC_ISSUER.removeprefix("https://"),
                "clusterSecurityGroupId": "sg-cluster",
                "nodeSecurityGroupId": "sg-nodes",
            }
        return fake

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def named(self, typ: str, name: str) -> Registered:
        matches = [r for r in self.resources if r.type == typ and r.name == name]
        assert len(matches) == 1, f"expected one {typ} named {name}, got {[r.name for r in self.of_type(typ)]}"
        return matches[0]

    def urn_of(self, resource: Registered) -> str:
        matches = [u for u in self.urns if u.endswith(f"{resource.type}::{resource.name}")]
        assert len(matches) == 1, f"{resource.type} {resource.name}: URNs {matches}"
        return matches[0]

    def inventory(self) -> list[InventoryResource]:
        """What the policy engine would see: type, name, inputs, outputs and the real URN."""
        return [
            InventoryResource(resource_type=r.type, name=r.name, inputs=r.inputs, outputs=r.outputs, urn=self.urn_of(r))
            for r in self.resources
        ]


INFERENCE_TOKEN_KEY = "rlops:inferenceToken"


def stack_config(stack: str) -> dict[str, Any]:
    """The `config:` section of Pulumi.<stack>.yaml as written."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    config = data.get("config", {})
    assert isinstance(config, dict)
    return config


def _engine_form(value: Any) -> str:
    # The engine hands every config value to the program as text; structured values as JSON.
    if isinstance(value, str):
        return value
    return json.dumps(value)


def run_with_mocks(
    program: Callable[[], Any],
    *,
    stack: str = "dev",
    config: Mapping[str, Any] | None = None,
    mocks: RecordingMocks | None = None,
) -> RecordingMocks:
    """Run `program` under a fresh `RecordingMocks` and wait until every registration has finished.

    `program` may return an Output (or any value); its resolved value lands in `mocks.results`.
    """
    values = dict(config if config is not None else stack_config(stack))
    mocks = mocks if mocks is not None else RecordingMocks(region=str(values.get(REGION_KEY, "us-east-1")))
    # The stack files never hold the token: `pulumi config set --secret` keeps it encrypted per stack.
    values.setdefault(INFERENCE_TOKEN_KEY, "test-inference-token")
    pulumi.runtime.set_all_config({k: _engine_form(v) for k, v in values.items()}, [INFERENCE_TOKEN_KEY])
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="rlops", stack=stack, preview=False, monitor=monitor)
    # Component inputs that are resources (the cluster handed to ManagedNodeGroup) would otherwise be
    # serialized as references bound to another event loop.
    SETTINGS.monitor_features.discard(resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES)

    def _run() -> Any:
        return pulumi.Output.from_input(program()).apply(mocks.results.append)

    # pulumi.runtime.test runs the program and then waits for every outstanding registration.
    run: Callable[[], None] = pulumi.runtime.test(_run)  # type: ignore[no-untyped-call]
    run()
    mocks.urns = list(monitor.resources)
    return mocks
