"""Load test of the inference service on loopback: `rlops serve` in its own process, an asyncio client.

Serves a small MLP policy (two hidden layers of 64, 32 observation features, 3 actions) and measures four
scenarios: a fixed rate of 500 requests/s and saturation (a fixed number of concurrent clients sending
back to back), each with single observations and with batches of 64. Fixed-rate latency is measured from
each request's scheduled send time, so a client or server that falls behind shows up in the percentiles
instead of silently lowering the rate. Any non-200 answer or transport error counts as an error; the run
exits non-zero if there is one.

The client speaks HTTP/1.1 over asyncio streams (keep-alive, one request per connection at a time) rather
than through httpx: measured here, an httpx AsyncClient spends about 3 ms of CPU per request (two socket
writes per request, anyio and h11 on top), more than the server itself, so on 2 shared cores it would
measure the client. httpx still checks readiness.

Targets on 2 cores: p99 <= 10 ms at 500 requests/s with single observations; >= 50,000 observations/s
with batches of 64.

The peer, measured in the same run with the same client, observations and checkpoint: the policy served by
Ray Serve on loopback (benchmarks/ray_serve_peer.py, `@serve.batch`, one replica). The goal against it: at
least 2x its saturated throughput and a lower p99 at 500 requests/s, with batches of 1 and 64. `--peer none`
measures rlops alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

OBS_DIM = 32
P99_TARGET_S = 0.010
OBS_RATE_TARGET = 50_000


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    observations: int
    errors: int
    seconds: float
    latencies: np.ndarray
    unanswered: int = 0
    """Fixed rate only: requests still unanswered at the deadline (their latency so far is a lower bound)."""
    server_p99: float = float("nan")
    """Upper bound of the server's own histogram bucket holding its 99th percentile (time inside the server)."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def obs_rate(self) -> float:
        return self.observations / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if len(self.latencies) else float("nan")

    def line(self) -> str:
        server = "" if np.isnan(self.server_p99) else f"   server p99 <= {self.server_p99 * 1e3:g} ms"
        return (
            f"  {self.name:<28} {self.rps:>8,.0f} req/s {self.obs_rate:>10,.0f} obs/s"
            f"   p50 {self.percentile(50) * 1e3:6.2f} ms   p99 {self.percentile(99) * 1e3:6.2f} ms"
            f"{server}   errors {self.errors}"
            + (f" (of which {self.unanswered} unanswered at the deadline)" if self.unanswered else "")
        )


def write_checkpoint(folder: Path) -> Path:
    """A freshly initialised PPO-format checkpoint: the network's size, not its training, sets the cost."""
    import torch

    from ml.agents.checkpoint import Checkpoint, save_checkpoint
    from ml.agents.networks import ActorCritic
    from ml.agents.spaces import SpaceSpec

    torch.manual_seed(0)
    spec = SpaceSpec(name="bench", obs_dim=OBS_DIM, action_kind="discrete", num_actions=3)
    model = ActorCritic(spec, hidden_sizes=(64, 64))
    config = {"hidden_sizes": [64, 64], "activation": "tanh", "log_std_init": 0.0}
    checkpoint = Checkpoint(algo="ppo", config=config, env_spec=spec, model_state=model.state_dict())
    return save_checkpoint(checkpoint, folder / "bench.pt")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_ray_serve(checkpoint: Path, port: int) -> subprocess.Popen[bytes]:
    """The peer in its own process (Ray's controller, proxy and replica are processes of their own too)."""
    peer = Path(__file__).with_name("ray_serve_peer.py")
    env = {**os.environ, "PYTHONPATH": str(peer.parent.parent), "RAY_DEDUP_LOGS": "0"}
    process = subprocess.Popen([sys.executable, str(peer), str(checkpoint), str(port)], env=env, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline()  # "ready" once the route answers, or EOF when it failed
    if line.strip() != b"ready":
        process.kill()
        raise SystemExit(f"Ray Serve did not start (exit {process.wait()})")
    return process


def start_server(checkpoint: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RLOPS_SERVE_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "rlops.cli", "serve", "--checkpoint", str(checkpoint), "--port", str(port)]
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before becoming ready")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not become ready within 60 s")


class Connection:
    """One keep-alive HTTP/1.1 connection; requests are pre-encoded bytes, responses read by Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class Pool:
    """Connections handed to one request at a time; opened on demand, so a backlog gets more of them, up to
    ``limit`` (as an HTTP client's pool: beyond it requests wait in the client, and the wait counts)."""

    def __init__(self, port: int, limit: int = 256) -> None:
        self.port = port
        self.idle: list[Connection] = []
        self.all: list[Connection] = []
        self.failures: Counter[str] = Counter()
        self.slots = asyncio.Semaphore(limit)

    async def post(self, request: bytes, batch: int) -> bool:
        async with self.slots:
            return await self._post(request, batch)

    async def _post(self, request: bytes, batch: int) -> bool:
        reused = self.idle.pop() if self.idle else None
        if reused is not None:
            try:
                return self._check(*await reused.send(request), batch, reused)
            except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                await self._drop(reused)
                # The server closes keep-alive connections idle for 5 s; like any HTTP client, resend once on
                # a fresh connection when a pooled one turns out to be closed before answering anything.
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    self.failures[f"{type(exc).__name__}: {exc}"] += 1
                    return False
        connection = None
        try:
            connection = await Connection.open(self.port)
            self.all.append(connection)
            return self._check(*await connection.send(request), batch, connection)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.failures[f"{type(exc).__name__}: {exc}"] += 1
            if connection is not None:
                await self._drop(connection)
            return False

    def _check(self, status: int, body: bytes, batch: int, connection: Connection) -> bool:
        self.idle.append(connection)
        # The cheap part of checking the answer on every request; the full parse on a sample.
        ok = status == 200 and body.startswith(b'{"actions":')
        if ok and random.random() < 0.05:
            ok = len(json.loads(body)["actions"]) == batch
        if not ok:
            self.failures[f"HTTP {status}: {body[:200]!r}"] += 1
        return ok

    async def _drop(self, connection: Connection) -> None:
        self.all.remove(connection)
        await connection.close()

    async def close(self) -> None:
        await asyncio.gather(*(connection.close() for connection in self.all))


def requests(batch: int, count: int = 256) -> list[bytes]:
    rng = np.random.default_rng(batch)
    encoded = []
    for _ in range(count):
        body = json.dumps({"observations": rng.normal(size=(batch, OBS_DIM)).round(6).tolist()}).encode()
        head = (
            "POST /v1/act HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        encoded.append(head.encode() + body)
    return encoded


async def fixed_rate(pool: Pool, name: str, batch: int, rate: float, seconds: float) -> Result:
    """Open loop: request i is sent at start + i / rate whether or not earlier ones have answered."""
    payloads = requests(batch)
    total = int(rate * seconds)
    latencies = np.empty(total)
    outcomes = [False] * total

    async def one(i: int, scheduled: float) -> None:
        outcomes[i] = await pool.post(payloads[i % len(payloads)], batch)
        latencies[i] = time.perf_counter() - scheduled

    tasks = []
    start = time.perf_counter()
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    # A server that cannot keep up would make this wait for its whole backlog: stop at 3x the scenario time
    # and count what is left as unanswered, its latency so far a lower bound.
    _, late = await asyncio.wait(tasks, timeout=max(0.0, start + 3 * seconds - time.perf_counter()))
    now = time.perf_counter()
    for i, task in enumerate(tasks):
        if task in late:
            task.cancel()
            latencies[i] = now - (start + i / rate)
    await asyncio.gather(*late, return_exceptions=True)
    elapsed = time.perf_counter() - start
    return Result(name, total, total * batch, outcomes.count(False), elapsed, latencies, unanswered=len(late))


async def saturation(pool: Pool, name: str, batch: int, workers: int, seconds: float) -> Result:
    payloads = requests(batch)
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            ok = await pool.post(payloads[i % len(payloads)], batch)
            latencies.append(time.perf_counter() - sent)
            errors += not ok
            i += workers

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(workers)))
    elapsed = time.perf_counter() - start
    return Result(name, len(latencies), len(latencies) * batch, errors, elapsed, np.asarray(latencies))


async def server_buckets(port: int | None) -> dict[float, float]:
    """Cumulative counts of the server's latency histogram for successful /v1/act requests (rlops only)."""
    if port is None:
        return {}
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    wanted = 'rlops_serve_request_duration_seconds_bucket{le="'
    buckets = {}
    for line in text.splitlines():
        if line.startswith(wanted) and 'route="/v1/act"' in line and 'status="200"' in line:
            bound = line[len(wanted) :].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def bucket_p99(before: dict[float, float], after: dict[float, float]) -> float:
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    total = counts.get(float("inf"), 0.0)
    return next((bound for bound, count in counts.items() if total and count >= 0.99 * total), float("nan"))


async def measure(port: int, seconds: float, workers: int, metrics: bool) -> tuple[list[Result], Counter[str]]:
    metrics_port = port if metrics else None
    warm = Pool(port)
    await saturation(warm, "warm-up", 1, workers, 1.0)
    await warm.close()
    scenarios = [
        (fixed_rate, "500 req/s, batch 1", 1, 500),
        (fixed_rate, "500 req/s, batch 64", 64, 500),
        (saturation, f"saturation, batch 1 (c={workers})", 1, workers),
        (saturation, f"saturation, batch 64 (c={workers})", 64, workers),
    ]
    results = []
    failures: Counter[str] = Counter()
    for run, name, batch, load in scenarios:
        # A pool per scenario: connections a scenario abandoned at its deadline never leak into the next.
        pool = Pool(port)
        try:
            before = await server_buckets(metrics_port)
            result = await run(pool, name, batch, load, seconds)
            server_p99 = bucket_p99(before, await server_buckets(metrics_port))
        finally:
            await pool.close()
        if result.unanswered:
            await asyncio.sleep(seconds)  # let the server drain its backlog before the next scenario
        results.append(dataclasses.replace(result, server_p99=server_p99))
        failures += pool.failures
    return results, failures


def run_one(name: str, start: Any, checkpoint: Path, args: argparse.Namespace) -> tuple[list[Result], Counter[str]]:
    port = free_port()
    server = start(checkpoint, port)
    try:
        return asyncio.run(measure(port, args.seconds, args.workers, metrics=name == "rlops"))
    finally:
        server.terminate()
        server.wait(timeout=120)


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:5.2f}x" if theirs > 0 else "   n/a"


def compare(ours: list[Result], peer: list[Result]) -> bool:
    """Side by side with Ray Serve; True when the goal (>= 2x saturated throughput, lower p99) is met."""
    print("rlops against Ray Serve (same client, observations and checkpoint):")
    met = True
    for index, unit in ((2, "req/s"), (3, "obs/s")):
        a, b = ours[index], peer[index]
        rate = (a.rps, b.rps) if unit == "req/s" else (a.obs_rate, b.obs_rate)
        print(f"  {a.name:<28} rlops {rate[0]:>10,.0f} {unit}   Ray Serve {rate[1]:>10,.0f} {unit}   "
              f"{ratio(*rate)}  (goal >= 2x)")  # fmt: skip
        met &= rate[0] >= 2 * rate[1]
    for index in (0, 1):
        a, b = ours[index].percentile(99), peer[index].percentile(99)
        print(f"  p99 at {ours[index].name:<21} rlops {a * 1e3:8.2f} ms      Ray Serve {b * 1e3:8.2f} ms      "
              f"{ratio(b, a)} lower  (goal: lower)")  # fmt: skip
        met &= a < b
    print("goal against Ray Serve: " + ("met" if met else "MISSED"))
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per scenario")
    parser.add_argument("--workers", type=int, default=16, help="concurrent clients at saturation")
    parser.add_argument("--peer", choices=("ray", "none"), default="ray", help="also measure Ray Serve")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlops-bench-serve-") as folder:
        checkpoint = write_checkpoint(Path(folder))
        results, failures = run_one("rlops", start_server, checkpoint, args)
        peer = run_one("ray", start_ray_serve, checkpoint, args) if args.peer == "ray" else None
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"MLP 64x64, {OBS_DIM} features, on loopback, {os.cpu_count()} CPU(s) shared with the client")
    print(f"load average after the run (1, 5, 15 min): {load}; other work on the machine inflates the tails")
    print("rlops serve:")
    for result in results:
        print(result.line())
    if peer is not None:
        print("Ray Serve:")
        for result in peer[0]:
            print(result.line())
    single, batched = results[0], results[3]
    p99 = single.percentile(99)
    print(f"p99 at 500 req/s, batch 1:  {p99 * 1e3:6.2f} ms      (target <= {P99_TARGET_S * 1e3:.0f} ms) ", end="")
    print("met" if p99 <= P99_TARGET_S else "MISSED")
    print(f"observations/s, batch 64:   {batched.obs_rate:>9,.0f}  (target >= {OBS_RATE_TARGET:,}) ", end="")
    print("met" if batched.obs_rate >= OBS_RATE_TARGET else "MISSED")
    if peer is not None:
        compare(results, peer[0])
        peer_errors = sum(result.errors for result in peer[0])
        print(f"Ray Serve errors (reported, not failing the run): {peer_errors}")
        for reason, count in peer[1].most_common(5):
            print(f"  {count} x {reason}")
    errors = sum(result.errors for result in results)
    print(f"rlops errors: {errors} (0 allowed)")
    for reason, count in failures.most_common():
        print(f"  {count} x {reason}")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
