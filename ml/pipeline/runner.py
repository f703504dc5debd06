"""Run one stage, or all of them in order, skipping those whose outputs already match their inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ml.data import storage
from ml.pipeline.config import PipelineConfig
from ml.pipeline.stages import (
    STAGES,
    Stage,
    StageContext,
    check_bank,
    load_dataset,
    read_stage,
    stage_key,
    stage_named,
    write_stage,
)
from rlops_core.errors import RlopsError


@dataclass(frozen=True)
class StageRun:
    stage: str
    output: str
    skipped: bool
    result: dict[str, object]


def default_locations(config: PipelineConfig) -> dict[str, str]:
    return {stage.name: storage.join(config.out, stage.name) for stage in STAGES}


def _data_fingerprint(config: PipelineConfig) -> str:
    from ml.data.fingerprint import fingerprint

    return fingerprint(load_dataset(config.dataset).frame)


def run_stage(
    stage: Stage,
    config: PipelineConfig,
    inputs: dict[str, str],
    output: str,
    say: Callable[[str], None] = print,
    force: bool = False,
) -> StageRun:
    """Run `stage` from its inputs' outputs into `output`; a no-op when `output` already holds this result."""
    missing = [name for name in stage.inputs if name not in inputs]
    if missing:
        raise RlopsError(f"stage {stage.name} needs --input for {', '.join(missing)}")
    records = {}
    for name in stage.inputs:
        record = read_stage(inputs[name])
        if record is None or record.get("stage") != name:
            raise RlopsError(
                f"stage {stage.name} needs the output of stage {name} at {inputs[name]}, which holds none "
                f"(no finished {name} stage there): run stage {name} first"
            )
        records[name] = record
    input_keys = {name: str(record["key"]) for name, record in records.items()}
    extra = _data_fingerprint(config) if stage.name == "data" else ""
    key = stage_key(stage, config, input_keys, extra)
    existing = read_stage(output)
    if existing is not None and existing.get("key") == key and not force:
        say(f"stage {stage.name}: up to date in {output}, skipped")
        return StageRun(stage.name, output, True, existing["result"])
    if existing is not None or force:
        # Outputs of another configuration (or a forced rerun) must not mix with the new ones.
        storage.remove_tree(output)
    context = StageContext(
        config=config,
        inputs={name: inputs[name] for name in stage.inputs},
        input_results={name: record["result"] for name, record in records.items()},
        output=output,
        say=say,
    )
    try:
        result = stage.run(context)
    except RlopsError as exc:
        raise RlopsError(f"stage {stage.name}: {exc}") from exc
    write_stage(output, stage, key, input_keys, result)
    return StageRun(stage.name, output, False, result)


def run_pipeline(
    config: PipelineConfig, say: Callable[[str], None] = print, force: bool = False, stop_after: str | None = None
) -> list[StageRun]:
    """Every stage in order under `config.out`; finished stages whose inputs did not change are reused."""
    if stop_after is not None:
        stage_named(stop_after)
    if config.memory_bank is not None:
        check_bank(config.memory_bank)  # up front: a bank that cannot take the entry must not cost the whole run
    locations = default_locations(config)
    runs = []
    for number, stage in enumerate(STAGES, start=1):
        say(f"[{number}/{len(STAGES)}] stage {stage.name}: {stage.produces}")
        runs.append(run_stage(stage, config, locations, locations[stage.name], say, force))
        if stage.name == stop_after:
            break
    return runs
