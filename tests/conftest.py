"""Fixtures shared across test areas."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def s3_bucket_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """moto's S3 server on loopback with the AWS settings pointed at it; call the result to create a bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    from ml.data import storage

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    storage._client.cache_clear()  # the cached client would still point at the previous endpoint

    def make_bucket(name: str) -> str:
        boto3.client("s3").create_bucket(Bucket=name)
        return f"s3://{name}"

    yield make_bucket
    storage._client.cache_clear()
    server.stop()
