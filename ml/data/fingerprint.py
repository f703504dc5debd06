"""A content hash of a dataset (and the feature settings applied to it), recorded with every run."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from ml.data import columns as col

HASHED_COLUMNS = (col.TIMESTAMP, col.SYMBOL, col.OPEN, col.HIGH, col.LOW, col.CLOSE, col.VOLUME)

# Two hashes reach users, and each keeps one name on every command and page so that equal values read as equal:
# the bars alone (`data show`, `data ingest`, the pipeline's data stage) and the bars with the feature settings
# applied (what a checkpoint and a backtest are tied to; it changes when the features do, the bars unchanged).
DATA_LABEL = "data fingerprint"
FEATURES_LABEL = "data+features fingerprint"


def fingerprint(frame: pd.DataFrame, settings: dict[str, Any] | None = None) -> str:
    """sha256 over the canonical bar columns in (symbol, timestamp) order plus the JSON of `settings`.

    The same bars give the same fingerprint whatever file format or column order they arrived in.
    """
    ordered = frame.sort_values([col.SYMBOL, col.TIMESTAMP], kind="stable")
    digest = hashlib.sha256()
    digest.update(np.asarray(ordered[col.TIMESTAMP].dt.tz_convert("UTC").dt.as_unit("ns").astype("int64")).tobytes())
    digest.update("\x1f".join(ordered[col.SYMBOL].astype(str)).encode())
    for name in HASHED_COLUMNS[2:]:
        digest.update(np.ascontiguousarray(ordered[name].to_numpy(dtype=np.float64)).tobytes())
    digest.update(json.dumps(settings or {}, sort_keys=True, default=str).encode())
    return "sha256:" + digest.hexdigest()


def labelled(value: str, with_features: bool = False) -> str:
    """`data fingerprint sha256:...` or `data+features fingerprint sha256:...`, always the whole hash."""
    return f"{FEATURES_LABEL if with_features else DATA_LABEL} {value}"
