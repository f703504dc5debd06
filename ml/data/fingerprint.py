"""A content hash of a dataset (and the feature settings applied to it), recorded with every run."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from ml.data import columns as col

HASHED_COLUMNS = (col.TIMESTAMP, col.SYMBOL, col.OPEN, col.HIGH, col.LOW, col.CLOSE, col.VOLUME)


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
