"""rlops-backtest: the grid of `rlops backtest batch` fanned out, one pod per cell, and fanned back in.

`cells` lists the grid's cells; `cell` runs one of them per pod, at most PARALLELISM at a time, each into
<run>/cells/NNNN; `leaderboard` ranks every outcome into one leaderboard with the deflated Sharpe of the best
and the HTML report. A cell whose backtest fails is recorded as failed, as in a local batch; a pod lost to the
infrastructure is retried.
"""

from __future__ import annotations

from hera.workflows import DAG, Parameter, Task, WorkflowTemplate
from hera.workflows import models as m

from workflows import common
from workflows.common import wf

NAME = "rlops-backtest"
DEADLINE_S = 6 * 3600
PARALLELISM = 8
CELLS_FILE = f"{common.WORK}/cells.json"


def parameters() -> list[Parameter]:
    return [
        Parameter(name="grid", description="grid YAML of `rlops backtest batch` (an s3:// URL the pods can read)"),
        common.image_tag_parameter(),
        *common.cluster_parameters("registry", "output-prefix"),
    ]


def template() -> WorkflowTemplate:
    grid = ["--grid", wf("grid")]
    with common.workflow_template(
        NAME,
        "batch",
        "backtest grid: one pod per cell, one leaderboard",
        parameters(),
        DEADLINE_S,
        (common.SCRATCH_VOLUME, common.WORK_VOLUME),
    ) as built:
        cells = common.rlops_container(
            "cells",
            "backtesting",
            ["backtest", "cells", *grid, "--to", CELLS_FILE],
            common.resources("250m", "512Mi", "500m", "1Gi"),
            1800,
            mounts=(common.SCRATCH_MOUNT, common.WORK_MOUNT),
            outputs=[Parameter(name="cells", value_from=m.ValueFrom(path=CELLS_FILE))],
        )
        cell = common.rlops_container(
            "cell",
            "backtesting",
            ["backtest", "cell", *grid, "--index", "{{inputs.parameters.index}}", "--out", common.run_prefix()],
            common.resources("1", "2Gi", "1", "4Gi"),
            DEADLINE_S // 2,
            inputs=[Parameter(name="index")],
        )
        merge = common.rlops_container(
            "leaderboard",
            "backtesting",
            ["backtest", "merge", *grid, "--out", common.run_prefix()],
            common.resources("1", "2Gi", "2", "4Gi"),
            3600,
        )
        with DAG(name="batch", parallelism=PARALLELISM):
            Task(name="cells", template=cells)
            Task(
                name="cell",
                template=cell,
                arguments={"index": "{{item}}"},
                with_param="{{tasks.cells.outputs.parameters.cells}}",
                dependencies=["cells"],
            )
            Task(name="leaderboard", template=merge, dependencies=["cell"])
    return built
