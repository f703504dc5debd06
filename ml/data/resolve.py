"""One way to name data everywhere `--dataset` is accepted: a named dataset, a file, a store, or s3://."""

from __future__ import annotations

from pathlib import Path

from ml.data import datasets, storage
from ml.data.bars import Bars
from ml.data.loader import LoadOptions, load_bars
from ml.data.store import is_store, load_store
from rlops_core.errors import RlopsError


def resolve_dataset(spec: str, options: LoadOptions | None = None) -> Bars:
    if datasets.is_named(spec):
        return datasets.load_named(spec)
    if storage.is_s3(spec) or Path(spec).exists():
        if is_store(spec):
            return load_store(spec)
        return load_bars([spec], options)
    raise RlopsError(
        f"dataset '{spec}' is neither a named dataset ({', '.join(sorted(datasets.DATASETS))}) nor an existing "
        "file, folder or s3:// URL"
    )
