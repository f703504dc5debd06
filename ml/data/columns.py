"""Canonical column names and the aliases users' files arrive with (matched case-insensitively)."""

from __future__ import annotations

TIMESTAMP = "timestamp"
SYMBOL = "symbol"
OPEN, HIGH, LOW, CLOSE, VOLUME, ADJ_CLOSE = "open", "high", "low", "close", "volume", "adj_close"
PRICE_COLUMNS = (OPEN, HIGH, LOW, CLOSE)
REQUIRED = (TIMESTAMP, OPEN, HIGH, LOW, CLOSE, VOLUME)
NUMERIC = (*PRICE_COLUMNS, VOLUME, ADJ_CLOSE)

ALIASES: dict[str, str] = {
    "timestamp": TIMESTAMP,
    "date": TIMESTAMP,
    "datetime": TIMESTAMP,
    "time": TIMESTAMP,
    "ts": TIMESTAMP,
    "symbol": SYMBOL,
    "ticker": SYMBOL,
    "asset": SYMBOL,
    "open": OPEN,
    "o": OPEN,
    "high": HIGH,
    "h": HIGH,
    "low": LOW,
    "l": LOW,
    "close": CLOSE,
    "c": CLOSE,
    "volume": VOLUME,
    "vol": VOLUME,
    "v": VOLUME,
    "adj_close": ADJ_CLOSE,
    "adjclose": ADJ_CLOSE,
    "adjusted_close": ADJ_CLOSE,
}


def canonical(name: object) -> str | None:
    """The canonical name for a raw header ("Adj Close", "adj-close", "DATE"...), or None if rlops ignores it."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    return ALIASES.get(key)
