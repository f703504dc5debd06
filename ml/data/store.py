"""The normalised Parquet store: one partition per symbol plus a manifest, on disk or under an s3:// prefix.

Layout: `<root>/symbol=<SYMBOL>/bars.parquet` and `<root>/manifest.json`. The manifest is written last, so a
store with a manifest is complete; ingesting input whose fingerprint matches the manifest writes nothing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pandas as pd

from ml.data import columns as col
from ml.data import storage
from ml.data.bars import Bars
from ml.data.calendar import check_declared
from ml.data.fingerprint import fingerprint
from ml.data.loader import LoadOptions, find_gaps, load_bars
from rlops_core.errors import RlopsError

MANIFEST = "manifest.json"
STORE_FORMAT = 1


@dataclass(frozen=True)
class SymbolSummary:
    rows: int
    start: str
    end: str
    gaps: list[str]


@dataclass(frozen=True)
class Manifest:
    format: int
    name: str
    fingerprint: str
    created_at: str
    sources: list[str]
    symbols: dict[str, SymbolSummary]
    # Declared bars per year (`rlops data ingest --periods-per-year`); None: inferred from the calendar. Optional
    # in the file, so that stores written before it existed still read.
    periods_per_year: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        try:
            data = json.loads(text)
            if data["format"] != STORE_FORMAT:
                raise RlopsError(f"{where}: store format {data['format']} is not supported (expected {STORE_FORMAT})")
            symbols = {k: SymbolSummary(**v) for k, v in data["symbols"].items()}
            return cls(
                data["format"],
                data["name"],
                data["fingerprint"],
                data["created_at"],
                data["sources"],
                symbols,
                check_declared(data.get("periods_per_year"), where),
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise RlopsError(f"{where}: manifest is not a valid rlops store manifest ({exc})") from exc


@dataclass(frozen=True)
class IngestResult:
    manifest: Manifest
    written: bool


def is_store(location: str) -> bool:
    return storage.exists(storage.join(location, MANIFEST))


def read_manifest(root: str) -> Manifest:
    where = storage.join(root, MANIFEST)
    return Manifest.from_json(storage.read_bytes(where).decode(), where)


def ingest(sources: Sequence[str], root: str, options: LoadOptions | None = None) -> IngestResult:
    """Validate raw files and write them as a store; a no-op when the store already holds the same bars."""
    return write_store(load_bars(sources, options), root, [str(s) for s in sources])


def write_store(bars: Bars, root: str, sources: list[str]) -> IngestResult:
    """Write validated bars as a store; a no-op when the store already holds the same bars."""
    digest = fingerprint(bars.frame)
    declared = bars.declared_periods_per_year
    if is_store(root):
        existing = read_manifest(root)
        # A new declared annualisation is a change too, though the bars are the same.
        if existing.fingerprint == digest and existing.periods_per_year == declared:
            return IngestResult(existing, written=False)
    for symbol, group in bars.frame.groupby(col.SYMBOL):
        buffer = io.BytesIO()
        group.reset_index(drop=True).to_parquet(buffer, index=False)
        storage.write_bytes(storage.join(root, f"symbol={symbol}", "bars.parquet"), buffer.getvalue())
    manifest = Manifest(
        format=STORE_FORMAT,
        name=bars.name,
        fingerprint=digest,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        sources=sources,
        symbols=_summaries(bars),
        periods_per_year=declared,
    )
    storage.write_bytes(storage.join(root, MANIFEST), manifest.to_json().encode())
    return IngestResult(manifest, written=True)


def _summaries(bars: Bars) -> dict[str, SymbolSummary]:
    gaps_by_symbol: dict[str, list[str]] = {}
    for gap in bars.gaps:
        gaps_by_symbol.setdefault(gap.symbol, []).append(f"{gap.after.isoformat()} -> {gap.before.isoformat()}")
    return {
        str(symbol): SymbolSummary(
            rows=len(group),
            start=group[col.TIMESTAMP].iloc[0].isoformat(),
            end=group[col.TIMESTAMP].iloc[-1].isoformat(),
            gaps=gaps_by_symbol.get(str(symbol), []),
        )
        for symbol, group in bars.frame.groupby(col.SYMBOL)
    }


def load_store(root: str) -> Bars:
    """Read a store back; its bars are checked against the manifest's fingerprint."""
    manifest = read_manifest(root)
    frames = []
    for symbol in manifest.symbols:
        where = storage.join(root, f"symbol={symbol}", "bars.parquet")
        frames.append(pd.read_parquet(io.BytesIO(storage.read_bytes(where))))
    frame = pd.concat(frames, ignore_index=True).sort_values([col.SYMBOL, col.TIMESTAMP], kind="stable")
    frame = frame.reset_index(drop=True)
    frame[col.TIMESTAMP] = frame[col.TIMESTAMP].dt.as_unit("ns")
    if fingerprint(frame) != manifest.fingerprint:
        raise RlopsError(f"{root}: store contents do not match its manifest fingerprint (modified or partial store)")
    return Bars(
        frame=frame,
        name=manifest.name,
        gaps=tuple(find_gaps(frame)),
        declared_periods_per_year=manifest.periods_per_year,
    )
