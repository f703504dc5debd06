"""The peer of `make bench-serve`: the same checkpoint's policy behind Ray Serve on loopback.

Run by benchmarks/serve_load.py in its own process, as `rlops serve` is: `python benchmarks/ray_serve_peer.py
CHECKPOINT PORT`. It answers `POST /v1/act` with the body rlops answers (actions, values, probabilities,
model_version) from the same `Policy` network, coalescing concurrent requests with Ray Serve's own
`@serve.batch` (its counterpart of rlops' micro-batcher), one replica, one torch thread like rlops. It prints
`ready` once the route answers and runs until SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import httpx
import numpy as np
import torch
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from ml.agents.policy import load_policy


# No per-request access log (rlops serve runs without one too), one replica on one CPU.
@serve.deployment(
    num_replicas=1,
    max_ongoing_requests=256,
    ray_actor_options={"num_cpus": 1},
    logging_config={"enable_access_log": False, "log_level": "WARNING"},
)
class PolicyDeployment:
    def __init__(self, checkpoint: str) -> None:
        torch.set_num_threads(1)
        self.policy = load_policy(checkpoint)
        self.width = self.policy.spec.obs_dim

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.0)
    async def infer(self, batches: list[np.ndarray]) -> list[dict[str, Any]]:
        sizes = [len(batch) for batch in batches]
        obs = np.concatenate(batches)
        with torch.no_grad():
            inputs = self.policy.preprocess(obs)
            dist = self.policy.model.distribution(inputs)
            actions = dist.mode().numpy()
            values = self.policy.model.value(inputs).numpy()
            probabilities = dist.log_probs.exp().numpy()
        out, start = [], 0
        for size in sizes:
            stop = start + size
            out.append(
                {
                    "actions": actions[start:stop].tolist(),
                    "values": values[start:stop].tolist(),
                    "probabilities": probabilities[start:stop].tolist(),
                    "model_version": "ray-serve",
                }
            )
            start = stop
        return out

    async def __call__(self, request: Request) -> Response:
        obs = np.asarray((await request.json())["observations"], dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != self.width:
            return Response(json.dumps({"error": f"expected (B, {self.width})"}), status_code=422)
        return Response(json.dumps(await self.infer(obs)), media_type="application/json")


def main() -> None:
    checkpoint, port = sys.argv[1], int(sys.argv[2])
    import ray

    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    serve.start(
        http_options={"host": "127.0.0.1", "port": port},
        logging_config={"enable_access_log": False, "log_level": "WARNING"},
    )
    serve.run(PolicyDeployment.bind(checkpoint), route_prefix="/v1/act", blocking=False)
    body = {"observations": [[0.0] * load_policy(checkpoint).spec.obs_dim]}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.post(f"http://127.0.0.1:{port}/v1/act", json=body, timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    else:
        raise SystemExit("Ray Serve did not answer within 120 s")
    print("ready", flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        time.sleep(0.2)
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
