"""The report's plots, drawn as inline SVG text: histograms, bars, a forest plot, a matrix.

Drawn by hand rather than with matplotlib because a report is written at the end of every
run: measured here, importing pyplot took 2.9-3.5 s and each histogram 0.2-0.46 s and
10.8 KB of SVG (text kept as text), against well under a millisecond and 1-3 KB for these.
The output is a pure function of the input (coordinates rounded to 0.1 px, no ids, no
dates), so a report written twice is the same bytes. Colours and fonts come from the
page's stylesheet through class names; every mark carries a ``<title>`` with its numbers,
which a browser shows on hover and a test can read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from harness.numbers import ci, number, signed
from harness.wording import plural

__all__ = [
    "Series",
    "ForestRow",
    "bars",
    "forest",
    "histogram",
    "matrix",
]

MAX_BINS = 30
VERDICT_CLASS = {
    "better": "v-better",
    "worse": "v-worse",
    "no detectable difference": "v-same",
    "inconclusive": "v-unsure",
    "changed": "v-changed",
}


@dataclass(frozen=True)
class Series:
    """One run's values of one metric: what a histogram draws, with its mean's interval."""

    name: str
    values: Sequence[float]
    mean: float | None = None
    low: float | None = None
    high: float | None = None


def _c(value: float) -> str:
    """A coordinate: one decimal, no trailing zeros."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _svg(kind: str, width: float, height: float, label: str, body: list[str]) -> str:
    return (
        f'<svg class="plot {kind}" data-kind="{kind}" viewBox="0 0 {_c(width)} {_c(height)}" '
        f'width="{_c(width)}" height="{_c(height)}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, cls: str = "tick", anchor: str = "middle") -> str:
    return (
        f'<text x="{_c(x)}" y="{_c(y)}" class="{cls}" text-anchor="{anchor}">{escape(text)}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, cls: str, title: str) -> str:
    return (
        f'<rect x="{_c(x)}" y="{_c(y)}" width="{_c(max(w, 0.0))}" height="{_c(max(h, 0.0))}" '
        f'class="{cls}"><title>{escape(title)}</title></rect>'
    )


def histogram(series: Sequence[Series], label: str) -> str:
    """Counts of each series' values in shared bins (numpy's "auto" rule, at most
    ``MAX_BINS``), and above them each series' mean with its 95% interval."""
    import numpy as np

    arrays = [np.asarray(s.values, dtype=np.float64) for s in series]
    everything = np.concatenate(arrays) if arrays else np.zeros(0)
    if everything.size == 0:
        return _svg("histogram", 300, 40, label, [_text(150, 24, "no scores", "note")])
    low, high = float(everything.min()), float(everything.max())
    if low == high:  # one value everywhere: one bin around it
        pad = abs(low) * 0.05 or 0.5
        edges = np.array([low - pad, high + pad])
    else:
        edges = np.histogram_bin_edges(everything, bins="auto")
        if len(edges) - 1 > MAX_BINS:
            edges = np.histogram_bin_edges(everything, bins=MAX_BINS)
    counts = [np.histogram(a, bins=edges)[0] for a in arrays]
    width, height, left, right, top = 300.0, 150.0, 34.0, 8.0, 8.0 + 7 * len(series)
    bottom = 124.0
    peak = max(int(c.max()) for c in counts) or 1
    span = float(edges[-1] - edges[0])

    def x(value: float) -> float:
        return left + (value - float(edges[0])) / span * (width - left - right)

    body = [
        f'<line class="ax" x1="{_c(left)}" y1="{_c(bottom)}" x2="{_c(width - right)}" '
        f'y2="{_c(bottom)}"/>'
    ]
    for i, (s, count) in enumerate(zip(series, counts, strict=True)):
        for j, n in enumerate(count):
            if not n:
                continue
            x0, x1 = x(float(edges[j])), x(float(edges[j + 1]))
            h = n / peak * (bottom - top)
            closing = "]" if j == len(count) - 1 else ")"
            where = f"[{number(edges[j])}, {number(edges[j + 1])}{closing}"
            title = f"{s.name}: {plural(n, 'row')} in {where}"
            body.append(_rect(x0, bottom - h, x1 - x0, h, f"bar s{i}", title))
        if s.mean is not None and math.isfinite(s.mean):
            y = 6.0 + 7 * i
            lo = s.low if s.low is not None and math.isfinite(s.low) else s.mean
            hi = s.high if s.high is not None and math.isfinite(s.high) else s.mean
            title = f"{s.name}: mean {number(s.mean)}, 95% CI {ci(lo, hi)}"
            body.append(
                f'<g class="mci s{i}"><title>{escape(title)}</title>'
                f'<line x1="{_c(x(lo))}" y1="{_c(y)}" x2="{_c(x(hi))}" y2="{_c(y)}"/>'
                f'<circle cx="{_c(x(s.mean))}" cy="{_c(y)}" r="2.5"/></g>'
            )
    body += [
        _text(left, bottom + 13, number(float(edges[0]), 3), anchor="start"),
        _text(width - right, bottom + 13, number(float(edges[-1]), 3), anchor="end"),
        _text(left - 4, top + 4, str(peak), anchor="end"),
        _text(left - 4, bottom, "0", anchor="end"),
        _text((left + width - right) / 2, bottom + 24, "rows per bin", "note"),
    ]
    return _svg("histogram" + (" multi" if len(series) > 1 else ""), width, height, label, body)


def bars(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    label: str,
    unit: str = "rows",
) -> str:
    """Grouped bars: one group per category (a judge's answers, 0/1, a small scale), one
    bar per series, each with its count above it."""
    n_series = max(len(series), 1)
    group = n_series * 16 + 12
    left, top, bottom = 30.0, 14.0, 110.0
    width = max(160.0, left + 8 + group * len(categories))
    height = 140.0
    peak = max((max(counts, default=0) for _, counts in series), default=0) or 1
    body = [
        f'<line class="ax" x1="{_c(left)}" y1="{_c(bottom)}" x2="{_c(width - 8)}" '
        f'y2="{_c(bottom)}"/>'
    ]
    for k, category in enumerate(categories):
        x0 = left + 6 + k * group
        for i, (name, counts) in enumerate(series):
            n = counts[k]
            h = n / peak * (bottom - top)
            bx = x0 + i * 16
            total = sum(counts)
            share = f" ({n / total:.0%})" if total else ""
            title = f"{name}: {category}: {plural(n, unit[:-1], unit)}{share}"  # "1 answer"
            body.append(_rect(bx, bottom - h, 14, h, f"bar s{i}", title))
            body.append(_text(bx + 7, bottom - h - 3, str(n), "count"))
        shown = category if len(category) <= 10 else category[:9] + "…"
        body.append(_text(x0 + (group - 12) / 2, bottom + 13, shown))
    body.append(_text((left + width - 8) / 2, bottom + 26, unit, "note"))
    return _svg("bars" + (" multi" if len(series) > 1 else ""), width, height, label, body)


@dataclass(frozen=True)
class ForestRow:
    """One metric's paired change, as ``harness.compare`` found it."""

    metric: str
    diff: float
    low: float
    high: float
    margin: float
    direction: int  # +1 higher is better, -1 lower is better, 0 neither
    verdict: str


def forest(rows: Sequence[ForestRow], label: str) -> str:
    """Each metric's change (candidate - base) with its 95% interval, in units of the
    metric's margin (the shaded band: the smallest difference that matters), turned so
    that right is better (a metric where lower is better is mirrored)."""
    left, plot_w, row_h, top = 170.0, 320.0, 26.0, 8.0
    num_x = left + plot_w + 12  # the change and its interval, then the verdict
    verdict_x = num_x + 236
    width = verdict_x + 176
    height = top + row_h * len(rows) + 34
    finite = [r for r in rows if math.isfinite(r.low) and math.isfinite(r.high)]
    reach = max(
        [2.0, *(max(abs(r.low), abs(r.high)) / _unit(r) * 1.15 for r in finite)],
    )
    reach = min(reach, 10.0)  # beyond ten margins, an interval is drawn clipped
    center = left + plot_w / 2

    def x(value: float, row: ForestRow) -> float:
        turned = value * (row.direction or 1) / _unit(row)
        return center + max(-reach, min(reach, turned)) / reach * (plot_w / 2 - 6)

    bottom = top + row_h * len(rows)
    body = []
    band = plot_w / 2 - 6
    body.append(
        f'<rect class="band" x="{_c(center - band / reach)}" y="{_c(top)}" '
        f'width="{_c(2 * band / reach)}" height="{_c(bottom - top)}"/>'
    )
    body.append(
        f'<line class="zero" x1="{_c(center)}" y1="{_c(top)}" x2="{_c(center)}" y2="{_c(bottom)}"/>'
    )
    for i, row in enumerate(rows):
        y = top + row_h * i + row_h / 2
        arrow = {1: " ↑", -1: " ↓"}.get(row.direction, "")
        cls = VERDICT_CLASS.get(row.verdict, "v-unsure")
        summary = f"{signed(row.diff)} {ci(row.low, row.high)}"
        title = f"{row.metric}: change {summary}, margin ±{number(row.margin, 3)}: {row.verdict}"
        body.append(f'<g class="frow {cls}" data-metric="{escape(row.metric)}">')
        body.append(f"<title>{escape(title)}</title>")
        body.append(_text(left - 8, y + 4, row.metric + arrow, "metric", "end"))
        if math.isfinite(row.low) and math.isfinite(row.high):
            x0, x1 = sorted((x(row.low, row), x(row.high, row)))
            body.append(
                f'<line class="whisker" x1="{_c(x0)}" y1="{_c(y)}" x2="{_c(x1)}" y2="{_c(y)}"/>'
            )
            for end, way in ((x0, -1), (x1, 1)):  # an interval that reaches past the axis
                if abs(end - center) >= plot_w / 2 - 6.05:
                    tip = end + way * 6
                    body.append(
                        f'<path class="clip" d="M{_c(tip)} {_c(y)}L{_c(end)} {_c(y - 4)}'
                        f'L{_c(end)} {_c(y + 4)}Z"/>'
                    )
        if math.isfinite(row.diff):
            body.append(f'<circle class="pt" cx="{_c(x(row.diff, row))}" cy="{_c(y)}" r="4"/>')
        body.append(_text(num_x, y + 4, summary, "num", "start"))
        body.append(_text(verdict_x, y + 4, row.verdict, "verdict", "start"))
        body.append("</g>")
    body += [
        _text(center - band, bottom + 14, f"−{reach:.3g}", anchor="start"),
        _text(center, bottom + 14, "0"),
        _text(center + band, bottom + 14, f"+{reach:.3g}", anchor="end"),
        _text(center, bottom + 28, "← worse   change in margins   better →", "note"),
        _text(num_x, bottom + 14, "change [95% CI]", "note", "start"),
    ]
    return _svg("forest", width, height, label, body)


def _unit(row: ForestRow) -> float:
    """The margin; for a margin of zero (``--margin 0``), the row's own reach over 1.5."""
    if row.margin > 0:
        return row.margin
    reach = max((abs(v) for v in (row.low, row.high, row.diff) if math.isfinite(v)), default=0)
    return reach / 1.5 if reach > 0 else 1.0


def matrix(labels: Sequence[str], counts: dict[str, dict[str, int]], label: str) -> str:
    """A confusion matrix: human labels down, judge labels across, each cell's count with
    its shade; the diagonal (agreement) outlined."""
    n = len(labels)
    cell = 40.0 if n <= 6 else max(14.0, 240.0 / n)
    left, top = 74.0, 40.0
    width, height = left + cell * n + 8, top + cell * n + 8
    peak = max((counts.get(h, {}).get(j, 0) for h in labels for j in labels), default=0) or 1
    body = [_text(left + cell * n / 2, 12, "judge →", "note")]
    for k, name in enumerate(labels):
        shown = name if len(name) <= 8 else name[:7] + "…"
        body.append(_text(left + cell * k + cell / 2, top - 8, shown))
        body.append(_text(left - 6, top + cell * k + cell / 2 + 4, shown, "tick", "end"))
    body.append(_text(12, top - 8, "human ↓", "note", "start"))
    for r, human in enumerate(labels):
        for k, judge in enumerate(labels):
            n_cell = counts.get(human, {}).get(judge, 0)
            shade = f"{n_cell / peak:.2f}"
            cls = "cell diag" if r == k else "cell"
            title = f"human {human}, judge {judge}: {plural(n_cell, 'row')}"
            x0, y0 = left + cell * k, top + cell * r
            body.append(
                f'<rect x="{_c(x0)}" y="{_c(y0)}" width="{_c(cell)}" height="{_c(cell)}" '
                f'class="{cls}" fill-opacity="{shade}"><title>{escape(title)}</title></rect>'
            )
            if cell >= 20:
                ink = "count dark" if n_cell / peak > 0.55 else "count"
                body.append(_text(x0 + cell / 2, y0 + cell / 2 + 4, str(n_cell), ink))
    return _svg("matrix", width, height, label, body)
