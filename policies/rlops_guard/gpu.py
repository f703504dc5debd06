"""GPU node groups (a cost guard): tainted so only GPU pods land there, and capped in size."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.rlops_guard.props import as_int, as_list, dig, known

NODE_GROUP_TYPES = ("eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup")
GPU_TAINT_KEY = "nvidia.com/gpu"
DEFAULT_MAX_NODES = 8
_GPU_AMI = re.compile(r"GPU|NVIDIA")
_GPU_INSTANCE = re.compile(r"^(g\d+[a-z]*|p\d+[a-z]*)\.")


def is_gpu_group(props: Any) -> bool:
    ami = known(props, "amiType")
    instance_types = as_list(known(props, "instanceTypes"))
    return (
        known(props, "gpu") is True
        or (isinstance(ami, str) and bool(_GPU_AMI.search(ami)))
        or any(isinstance(t, str) and _GPU_INSTANCE.match(t) for t in instance_types)
    )


def _tainted_and_capped(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in NODE_GROUP_TYPES or not is_gpu_group(args.props):
        return
    taints = [t for t in as_list(known(args.props, "taints")) if isinstance(t, dict)]
    if not any(t.get("key") == GPU_TAINT_KEY and t.get("effect") == "NO_SCHEDULE" for t in taints):
        report(f"GPU node group '{args.name}': needs a {GPU_TAINT_KEY} NO_SCHEDULE taint", None)
    cap = int(args.get_config().get("maxNodesPerGroup", DEFAULT_MAX_NODES))
    max_size = as_int(dig(args.props, "scalingConfig", "maxSize"))
    if max_size is None:
        report(f"GPU node group '{args.name}': scalingConfig.maxSize must be set (cap {cap})", None)
    elif max_size > cap:
        report(f"GPU node group '{args.name}': maxSize {max_size} exceeds the cap of {cap}", None)


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="gpu-node-group-guard",
            description="GPU node groups carry the nvidia.com/gpu NO_SCHEDULE taint and a capped maxSize.",
            validate=_tainted_and_capped,
            config_schema=PolicyConfigSchema(
                properties={"maxNodesPerGroup": {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_NODES}}
            ),
        )
    ]
