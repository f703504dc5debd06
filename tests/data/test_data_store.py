"""Ingestion into the Parquet store, locally and on S3 (moto's server on loopback), and fingerprints."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from ml.data import fingerprint, load_bars, resolve_dataset, storage
from ml.data.store import ingest, read_manifest
from rlops_core.errors import RlopsError
from tests.builders import good_rows, write_csv


@pytest.fixture
def raw_files(tmp_path: Path) -> list[str]:
    (tmp_path / "raw").mkdir()
    write_csv(tmp_path / "raw" / "aaa.csv", good_rows(20))
    write_csv(tmp_path / "raw" / "bbb.csv", good_rows(20))
    return [str(tmp_path / "raw" / "aaa.csv"), str(tmp_path / "raw" / "bbb.csv")]


def test_ingest_writes_partitions_and_manifest_and_reingest_is_a_noop(tmp_path: Path, raw_files: list[str]) -> None:
    store = str(tmp_path / "store")
    first = ingest(raw_files, store)
    assert first.written
    assert (tmp_path / "store" / "symbol=AAA" / "bars.parquet").exists()
    manifest = read_manifest(store)
    assert manifest.symbols["AAA"].rows == 20
    assert manifest.fingerprint == fingerprint(load_bars(raw_files).frame)
    mtime = (tmp_path / "store" / "manifest.json").stat().st_mtime_ns
    second = ingest(raw_files, store)
    assert not second.written
    assert (tmp_path / "store" / "manifest.json").stat().st_mtime_ns == mtime
    assert resolve_dataset(store).symbols == ("AAA", "BBB")


def test_a_tampered_store_is_detected(tmp_path: Path, raw_files: list[str]) -> None:
    store = tmp_path / "store"
    ingest(raw_files, str(store))
    part = store / "symbol=AAA" / "bars.parquet"
    frame = pd.read_parquet(part)
    frame.loc[0, "close"] = 10.5
    frame.to_parquet(part)
    with pytest.raises(RlopsError, match="do not match its manifest fingerprint"):
        resolve_dataset(str(store))
    (store / "manifest.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(RlopsError, match="store format 99 is not supported"):
        resolve_dataset(str(store))


def test_fingerprint_ignores_file_format_and_column_order(tmp_path: Path) -> None:
    write_csv(tmp_path / "x.csv", good_rows(8))
    frame = pd.DataFrame(good_rows(8))[["volume", "close", "date", "open", "low", "high"]]
    frame.to_parquet(tmp_path / "x.parquet")
    a = fingerprint(load_bars([str(tmp_path / "x.csv")]).frame)
    b = fingerprint(load_bars([str(tmp_path / "x.parquet")]).frame)
    assert a == b
    assert fingerprint(load_bars([str(tmp_path / "x.csv")]).frame, {"window": 3}) != a


@pytest.fixture
def s3_bucket(s3_bucket_factory: Callable[[str], str]) -> str:
    return s3_bucket_factory("market-data").removeprefix("s3://")


def test_ingest_to_and_load_from_s3(tmp_path: Path, raw_files: list[str], s3_bucket: str) -> None:
    raw_prefix = f"s3://{s3_bucket}/raw"
    for path in raw_files:
        storage.write_bytes(f"{raw_prefix}/{Path(path).name}", Path(path).read_bytes())
    store = f"s3://{s3_bucket}/store"
    assert ingest([raw_prefix], store).written
    assert not ingest([raw_prefix], store).written
    bars = resolve_dataset(store)
    assert bars.symbols == ("AAA", "BBB")
    assert fingerprint(bars.frame) == read_manifest(store).fingerprint
    single = resolve_dataset(f"{raw_prefix}/aaa.csv")
    assert len(single.frame) == 20
    with pytest.raises(RlopsError, match="no such object"):
        resolve_dataset(f"s3://{s3_bucket}/raw/missing.csv")
