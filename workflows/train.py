"""rlops-train: train one configuration on a GPU node and keep its run folder (checkpoints included) on S3.

The hyperparameters arrive as YAML text (the `--config` file of `rlops train`); the run folder goes to the
artifact repository that infra configures (the artifacts bucket) as an output artifact of the step, so the
Argo UI links to it.
"""

from __future__ import annotations

from hera.workflows import DAG, NoneArchiveStrategy, Parameter, RawArtifact, S3Artifact, Task, WorkflowTemplate
from hera.workflows import models as m

from workflows import common
from workflows.common import wf

NAME = "rlops-train"
DEADLINE_S = 8 * 3600
CONFIG_PATH = f"{common.WORK}/config/hyperparameters.yaml"
RUN_PATH = f"{common.WORK}/runs/run"


def parameters() -> list[Parameter]:
    return [
        Parameter(name="algo", value="ppo", enum=["ppo", "a3c"], description="the agent to train"),
        Parameter(name="dataset", value="sp500", description="named dataset, file, Parquet store or s3:// store"),
        Parameter(name="hyperparameters", value="{}", description="YAML mapping of agent settings (and env:)"),
        Parameter(name="total-timesteps", value="1000000", description="the training budget in env steps"),
        Parameter(name="seed", value="0", description="the run's seed"),
        Parameter(name="device", value="cuda", description="cuda on the GPU node; cpu only to try the chain"),
        common.image_tag_parameter(),
        *common.cluster_parameters("registry"),
    ]


def template() -> WorkflowTemplate:
    with common.workflow_template(
        NAME,
        "train",
        "one configuration on a GPU node, checkpoints to S3",
        parameters(),
        DEADLINE_S,
        (common.SCRATCH_VOLUME, common.WORK_VOLUME),
    ) as built:
        fit = common.rlops_container(
            "fit",
            "training",
            [
                "train",
                "--algo",
                wf("algo"),
                "--dataset",
                wf("dataset"),
                "--config",
                CONFIG_PATH,
                "--total-timesteps",
                wf("total-timesteps"),
                "--seed",
                wf("seed"),
                "--device",
                wf("device"),
                "--runs-dir",
                f"{common.WORK}/runs",
                "--name",
                "run",
                "--no-progress",
            ],
            common.resources("4", "16Gi", "8", "32Gi", gpus=1),
            DEADLINE_S,
            mounts=(common.SCRATCH_MOUNT, common.WORK_MOUNT),
            inputs=[RawArtifact(name="hyperparameters", path=CONFIG_PATH, data=wf("hyperparameters"))],
            outputs=[
                S3Artifact(
                    name="run",
                    path=RUN_PATH,
                    key="runs/{{workflow.name}}/train",
                    archive=NoneArchiveStrategy(),
                )
            ],
            node_selector=common.GPU_NODE_SELECTOR,
            tolerations=[m.Toleration(key=common.GPU_TAINT_KEY, operator="Exists", effect="NoSchedule")],
        )
        with DAG(name="train"):
            Task(name="fit", template=fit)
    return built
