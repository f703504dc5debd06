"""`make bench-tune`: what Ray Tune costs and what ASHA saves, on the PPO trading agent.

(a) The same N trial configurations (a grid over learning rates), each about TRIAL_S seconds of training and
    validation scoring, run one after another in this process without Ray, then through `rlops tune` on a
    local cluster, one trial at a time: the overhead ratio (Ray start-up, actors, reports, checkpoints).
(b) ASHA against a full-budget search over the same seeded random configurations: iterations (compute) used,
    wall time, and the best validation Sharpe each found.

Sizes come from the environment: BENCH_TUNE_TRIALS (8), BENCH_TUNE_TRIAL_S (30), BENCH_TUNE_SAMPLES (24),
BENCH_TUNE_ITERATIONS (6); BENCH_TUNE_PARTS=a or b runs one part.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ml.tune.objective import Payload, build_payload, score
from ml.tune.runner import prepare, run_tune
from ml.tune.settings import TuneSettings
from ml.tune.spaces import agent_config
from ml.tune.trainable import TrialPlan, _ppo_chunks

TRIALS = int(os.environ.get("BENCH_TUNE_TRIALS", "8"))
TRIAL_S = float(os.environ.get("BENCH_TUNE_TRIAL_S", "30"))
SAMPLES = int(os.environ.get("BENCH_TUNE_SAMPLES", "24"))
ITERATIONS = int(os.environ.get("BENCH_TUNE_ITERATIONS", "6"))
REPORTS = 5  # reports per trial in (a)


def in_process(plan: TrialPlan, configs: list[dict[str, float]], payload: Payload) -> tuple[float, float]:
    """Train and score every configuration sequentially with the trainable's own pieces, no Ray.

    Returns the wall time and, of it, the seconds spent training (the rest: set-up and validation scoring).
    """
    start = time.perf_counter()
    training = 0.0
    for sampled in configs:
        cfg = agent_config("ppo", plan.base, sampled)
        chunks = _ppo_chunks(cfg, payload, plan, None)  # type: ignore[arg-type]
        for _ in range(plan.iterations):
            began = time.perf_counter()
            policy, _, _ = next(chunks)
            training += time.perf_counter() - began
            score(policy, payload)
        chunks.close()
    return time.perf_counter() - start, training


def calibrate_steps(payload: Payload) -> int:
    """Steps per report such that a trial of REPORTS reports takes about TRIAL_S seconds."""
    warm_up = TuneSettings(algo="ppo", search="grid", iterations=1, steps_per_iteration=1024, storage="unused")
    in_process(prepare(warm_up).plan, [{"learning_rate": 3e-4}], payload)  # compiled kernels, first touches
    steps = 8192
    settings = TuneSettings(algo="ppo", search="grid", iterations=1, steps_per_iteration=steps, storage="unused")
    wall, training = in_process(prepare(settings).plan, [{"learning_rate": 3e-4}], payload)
    per_step, per_report = training / steps, wall - training
    return max(1024, int((TRIAL_S / REPORTS - per_report) / per_step) // 1024 * 1024)


def overhead(root: Path) -> None:
    payload = build_payload("sp500", {}, 1, "sharpe", "max")
    steps = calibrate_steps(payload)
    print(f"(a) calibrated: {steps} steps per report", flush=True)
    rates = [float(f"{1e-4 * (1 + k):.1e}") for k in range(TRIALS)]
    space = root / "space.yaml"
    space.write_text(
        yaml.safe_dump({"learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-2, "grid": rates}})
    )
    # Both sides run as fresh commands: interpreter start, imports, loading the data and the first compiled
    # kernel loads are work any way of running these trials pays, so only what Tune adds shows as overhead.
    start = time.perf_counter()
    worker = [sys.executable, __file__, "--in-process", str(steps), *(str(r) for r in rates)]
    subprocess.run(worker, check=True, capture_output=True)
    local = time.perf_counter() - start
    command = [
        *[sys.executable, "-m", "rlops.cli", "tune", "--algo", "ppo", "--search", "grid", "--samples", "1"],
        *["--scheduler", "none", "--space", str(space), "--iterations", str(REPORTS)],
        *["--steps-per-iteration", str(steps), "--max-concurrent", "1", "--num-cpus", "2"],
        *["--storage", str(root), "--name", "overhead"],
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    tuned = time.perf_counter() - start
    inside = sum(trial_seconds(folder) for folder in (root / "overhead").glob("trial_*"))
    print(f"(a) {TRIALS} trials x {REPORTS} reports x {steps} steps (~{local / TRIALS:.0f} s of compute each)")
    print(
        f"    in-process, no Ray (one `python`: start-up, imports, data, the trials in turn): {local:.1f} s; "
        f"`rlops tune` (local cluster, 1 at a time): {tuned:.1f} s"
    )
    print(
        f"    of the latter {inside:.1f} s inside the trials (training, scoring, reports, checkpoints) and "
        f"{tuned - inside:.1f} s outside (start-up, Ray, actors, scheduling, outputs, shutdown)"
    )
    print(f"    Tune overhead: {(tuned - local) / local:+.1%} of trial compute (target <= 10%)")


def trial_seconds(folder: Path) -> float:
    """Seconds a trial spent inside its trainable (Tune's `time_total_s` of its last report)."""
    lines = (folder / "result.json").read_text().strip().splitlines()
    return float(json.loads(lines[-1])["time_total_s"])


def asha_vs_full(root: Path) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rows = {}
        for scheduler in ("none", "asha"):
            settings = TuneSettings(
                algo="ppo",
                search="random",
                samples=SAMPLES,
                scheduler=scheduler,
                iterations=ITERATIONS,
                steps_per_iteration=1024,
                reduction_factor=3,
                storage=str(root),
                name=f"b-{scheduler}",
                seed=7,
            )
            start = time.perf_counter()
            outcome = run_tune(settings, say=lambda _: None)
            board = outcome.leaderboard
            rows[scheduler] = (
                int(board["iterations"].sum()),
                time.perf_counter() - start,
                board["best_val_sharpe"].max(),
            )
    finally:
        ray.shutdown()
    full_iters, full_wall, full_best = rows["none"]
    asha_iters, asha_wall, asha_best = rows["asha"]
    print(f"(b) {SAMPLES} seeded random configurations, {ITERATIONS} reports of 1024 steps at full budget")
    print(f"    full budget: {full_iters} iterations, {full_wall:.1f} s, best validation Sharpe {full_best:.3f}")
    print(f"    ASHA:        {asha_iters} iterations, {asha_wall:.1f} s, best validation Sharpe {asha_best:.3f}")
    print(
        f"    ASHA used {asha_iters / full_iters:.0%} of the compute (target <= 40%); best {asha_best - full_best:+.3f}"
        f" against full budget ({(asha_best - full_best) / abs(full_best):+.1%}; target within 5%)"
    )


def in_process_command(steps: int, rates: list[float]) -> None:
    """The in-process side of (a) as its own command: load the data, then every trial in turn."""
    payload = build_payload("sp500", {}, 1, "sharpe", "max")
    settings = TuneSettings(
        algo="ppo", search="grid", iterations=REPORTS, steps_per_iteration=steps, storage="unused", name="unused"
    )
    in_process(prepare(settings).plan, [{"learning_rate": r} for r in rates], payload)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--in-process":
        in_process_command(int(sys.argv[2]), [float(r) for r in sys.argv[3:]])
        return
    parts = os.environ.get("BENCH_TUNE_PARTS", "a,b").split(",")
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as folder:
        if "a" in parts:
            overhead(Path(folder))
        if "b" in parts:
            asha_vs_full(Path(folder))


if __name__ == "__main__":
    main()
