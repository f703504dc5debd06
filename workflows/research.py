"""rlops-research: the research pipeline of `make demo` on the cluster, one pod per stage.

data -> tune -> train -> backtest -> report -> record, each step `rlops pipeline stage NAME` with the same
settings, its inputs being the outputs of the stages the contract (ml/pipeline/stages.py) names. Tuning is a
KubeRay RayJob: its own Ray cluster, the tune stage as the job's driver, trials on the workers, results in the
tuning bucket, the cluster deleted when the job ends.
"""

from __future__ import annotations

import shlex
from typing import Any

import yaml
from hera.workflows import DAG, Container, Parameter, Resource, Task, WorkflowTemplate
from hera.workflows import models as m

from ml.pipeline.stages import STAGES, Stage
from workflows import common
from workflows.common import wf

NAME = "rlops-research"
DEADLINE_S = 12 * 3600
RAY_VERSION = "2.60.0"  # constraints.txt: the images' Ray, which the RayJob's cluster must match
# KubeRay's RayJob states (ray.io/v1): commas mean AND in a success condition and OR in a failure condition.
RAYJOB_SUCCESS = "status.jobDeploymentStatus == Complete,status.jobStatus == SUCCEEDED"
RAYJOB_FAILURE = "status.jobDeploymentStatus in (Failed,ValidationFailed),status.jobStatus in (FAILED,STOPPED)"

# Workflow parameter -> pipeline setting: the parameters a run may change, passed to every stage alike.
SETTINGS = {
    "dataset": "dataset",
    "algos": "algos",
    "samples": "samples",
    "iterations": "iterations",
    "steps-per-iteration": "steps_per_iteration",
    "retrain-timesteps": "retrain_timesteps",
    "smoke": "smoke",
    "seed": "seed",
}
IMAGES = {"data": "backtesting", "tune": "tuning", "train": "training", "backtest": "backtesting",
          "report": "backtesting", "record": "backtesting"}  # fmt: skip
SIZES = {  # requests, then limits
    "data": common.resources("1", "2Gi", "2", "4Gi"),
    "train": common.resources("2", "4Gi", "4", "8Gi"),
    "backtest": common.resources("2", "4Gi", "2", "6Gi"),
    "report": common.resources("1", "2Gi", "1", "3Gi"),
    "record": common.resources("250m", "512Mi", "500m", "1Gi"),
}


def parameters() -> list[Parameter]:
    values = [
        Parameter(name="dataset", value="sp500", description="named dataset, file, Parquet store or s3:// store"),
        Parameter(name="algos", value="[ppo, a3c]", description="algorithms to tune and train, a YAML list"),
        Parameter(name="samples", value="4", description="tuning trials per algorithm"),
        Parameter(name="iterations", value="4", description="reports per trial (the ASHA time axis)"),
        Parameter(name="steps-per-iteration", value="4096", description="environment steps per report"),
        Parameter(
            name="retrain-timesteps",
            value="null",
            description="steps of the final refit; null derives them from the tuned budget and the data",
        ),
        Parameter(name="smoke", value="false", description="true: the agents' smoke budgets"),
        Parameter(name="seed", value="0", description="the run's seed"),
    ]
    return [
        *values,
        common.image_tag_parameter(),
        *common.cluster_parameters("registry", "output-prefix", "tuning-prefix"),
    ]


def location(stage: str) -> str:
    if stage == "tune":
        # The Ray job writes with the ray role, which may write the tuning bucket only.
        return f"{wf('tuning-prefix')}/{{{{workflow.name}}}}/tune"
    return f"{common.run_prefix()}/{stage}"


def stage_args(stage: Stage) -> list[str]:
    args = ["pipeline", "stage", stage.name]
    for name in stage.inputs:
        args += ["--input", f"{name}={location(name)}"]
    args += ["--output", location(stage.name)]
    for parameter, setting in SETTINGS.items():
        args += ["--set", f"{setting}={wf(parameter)}"]
    # No memory_bank setting: a pod has no git checkout, and by default the entry stays next to the record
    # stage's outputs, for `rlops memory add --from` to append from a checkout.
    return args


def _ray_pod(container: str, requirements: m.ResourceRequirements, ray_node: bool = True) -> dict[str, Any]:
    """A Ray pod template as plain data (the RayJob travels as a manifest string)."""
    shm = "/dev/shm"  # noqa: S108 - Ray's object store: an in-memory emptyDir, not the host's
    mounts = [{"name": "scratch", "mountPath": common.SCRATCH}]
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {"sizeLimit": "20Gi"}}]
    if ray_node:
        mounts.append({"name": "shm", "mountPath": shm})
        volumes.append({"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi"}})
    return {
        "spec": {
            "serviceAccountName": common.RAY_SERVICE_ACCOUNT,
            # Ray needs no Kubernetes API access here (no autoscaler); IRSA brings its own projected token.
            "automountServiceAccountToken": False,
            "securityContext": common.POD_SECURITY.model_dump(by_alias=True, exclude_none=True),
            "containers": [
                {
                    "name": container,
                    "image": common.image(IMAGES["tune"]),
                    "imagePullPolicy": "Always",
                    "env": [{"name": k, "value": v} for k, v in common.SCRATCH_ENV.items()],
                    "resources": requirements.model_dump(by_alias=True, exclude_none=True, mode="json"),
                    "securityContext": common.CONTAINER_SECURITY.model_dump(by_alias=True, exclude_none=True),
                    "volumeMounts": mounts,
                }
            ],
            "volumes": volumes,
        }
    }


def rayjob() -> dict[str, Any]:
    """The tune stage as a KubeRay RayJob: the entrypoint is the same stage command, joining the job's cluster."""
    tune = next(stage for stage in STAGES if stage.name == "tune")
    # The submitter hands the entrypoint to a shell: quoted, a value such as "[ppo, a3c]" stays one argument.
    entrypoint = shlex.join(["rlops", *stage_args(tune), "--set", "ray_address=auto"])
    submitter = _ray_pod("ray-job-submitter", common.resources("250m", "512Mi", "500m", "1Gi"), ray_node=False)
    submitter["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "generateName": "{{workflow.name}}-tune-",
            "namespace": common.RAY_NAMESPACE,
            "labels": {**common.LABELS, "rlops.io/workflow": "{{workflow.name}}"},
        },
        "spec": {
            "entrypoint": entrypoint,
            "submissionMode": "K8sJobMode",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 3600,
            "activeDeadlineSeconds": DEADLINE_S // 2,
            # A failed tuning run is the run's own failure (Argo retries infrastructure errors around it).
            "backoffLimit": 0,
            "submitterPodTemplate": submitter,
            "rayClusterSpec": {
                "rayVersion": RAY_VERSION,
                # Ray 2.60 enforces token auth; KubeRay makes the token and hands it to the submitter.
                "authOptions": {"mode": "token"},
                "headGroupSpec": {
                    # The driver runs on the head; trials go to the workers.
                    "rayStartParams": {"num-cpus": "0"},
                    "template": _ray_pod("ray-head", common.resources("1", "4Gi", "2", "8Gi")),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "cpu",
                        "replicas": 2,
                        "minReplicas": 2,
                        "maxReplicas": 2,
                        "rayStartParams": {},
                        "template": _ray_pod("ray-worker", common.resources("4", "8Gi", "4", "8Gi")),
                    }
                ],
            },
        },
    }


def template() -> WorkflowTemplate:
    with common.workflow_template(
        NAME,
        "research",
        "data -> tune (KubeRay) -> train -> backtest -> report -> record, as `make demo` runs it, one pod per stage",
        parameters(),
        DEADLINE_S,
    ) as built:
        steps: dict[str, Container | Resource] = {
            "tune": Resource(
                name="tune",
                action="create",
                manifest=yaml.safe_dump(rayjob(), sort_keys=False, width=1000),
                success_condition=RAYJOB_SUCCESS,
                failure_condition=RAYJOB_FAILURE,
                retry_strategy=common.INFRA_RETRY,
                active_deadline_seconds=str(DEADLINE_S // 2),
            )
        }
        for stage in STAGES:
            if stage.name != "tune":
                steps[stage.name] = common.rlops_container(
                    stage.name, IMAGES[stage.name], stage_args(stage), SIZES[stage.name], DEADLINE_S // 4
                )
        with DAG(name="research"):
            for stage in STAGES:
                Task(name=stage.name, template=steps[stage.name], dependencies=list(stage.inputs) or None)
    return built
