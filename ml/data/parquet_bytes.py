"""A frame's Parquet bytes: the very bytes `DataFrame.to_parquet` writes, without redoing its per-column work.

`pyarrow.Table.from_pandas` inspects every column in Python to choose its Arrow type and to write pandas'
metadata; for a backtest's two frames that was most of the time spent saving a cell (about 4 ms a frame), and a
batch saves hundreds of frames of one layout. So the schema, metadata included, is worked out once per layout
(column names, dtypes, index) from an empty slice, and each frame's columns then go to Arrow as they are, with
pandas' own missing-value rule (NaN and NaT become nulls). A layout it does not handle (object columns, other
indexes, duplicate names, `attrs`) is written by `to_parquet` itself.
"""

from __future__ import annotations

import io
import json
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_COMPRESSION: Literal["snappy"] = "snappy"  # pandas' default, so the bytes match `to_parquet`'s
_SCHEMAS: dict[tuple[object, ...], pa.Schema] = {}  # per layout; a process sees a handful


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    layout = _layout(frame)
    if layout is None:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, compression=_COMPRESSION)
        return buffer.getvalue()
    schema = _schema(frame, layout)
    index_field = schema.names[-1] if isinstance(frame.index, pd.DatetimeIndex) else None
    columns = _column_arrays(frame)
    arrays = [
        pa.array(frame.index.array if name == index_field else columns[name], type=field.type, from_pandas=True)
        for name, field in zip(schema.names, schema, strict=True)
    ]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), buffer, compression=_COMPRESSION)
    return buffer.getvalue()


def _column_arrays(frame: pd.DataFrame) -> dict[str, Any]:
    """Each column's values; an all-float frame's in one step (selecting its columns one by one cost more than
    writing them)."""
    if all(dtype == np.float64 for dtype in frame.dtypes):
        block = frame.to_numpy()
        return {name: block[:, j] for j, name in enumerate(frame.columns)}
    return {name: frame[name].array for name in frame.columns}


def _layout(frame: pd.DataFrame) -> tuple[object, ...] | None:
    """What the schema depends on, or None where `to_parquet` should do the work."""
    columns = list(frame.columns)
    simple_columns = all(isinstance(c, str) for c in columns) and len(set(columns)) == len(columns)
    simple_types = all(dtype.kind in "fiubM" or dtype == "str" for dtype in frame.dtypes)
    index = frame.index
    index_kind: tuple[object, ...]
    if isinstance(index, pd.DatetimeIndex):
        index_kind = ("datetime", str(index.dtype), index.name)
        if index.name in columns or (index.name is not None and not isinstance(index.name, str)):
            return None
    elif isinstance(index, pd.RangeIndex) and index.name is None:
        index_kind = ("range",)
    else:
        return None
    if not simple_columns or not simple_types or frame.attrs:
        return None
    return (tuple(columns), tuple(str(dtype) for dtype in frame.dtypes), index_kind)


def _schema(frame: pd.DataFrame, layout: tuple[object, ...]) -> pa.Schema:
    schema = _empty_schema(frame, layout)
    if not isinstance(frame.index, pd.RangeIndex):
        return schema
    # A RangeIndex is stored as metadata only, its bounds included: the one part that changes with the frame.
    metadata = json.loads(schema.metadata[b"pandas"])
    index = frame.index
    metadata["index_columns"] = [{"kind": "range", "name": None, "start": index.start, "stop": index.stop,
                                  "step": index.step}]  # fmt: skip
    return schema.with_metadata({**schema.metadata, b"pandas": json.dumps(metadata).encode()})


def _empty_schema(frame: pd.DataFrame, layout: tuple[object, ...]) -> pa.Schema:
    if layout not in _SCHEMAS:
        _SCHEMAS[layout] = pa.Table.from_pandas(frame.iloc[:0]).schema
    return _SCHEMAS[layout]
