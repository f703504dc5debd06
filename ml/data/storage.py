"""Byte-level access to local paths and `s3://` URLs, so every reader and writer handles both the same way.

The S3 client honours the standard AWS settings (credentials chain, region, and `AWS_ENDPOINT_URL` for
S3-compatible stores such as MinIO or a local moto server).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rlops_core.errors import RlopsError


def is_s3(location: str | Path) -> bool:
    return str(location).startswith("s3://")


def _split(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if not parsed.netloc:
        raise RlopsError(f"{url}: an s3 URL needs a bucket (s3://BUCKET/KEY)")
    return parsed.netloc, parsed.path.lstrip("/")


@cache
def _client() -> Any:
    import boto3

    return boto3.client("s3")


def _explain(location: str, action: str, exc: Exception) -> str:
    """One line for a failed S3 call: the URL, what failed, and which setting fixes it."""
    from botocore import exceptions as boto

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    where = f"the S3 endpoint {endpoint} (AWS_ENDPOINT_URL)" if endpoint else "AWS S3 (AWS_ENDPOINT_URL is unset)"
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return (
            f"{location}: cannot {action}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            f"(or AWS_PROFILE), and AWS_ENDPOINT_URL for an S3-compatible store (talking to {where})"
        )
    if isinstance(exc, boto.EndpointConnectionError | boto.ConnectTimeoutError | boto.ReadTimeoutError):
        return f"{location}: cannot {action}: {where} cannot be reached; check AWS_ENDPOINT_URL and the network"
    if isinstance(exc, boto.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return f"{location}: cannot {action}: the bucket does not exist at {where}"
        if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "ExpiredToken"}:
            return (
                f"{location}: cannot {action}: {where} refused the AWS credentials ({code}); check AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the bucket's permissions"
            )
    return f"{location}: cannot {action} ({type(exc).__name__}: {' '.join(str(exc).split())})"


@contextmanager
def _s3(location: str | Path, action: str) -> Iterator[None]:
    """Every S3 call runs inside this, so no botocore exception reaches a user as a traceback."""
    try:
        yield
    except RlopsError:
        raise
    except Exception as exc:  # botocore's errors have no common base worth naming; each is explained
        raise RlopsError(_explain(str(location), action, exc)) from exc


def join(base: str | Path, *parts: str) -> str:
    if is_s3(base):
        return "/".join([str(base).rstrip("/"), *parts])
    return str(Path(base).joinpath(*parts))


def read_bytes(location: str | Path) -> bytes:
    if is_s3(location):
        bucket, key = _split(str(location))
        with _s3(location, "read"):
            client = _client()
            try:
                body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except client.exceptions.NoSuchKey as exc:
                raise RlopsError(f"{location}: no such object") from exc
        return body
    path = Path(location)
    if not path.exists():
        raise RlopsError(f"{path}: no such file")
    return path.read_bytes()


def write_bytes(location: str | Path, data: bytes) -> None:
    if is_s3(location):
        bucket, key = _split(str(location))
        with _s3(location, "write"):
            _client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def exists(location: str | Path) -> bool:
    if is_s3(location):
        bucket, key = _split(str(location))
        with _s3(location, "check"):
            client = _client()
            try:
                client.head_object(Bucket=bucket, Key=key)
            except client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    return False
                raise
        return True
    return Path(location).exists()


def list_files(location: str | Path, suffixes: tuple[str, ...]) -> list[str]:
    """Every file under a folder or prefix whose name ends with one of `suffixes`, sorted."""
    if is_s3(location):
        bucket, prefix = _split(str(location).rstrip("/") + "/")
        with _s3(location, "list"):
            paginator = _client().get_paginator("list_objects_v2")
            keys = [
                obj["Key"]
                for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
                for obj in page.get("Contents", [])
                if obj["Key"].endswith(suffixes)
            ]
        return sorted(f"s3://{bucket}/{key}" for key in keys)
    return sorted(str(p) for p in Path(location).rglob("*") if p.is_file() and p.name.endswith(suffixes))


def remove_tree(location: str | Path) -> None:
    """Delete a folder or every object under a prefix (used before a forced rerun of a stage)."""
    if is_s3(location):
        bucket, prefix = _split(str(location).rstrip("/") + "/")
        with _s3(location, "delete"):
            client = _client()
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        return
    import shutil

    if Path(location).exists():
        shutil.rmtree(location)


def copy_tree(source: str | Path, destination: str | Path) -> None:
    """Copy every file under a folder or prefix to another folder or prefix (local and s3:// in any mix)."""
    base = str(source).rstrip("/")
    for item in list_files(source, ("",)):
        relative = item[len(base) :].lstrip("/")
        write_bytes(join(destination, *relative.split("/")), read_bytes(item))
