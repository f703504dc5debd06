"""Run a rendered workflow on this machine, step by step, exactly as the YAML says.

What Argo and the cluster would provide is stood in for, and nothing else: the DAG is ordered by its
dependencies, fan-outs are expanded from the listing step's output, `{{...}}` expressions are substituted
(an expression this runner does not know is an error, so a typo in a template fails here), volumes are
local folders, S3 prefixes and artifacts are local folders, and a RayJob's entrypoint runs as the driver
of a local Ray cluster, with the RayJob's success and failure conditions evaluated on the status KubeRay
would report. Every step runs its container's command through the real `rlops` CLI.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RLOPS = str(Path(sys.executable).with_name("rlops"))
EXPRESSION = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
STEP_TIMEOUT_S = 300


class StepFailedError(AssertionError):
    pass


@dataclass
class StepRecord:
    task: str
    argv: list[str]
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalRun:
    document: dict[str, Any]
    root: Path
    workflow_name: str
    given: dict[str, str]
    config_map: dict[str, str]
    ray_address: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    conditions: list[tuple[str, bool, bool]] = field(default_factory=list)  # (task, succeeded, failed)

    # ------------------------------------------------------------------------------------------------------
    # parameters and expressions

    def parameters(self) -> dict[str, str]:
        values = {}
        for declared in self.document["spec"].get("arguments", {}).get("parameters", []):
            name = declared["name"]
            if name in self.given:
                values[name] = self.given[name]
            elif "value" in declared:
                values[name] = str(declared["value"])
            elif "configMapKeyRef" in declared.get("valueFrom", {}):
                key = declared["valueFrom"]["configMapKeyRef"]["key"]
                if key not in self.config_map:
                    raise StepFailedError(f"parameter {name}: the ConfigMap stand-in has no key {key}")
                values[name] = self.config_map[key]
            else:
                raise StepFailedError(f"parameter {name} has no value")
        unknown = set(self.given) - set(values)
        if unknown:
            raise StepFailedError(f"given parameters the workflow does not declare: {sorted(unknown)}")
        return values

    @staticmethod
    def substitute(text: str, scope: dict[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in scope:
                raise StepFailedError(f"unknown expression {{{{{name}}}}} in {text!r}")
            return scope[name]

        return EXPRESSION.sub(one, text)

    # ------------------------------------------------------------------------------------------------------
    # the DAG

    def run(self) -> None:
        spec = self.document["spec"]
        templates = {t["name"]: t for t in spec["templates"]}
        scope = {f"workflow.parameters.{k}": v for k, v in self.parameters().items()}
        scope["workflow.name"] = self.workflow_name
        entry = templates[spec["entrypoint"]]
        for task in dag_order(entry["dag"]["tasks"]):
            template = templates[task["template"]]
            items: list[Any] = [None]
            if "withParam" in task:
                items = json.loads(self.substitute(task["withParam"], scope))
            for number, item in enumerate(items):
                local = dict(scope)
                if item is not None:
                    local["item"] = str(item)
                for argument in task.get("arguments", {}).get("parameters", []):
                    local[f"inputs.parameters.{argument['name']}"] = self.substitute(str(argument["value"]), local)
                label = task["name"] if item is None else f"{task['name']}({number}:{item})"
                outputs = self.run_template(label, template, local)
                for key, value in outputs.items():
                    scope[f"tasks.{task['name']}.outputs.parameters.{key}"] = value

    def run_template(self, label: str, template: dict[str, Any], scope: dict[str, str]) -> dict[str, str]:
        if "container" in template:
            return self.run_container(label, template, scope)
        if "resource" in template:
            self.run_rayjob(label, template["resource"], scope)
            return {}
        raise StepFailedError(f"{label}: template kind not run locally: {sorted(template)}")

    # ------------------------------------------------------------------------------------------------------
    # containers

    def volumes(self, label: str, mounts: list[dict[str, Any]]) -> dict[str, Path]:
        """Each mount as a fresh folder of its own step, as an emptyDir is."""
        mapping = {}
        for mount in mounts:
            folder = self.root / "pods" / re.sub(r"[^\w.-]", "_", label) / mount["name"]
            folder.mkdir(parents=True, exist_ok=True)
            mapping[mount["mountPath"]] = folder
        return mapping

    @staticmethod
    def local_path(text: str, mapping: dict[str, Path]) -> str:
        for mount in sorted(mapping, key=len, reverse=True):
            if text == mount or text.startswith(mount + "/"):
                return str(mapping[mount]) + text[len(mount) :]
        return text

    def run_container(self, label: str, template: dict[str, Any], scope: dict[str, str]) -> dict[str, str]:
        container = template["container"]
        mapping = self.volumes(label, container.get("volumeMounts", []))
        for artifact in template.get("inputs", {}).get("artifacts", []):
            if "raw" not in artifact:
                raise StepFailedError(f"{label}: input artifact {artifact['name']} is not raw")
            target = Path(self.local_path(artifact["path"], mapping))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.substitute(artifact["raw"]["data"], scope), encoding="utf-8")
        # Paths written in the template are mapped before substitution: a parameter's value is never rewritten.
        argv = [self.substitute(self.local_path(a, mapping), scope) for a in container["command"] + container["args"]]
        env = {
            e["name"]: self.substitute(self.local_path(e["value"], mapping), scope) for e in container.get("env", [])
        }
        self.execute(label, argv, env, cwd=next(iter(mapping.values()), self.root))
        outputs = {}
        for parameter in template.get("outputs", {}).get("parameters", []):
            source = Path(self.local_path(parameter["valueFrom"]["path"], mapping))
            outputs[parameter["name"]] = source.read_text(encoding="utf-8")
        for artifact in template.get("outputs", {}).get("artifacts", []):
            source = Path(self.local_path(artifact["path"], mapping))
            key = self.substitute(artifact["s3"]["key"], scope)
            shutil.copytree(source, self.root / "artifact-repository" / key)
        self.steps[-1].outputs = outputs
        return outputs

    def execute(self, label: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        if argv[0] != "rlops":
            raise StepFailedError(f"{label}: a step runs rlops, not {argv[0]}")
        started = time.perf_counter()
        result = subprocess.run(
            [RLOPS, *argv[1:]],
            env={**os.environ, **env},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
        )
        self.steps.append(StepRecord(label, argv, time.perf_counter() - started))
        if result.returncode != 0:
            raise StepFailedError(f"{label}: exit {result.returncode}\n{shlex.join(argv)}\n{result.stderr[-3000:]}")

    # ------------------------------------------------------------------------------------------------------
    # the RayJob

    def run_rayjob(self, label: str, resource: dict[str, Any], scope: dict[str, str]) -> None:
        if self.ray_address is None:
            raise StepFailedError(f"{label}: a RayJob needs a local Ray cluster")
        manifest = yaml.safe_load(self.substitute(resource["manifest"], scope))
        if resource["action"] != "create" or manifest["kind"] != "RayJob":
            raise StepFailedError(f"{label}: only RayJob creation is run locally")
        head = manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        mapping = self.volumes(label, head.get("volumeMounts", []))
        env = {e["name"]: self.local_path(e["value"], mapping) for e in head.get("env", [])}
        # The driver of a Ray job finds its cluster through RAY_ADDRESS, which the job submission sets.
        env["RAY_ADDRESS"] = self.ray_address
        succeeded = True
        try:
            self.execute(label, shlex.split(manifest["spec"]["entrypoint"]), env, cwd=self.root)
        except StepFailedError:
            succeeded = False
            raise
        finally:
            status = (
                {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}
                if succeeded
                else {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED"}
            )
            self.conditions.append(
                (
                    label,
                    condition_holds(resource["successCondition"], {"status": status}, any_of=False),
                    condition_holds(resource["failureCondition"], {"status": status}, any_of=True),
                )
            )


def dag_order(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks in an order that respects every dependency (declaration order among ready tasks)."""
    needs = {}
    for task in tasks:
        if "depends" in task:
            raise StepFailedError(f"task {task['name']}: only `dependencies` lists are run locally")
        needs[task["name"]] = set(task.get("dependencies", []))
    names = set(needs)
    for name, wanted in needs.items():
        if wanted - names:
            raise StepFailedError(f"task {name} depends on unknown tasks {sorted(wanted - names)}")
    done: list[str] = []
    while len(done) < len(tasks):
        ready = [t for t in tasks if t["name"] not in done and needs[t["name"]] <= set(done)]
        if not ready:
            raise StepFailedError(f"dependency cycle among {sorted(names - set(done))}")
        done.append(ready[0]["name"])
    by_name = {t["name"]: t for t in tasks}
    return [by_name[name] for name in done]


def condition_holds(condition: str, obj: dict[str, Any], any_of: bool) -> bool:
    """Argo's resource conditions (label-selector syntax over the object's fields): commas are AND in a success
    condition and OR in a failure condition."""
    requirements = [r.strip() for r in re.split(r",(?![^()]*\))", condition)]
    results = []
    for requirement in requirements:
        match = re.fullmatch(r"([\w.]+)\s*(==|!=|=|in|notin)\s*(.+)", requirement)
        if match is None:
            raise StepFailedError(f"condition {requirement!r} is not label-selector syntax")
        path, operator, right = match.groups()
        value: Any = obj
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if operator in ("in", "notin"):
            options = {v.strip() for v in right.strip().removeprefix("(").removesuffix(")").split(",")}
            hit = str(value) in options
            results.append(hit if operator == "in" else not hit)
        else:
            results.append((str(value) == right.strip()) == (operator != "!="))
    return any(results) if any_of else all(results)
