"""An interval chart of one report figure as SVG, drawn by hand (a few lines and labels; no library).

One line per group over the report's buckets, a dashed line for the group's target when the figure has one,
a legend that names each line in text (never colour alone) and a ``<title>``/``aria-label`` for screen
readers. Intervals with no value (``None``, e.g. SL with no calls) leave a gap in the line. Pure: report in,
text out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from cti.reports.errors import ReportInputError
from cti.reports.report import TOTAL, Report

__all__ = ["CHART_FIGURES", "render_svg"]

# figure -> (axis label, percentage?)
CHART_FIGURES: dict[str, tuple[str, bool]] = {
    "service_level": ("Service level", True), "answer_rate": ("Answer rate", True),
    "abandon_rate": ("Abandon rate", True), "asa_s": ("ASA (s)", False), "aht_s": ("AHT (s)", False),
    "offered": ("Offered", False), "answered": ("Answered", False), "abandoned": ("Abandoned", False),
    "longest_wait_s": ("Longest wait (s)", False), "occupancy": ("Occupancy", True),
    "utilisation": ("Utilisation", True), "transfer_rate": ("Transfer rate", True),
}
_PALETTE = ("#1d70b8", "#d4351c", "#00703c", "#f47738", "#4c2c92", "#28a197", "#b58840", "#5694ca")
_W, _H = 760, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 170, 36, 56


def _fmt(value: float, pct: bool) -> str:
    return f"{value * 100:.0f}%" if pct else f"{value:g}"


def render_svg(report: Report, figure: str, groups: Sequence[str] = ()) -> str:
    """The chart of ``figure`` for ``groups`` (every group of the report when empty, at most 8).

    Raises:
        ReportInputError: an unknown figure or group, or more than 8 groups.
    """
    if figure not in CHART_FIGURES:
        raise ReportInputError("figure", f"figure must be one of {', '.join(CHART_FIGURES)}, got {figure!r}")
    label, pct = CHART_FIGURES[figure]
    known = list(dict.fromkeys(row["group"] for row in report.rows))
    chosen = list(groups) or known
    unknown = [g for g in chosen if g not in known]
    if unknown:
        raise ReportInputError("group", f"no such group in the report: {', '.join(unknown)}")
    if len(chosen) > len(_PALETTE):
        raise ReportInputError("group", f"at most {len(_PALETTE)} groups per chart; pick some with group=")
    series: dict[str, list[tuple[str, float | None]]] = {g: [] for g in chosen}
    targets: dict[str, float] = {}
    for row in report.rows:
        if row["group"] not in series:
            continue
        if row["interval"] == TOTAL:
            gap: dict[str, Any] | None = row["targets"].get(figure)
            if gap is not None:
                targets[row["group"]] = float(gap["target"])
            continue
        value = row["figures"].get(figure)
        series[row["group"]].append((row["interval"], None if value is None else float(value)))
    labels = next(iter(series.values()), [])
    n = max(len(labels), 1)
    values = [v for points in series.values() for _, v in points if v is not None] + list(targets.values())
    top = 1.0 if pct else max(values, default=1.0) * 1.1 or 1.0
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return _TOP + plot_h * (1 - min(max(v / top, 0.0), 1.0))

    title = f"{label} per interval, {report.spec.period.value}, {report.to_json()['from']} to {report.to_json()['to']}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
             f'role="img" aria-label={quoteattr(title)} font-family="sans-serif" font-size="12">',
             f"<title>{escape(title)}</title>",
             f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#ffffff"/>',
             f'<text x="{_LEFT}" y="20" font-size="14" font-weight="bold">{escape(label)}</text>']
    for k in range(5):
        v = top * k / 4
        yy = y(v)
        parts.append(f'<line x1="{_LEFT}" y1="{yy:.1f}" x2="{_LEFT + plot_w}" y2="{yy:.1f}" stroke="#dddddd"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{_fmt(v, pct)}</text>')
    step = max(1, n // 8)
    for i, (text, _) in enumerate(labels):
        if i % step == 0:
            short = text[11:16] if len(text) > 10 else text  # HH:MM of an interval, the date of a day
            parts.append(f'<text x="{x(i):.1f}" y="{_TOP + plot_h + 18}" text-anchor="middle">{escape(short)}</text>')
    for index, (group, points) in enumerate(series.items()):
        colour = _PALETTE[index]
        runs: list[list[str]] = [[]]
        for i, (_, point) in enumerate(points):
            if point is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(point):.1f}")
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(point):.1f}" r="3" fill="{colour}"/>')
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
        if group in targets:
            ty = y(targets[group])
            parts.append(f'<line x1="{_LEFT}" y1="{ty:.1f}" x2="{_LEFT + plot_w}" y2="{ty:.1f}" stroke="{colour}" '
                         f'stroke-dasharray="6 4"/>')
        ly = _TOP + 8 + index * 34
        lx = _LEFT + plot_w + 14
        parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 18}" y2="{ly}" stroke="{colour}" stroke-width="3"/>')
        parts.append(f'<text x="{lx + 24}" y="{ly + 4}">{escape(group)}</text>')
        if group in targets:
            parts.append(f'<line x1="{lx}" y1="{ly + 14}" x2="{lx + 18}" y2="{ly + 14}" stroke="{colour}" '
                         f'stroke-dasharray="4 3"/>')
            parts.append(f'<text x="{lx + 24}" y="{ly + 18}" fill="#505a5f">target {_fmt(targets[group], pct)}</text>')
    parts.append(f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" '
                 f'stroke="#0b0c0c"/>')
    parts.append("</svg>")
    return "\n".join(parts)
