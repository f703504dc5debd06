"""The page shell every report shares: inline CSS, the error guard and page script, header and navigation.

The page's script records any error into `#report-status` and, once the page has loaded, counts the charts that
decoded; the headless-browser test reads that element back (docs/reports.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from ml.backtest.report.markup import Section, esc


@dataclass(frozen=True)
class Scope:
    """What a page's numbers were measured on, shown in every page's header: a reader must never have to guess.

    `in_sample` is None when a page mixes in-sample and out-of-sample results.
    """

    period: str  # e.g. "test 2016-01-04 → 2018-05-31"
    in_sample: bool | None

    @property
    def label(self) -> str:
        return "mixed in- and out-of-sample" if self.in_sample is None else SAMPLE_LABELS[self.in_sample]


SAMPLE_LABELS = {True: "in-sample", False: "out-of-sample"}


def span_text(start: object, end: object) -> str:
    """Two timestamps as `start → end`: dates alone when both fall on midnight, as daily bars do."""
    try:
        first, last = pd.Timestamp(str(start)), pd.Timestamp(str(end))
    except ValueError:
        return f"{start} → {end}"
    daily = all(t == t.normalize() for t in (first, last))
    return f"{stamp_text(first, daily)} → {stamp_text(last, daily)}"


def stamp_text(stamp: pd.Timestamp, daily: bool | None = None) -> str:
    """A bar's timestamp as a date when it falls on midnight (or `daily` says so), else to the minute."""
    daily = stamp == stamp.normalize() if daily is None else daily
    return stamp.strftime("%Y-%m-%d") if daily else stamp.isoformat(timespec="minutes")


CSS = """
:root { --ink: #1b1f24; --muted: #5b6470; --line: #d9dee4; --accent: #1f5fa8; --bad: #b03a2e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); }
header { padding: 18px 28px 10px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 20px; }
header .meta { color: var(--muted); font-size: 12px; }
header .scope { font-size: 13px; margin: 0 0 4px; }
.sample { border-radius: 4px; padding: 1px 7px; font-weight: 600; font-size: 12px; color: #fff; }
.sample.out-of-sample { background: #1e7b45; }
.sample.in-sample, .sample.mixed { background: #b9770e; }
nav { padding: 6px 28px; border-bottom: 1px solid var(--line); position: sticky; top: 0; background: #fff;
      z-index: 1; font-size: 13px; }
nav a { margin-right: 12px; color: var(--accent); text-decoration: none; }
main { padding: 0 28px 40px; max-width: 1120px; }
section { margin-top: 26px; }
h2 { font-size: 16px; margin: 0 0 6px; }
h3 { font-size: 14px; margin: 16px 0 4px; }
.chosen { color: #1e7b45; font-weight: 600; }
.wide { overflow-x: auto; }
.wide thead th { position: static; }
.note { color: var(--muted); margin: 0 0 8px; }
img.chart { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); margin: 4px 0 2px; }
p.png { margin: 0 0 10px; font-size: 11px; }
p.png a { color: var(--muted); }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 12px; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.tile .label { color: var(--muted); font-size: 12px; }
.tile .value { font-size: 18px; font-weight: 600; }
.ci { color: var(--muted); font-size: 12px; font-weight: 400; margin-left: 6px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 4px 0 8px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #f3f5f7; position: sticky; top: 31px; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable thead th[aria-sort="descending"]::after { content: " ▼"; }
table.kv th { background: none; color: var(--muted); font-weight: 500; position: static; }
td code.error, .error { color: var(--bad); white-space: pre-wrap; }
.hint { color: var(--muted); font-family: ui-monospace, monospace; font-size: 11px; }
pre.config { background: #f6f8fa; border: 1px solid var(--line); padding: 10px; overflow: auto; font-size: 12px; }
.toggle button { border: 1px solid var(--line); background: #fff; padding: 3px 12px; cursor: pointer; }
.toggle button[aria-pressed="true"] { background: var(--accent); color: #fff; border-color: var(--accent); }
.empty { color: var(--muted); font-style: italic; }
#report-status { display: none; }
"""

# Installed before anything else runs, so an error in any later script (or an image that fails to decode) is
# recorded where a headless browser can read it back with --dump-dom.
GUARD_JS = """
(function () {
  var errors = [];
  function record(text) {
    errors.push(String(text));
    var box = document.getElementById("report-status");
    if (box) { box.setAttribute("data-errors", String(errors.length)); box.textContent = errors.join("\\n"); }
  }
  window.__reportErrors = errors;
  window.__recordReportError = record;
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target !== window && target.tagName) {
      record("failed to load " + target.tagName.toLowerCase() + " " + (target.getAttribute("data-chart") || ""));
    } else {
      record((event.message || "script error") + " at line " + (event.lineno || "?"));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) { record("unhandled rejection: " + event.reason); });
  var consoleError = console.error;
  console.error = function () {
    record("console.error: " + Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
})();
"""

PAGE_JS = """
(function () {
  function setScale(scale) {
    document.querySelectorAll("[data-scale-view]").forEach(function (view) {
      view.hidden = view.getAttribute("data-scale-view") !== scale;
    });
    document.querySelectorAll(".toggle button").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-scale") === scale));
    });
    document.body.setAttribute("data-equity-scale", scale);
  }
  document.querySelectorAll(".toggle button").forEach(function (button) {
    button.addEventListener("click", function () { setScale(button.getAttribute("data-scale")); });
  });
  if (document.querySelector(".toggle")) { setScale(location.hash === "#log" ? "log" : "linear"); }

  function cellValue(row, index) {
    var text = row.cells[index] ? row.cells[index].textContent.trim() : "";
    var number = parseFloat(text.replace(/[,%]/g, "").replace("∞", "Infinity").replace("–", "NaN"));
    return isNaN(number) ? text : number;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, index) {
      header.addEventListener("click", function () {
        var ascending = header.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index), y = cellValue(b, index);
          var order = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });

  window.addEventListener("load", function () {
    var charts = document.querySelectorAll("img.chart");
    var rendered = 0;
    charts.forEach(function (img) {
      if (img.complete && img.naturalWidth > 0) { rendered += 1; }
      else { window.__recordReportError("chart did not render: " + img.getAttribute("data-chart")); }
    });
    var box = document.getElementById("report-status");
    box.setAttribute("data-charts", String(charts.length));
    box.setAttribute("data-charts-rendered", String(rendered));
    box.setAttribute("data-errors", String(window.__reportErrors.length));
    box.setAttribute("data-state", window.__reportErrors.length === 0 ? "ok" : "error");
  });
})();
"""


def page(title: str, sections: Sequence[Section], scope: Scope) -> str:
    nav = "".join(f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    sample = "mixed" if scope.in_sample is None else SAMPLE_LABELS[scope.in_sample]
    scope_line = (
        f'<div class="scope" data-scope-period="{esc(scope.period)}" data-sample="{esc(sample)}">'
        f'<span class="sample {esc(sample)}">{esc(scope.label)}</span> {esc(scope.period)}</div>'
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style><script>{GUARD_JS}</script></head>"
        f'<body data-report="rlops"><header><h1>{esc(title)}</h1>{scope_line}'
        f'<div class="meta">rlops report · generated {esc(generated)}</div></header>'
        f"<nav>{nav}</nav><main>{''.join(s.html for s in sections)}</main>"
        '<div id="report-status" data-state="loading" data-errors="0"></div>'
        f"<script>{PAGE_JS}</script></body></html>\n"
    )
