"""HTML building blocks shared by every report page: escaping, number formatting, tables, tiles, sections, charts."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.backtest.report.load import CHARTS

# Fractions shown as percentages; everything else unknown is shown as a plain number.
PERCENT_METRICS = frozenset(
    {
        "total_return", "cagr", "annual_volatility", "max_drawdown", "win_rate", "avg_win", "avg_loss", "var_95",
        "cvar_95", "alpha", "exposure", "turnover", "turnover_annual", "trade_win_rate",
    }
)  # fmt: skip


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt_number(value: object, percent: bool = False) -> str:
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return "–"
        if math.isinf(number):
            return "∞" if number > 0 else "-∞"
        if percent:
            return f"{number:.2%}"
        return f"{number:,.4f}" if abs(number) < 1e6 else f"{number:,.0f}"
    return esc(value)


def img(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return (
        f'<img class="chart" data-chart="{esc(name)}" alt="{esc(alt)}" src="data:image/png;base64,{data}">'
        f'<p class="png"><a href="{CHARTS}/{esc(name)}.png">{esc(name)}.png</a></p>'
    )


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    html: str


def section(key: str, title: str, body: str, note: str = "") -> Section:
    """`body` and `note` are HTML the caller has already escaped."""
    blurb = f'<p class="note">{note}</p>' if note else ""
    markup = f'<section id="{esc(key)}" data-section="{esc(key)}"><h2>{esc(title)}</h2>{blurb}{body}</section>'
    return Section(key, title, markup)


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """`rows` hold HTML already escaped by the caller; the header is escaped here."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def kv_table(pairs: Iterable[tuple[str, str]]) -> str:
    return (
        '<table class="kv"><tbody>'
        + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in pairs)
        + ("</tbody></table>")
    )


def config_block(config: Mapping[str, Any]) -> str:
    return f'<pre class="config">{esc(json.dumps(config, indent=2, sort_keys=True, default=str))}</pre>'


def tile(label: str, value: str) -> str:
    return f'<div class="tile"><div class="label">{esc(label)}</div><div class="value">{value}</div></div>'
