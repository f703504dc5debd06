"""What every rlops workflow shares: where it runs, who it runs as, how its pods are locked down, sized and
retried, and the parameters that name the images and the S3 prefixes.

The cluster-side names here (namespace, service accounts, GPU label and taint, image user) are defined by
`infra/` and `docker/Dockerfile`; tests/workflows checks that the two agree, so a rename there fails here.
"""

from __future__ import annotations

from collections.abc import Sequence

from hera.workflows import Artifact, Container, Env, Parameter, RetryPolicy, RetryStrategy, WorkflowTemplate
from hera.workflows import models as m

NAMESPACE = "argo"  # where the Argo Workflows chart runs workflows (infra/identity.py, workflows role)
SERVICE_ACCOUNT = "argo-workflow"  # mapped by infra to the workflows IRSA role: market data, artifacts, tuning
RAY_NAMESPACE = "ray"
RAY_SERVICE_ACCOUNT = "ray-worker"  # mapped by infra to the ray IRSA role
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}  # infra/cluster.py gpu_labels
GPU_TAINT_KEY = "nvidia.com/gpu"  # infra/cluster.py: GPU nodes are tainted so only GPU pods land there
IMAGE_USER = 10001  # docker/Dockerfile's rlops user
CONFIG_MAP = "rlops-workflows"  # written by infra/addons.py: the registry and bucket prefixes of this cluster
SCRATCH = "/tmp"  # noqa: S108 - the one writable path in a read-only container, an emptyDir of its own
WORK = "/work"  # a second emptyDir for files a step hands to Argo (output parameters and artifacts)

DEFAULT_IMAGE_TAG = "0.1.0"  # pyproject's version: images are tagged by version and by git SHA
LABELS = {"app.kubernetes.io/part-of": "rlops"}


def wf(name: str) -> str:
    """An Argo expression for a workflow parameter."""
    return "{{workflow.parameters." + name + "}}"


def image(target: str) -> str:
    """A docker/Dockerfile target in this cluster's registry, at the tag the run asks for."""
    return f"{wf('registry')}/{target}:{wf('image-tag')}"


def cluster_parameters(*names: str) -> list[Parameter]:
    """Values that differ per cluster come from the ConfigMap infra writes; `--param` overrides them."""
    described = {
        "registry": "ECR registry and repository prefix, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/rlops-prod",
        "output-prefix": "s3:// prefix for run outputs (the artifacts bucket); each run writes under <prefix>/<run>",
        "tuning-prefix": "s3:// prefix for tuning results (the tuning-results bucket)",
    }
    return [
        Parameter(
            name=name,
            description=text,
            value_from=m.ValueFrom(config_map_key_ref=m.ConfigMapKeySelector(name=CONFIG_MAP, key=name)),
        )
        for name, text in described.items()
        if name in names
    ]


def image_tag_parameter() -> Parameter:
    return Parameter(name="image-tag", value=DEFAULT_IMAGE_TAG, description="tag of the rlops images to run")


def run_prefix() -> str:
    return f"{wf('output-prefix')}/{{{{workflow.name}}}}"


POD_SECURITY = m.PodSecurityContext(
    run_as_non_root=True,
    run_as_user=IMAGE_USER,
    run_as_group=IMAGE_USER,
    fs_group=IMAGE_USER,
    seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
)
CONTAINER_SECURITY = m.SecurityContext(
    allow_privilege_escalation=False,
    read_only_root_filesystem=True,
    run_as_non_root=True,
    privileged=False,
    capabilities=m.Capabilities(drop=["ALL"]),
)
# Numba's compile cache, Matplotlib's config and the home directory would otherwise go to the read-only image.
SCRATCH_ENV = {
    "HOME": SCRATCH,
    "NUMBA_CACHE_DIR": f"{SCRATCH}/numba",
    "MPLCONFIGDIR": f"{SCRATCH}/matplotlib",
}
SCRATCH_VOLUME = m.Volume(name="scratch", empty_dir=m.EmptyDirVolumeSource(size_limit=m.Quantity("20Gi")))
WORK_VOLUME = m.Volume(name="work", empty_dir=m.EmptyDirVolumeSource(size_limit=m.Quantity("5Gi")))
SCRATCH_MOUNT = m.VolumeMount(name="scratch", mount_path=SCRATCH)
WORK_MOUNT = m.VolumeMount(name="work", mount_path=WORK)

# Infrastructure failures only: Argo marks a pod that was evicted, deleted with its node (a reclaimed spot
# instance) or never started as Error; a stage that exits non-zero (bad config, bad data) is Failed and fails fast.
# Int-or-string fields are written as strings: Argo reads both, and its published schema types them as strings.
INFRA_RETRY = RetryStrategy(
    limit="3",
    retry_policy=RetryPolicy.on_error,
    backoff=m.Backoff(duration="30s", factor=m.IntOrString("2"), max_duration="15m"),
)
POD_GC = m.PodGC(strategy="OnPodSuccess")  # failed pods stay for their logs until the workflow's TTL
TTL = m.TTLStrategy(seconds_after_success=7 * 24 * 3600, seconds_after_failure=14 * 24 * 3600)


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str, gpus: int = 0) -> m.ResourceRequirements:
    limits = {"cpu": cpu_limit, "memory": memory_limit}
    requests = {"cpu": cpu, "memory": memory}
    if gpus:
        limits["nvidia.com/gpu"] = requests["nvidia.com/gpu"] = str(gpus)
    return m.ResourceRequirements(
        requests={k: m.Quantity(v) for k, v in requests.items()},
        limits={k: m.Quantity(v) for k, v in limits.items()},
    )


def rlops_container(
    name: str,
    target: str,
    args: Sequence[str],
    requirements: m.ResourceRequirements,
    deadline_s: int,
    *,
    mounts: Sequence[m.VolumeMount] = (SCRATCH_MOUNT,),
    inputs: Sequence[Parameter | Artifact] = (),
    outputs: Sequence[Parameter | Artifact] = (),
    **extra: object,
) -> Container:
    """A step that runs one `rlops` command in an rlops image, locked down, sized and retried the same way."""
    return Container(
        name=name,
        image=image(target),
        # Tags are immutable in ECR, so Always costs one manifest check and never runs a stale local copy.
        image_pull_policy="Always",
        command=["rlops"],
        args=list(args),
        env=[Env(name=k, value=v) for k, v in SCRATCH_ENV.items()],
        resources=requirements,
        security_context=CONTAINER_SECURITY,
        volume_mounts=list(mounts),
        retry_strategy=INFRA_RETRY,
        active_deadline_seconds=str(deadline_s),
        inputs=list(inputs) or None,
        outputs=list(outputs) or None,
        **extra,  # type: ignore[arg-type]
    )


def workflow_template(
    name: str,
    entrypoint: str,
    description: str,
    arguments: Sequence[Parameter],
    deadline_s: int,
    volumes: Sequence[m.Volume] = (SCRATCH_VOLUME,),
) -> WorkflowTemplate:
    """A WorkflowTemplate with the settings every rlops workflow carries; use it as Hera's `with` context."""
    return WorkflowTemplate(
        name=name,
        namespace=NAMESPACE,
        labels=LABELS,
        annotations={"workflows.argoproj.io/description": description},
        entrypoint=entrypoint,
        arguments=list(arguments),
        service_account_name=SERVICE_ACCOUNT,
        security_context=POD_SECURITY,
        active_deadline_seconds=deadline_s,
        pod_gc=POD_GC,
        ttl_strategy=TTL,
        volumes=list(volumes),
    )
