"""Prometheus metrics of one app, in a registry of its own (several apps in one process never collide).

The canary analysis of a rollout compares error rate and latency from ``rlops_serve_requests_total`` and
``rlops_serve_request_duration_seconds`` between model versions, so both carry the route template (never
the raw path, which would let clients create unbounded label values), the method and the status code.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from ml.serve.batching import BatchStats
from ml.serve.model import ModelInfo

# Requests are sub-millisecond to tens of milliseconds; the 10 ms target needs buckets around it.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("route", "method", "status")
        self.requests = Counter("rlops_serve_requests", "HTTP requests answered", labels, registry=self.registry)
        self.latency = Histogram(
            "rlops_serve_request_duration_seconds",
            "Time from receiving a request to sending the end of its response",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model = Info("rlops_serve_model", "The served checkpoint", registry=self.registry)
        self.ready = Gauge(
            "rlops_serve_ready", "1 once the model is loaded and requests are served", registry=self.registry
        )
        self.batch_size = Histogram(
            "rlops_serve_inference_batch_size",
            "Observations per forward pass (after micro-batching)",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "rlops_serve_inference_batch_requests",
            "Requests coalesced into one forward pass",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "rlops_serve_inference_duration_seconds",
            "Time of one forward pass",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        # No labels, so the series exists (at 0) from start-up: a rollout's analysis can tell "none" from "no data".
        self.nonfinite_outputs = Counter(
            "rlops_serve_nonfinite_outputs",
            "Requests answered 500 because the model's forward pass produced a NaN or an infinity",
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method, str(status)).observe(seconds)

    def observe_batch(self, stats: BatchStats) -> None:
        self.batch_size.observe(stats.observations)
        self.batch_requests.observe(stats.requests)
        self.inference_seconds.observe(stats.seconds)

    def model_loaded(self, info: ModelInfo) -> None:
        self.model.info(
            {
                "name": info.name,
                "version": info.version,
                "algo": info.algo,
                "checkpoint_sha256": info.checkpoint_sha256,
                "dataset_fingerprint": info.dataset_fingerprint or "",
            }
        )
        self.ready.set(1)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
