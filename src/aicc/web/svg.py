"""Small server-side SVG charts (stacked areas, lines): the portal needs no front-end build and
no network access to a chart library. Every label is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

import numpy as np

SECTOR_COLORS = {"industry": "#d9822b", "research": "#2b7bd9", "public": "#3aa655"}
FALLBACK_COLORS = ("#8e44ad", "#c0392b", "#16a085", "#7f8c8d")


def color_for(name: str, i: int) -> str:
    return SECTOR_COLORS.get(name, FALLBACK_COLORS[i % len(FALLBACK_COLORS)])


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** np.floor(np.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return float(m * exp)
    return float(10 * exp)


def _time_label(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


class _Frame:
    def __init__(self, times: np.ndarray, y_max: float, width: int, height: int) -> None:
        self.left, self.right, self.top, self.bottom = 56, 24, 12, 28
        self.w, self.h = width, height
        self.t0, self.t1 = float(times[0]), float(times[-1])
        self.y_max = y_max

    def x(self, t: float) -> float:
        span = (self.t1 - self.t0) or 1.0
        return self.left + (t - self.t0) / span * (self.w - self.left - self.right)

    def y(self, v: float) -> float:
        return self.top + (1 - v / self.y_max) * (self.h - self.top - self.bottom)

    def axes(self, y_fmt: str) -> list[str]:
        # Five steps when the top is 2.5 or 5 × 10^k (steps of 0.5 or 1 × 10^k), else four.
        mantissa = self.y_max / 10 ** np.floor(np.log10(self.y_max))
        ticks = 5 if round(mantissa, 6) in (2.5, 5.0) else 4
        out = []
        for k in range(ticks + 1):
            v = self.y_max * k / ticks
            y = self.y(v)
            out.append(f'<line x1="{self.left}" x2="{self.w - self.right}" y1="{y:.1f}" '
                       f'y2="{y:.1f}" class="grid"/>')
            out.append(f'<text x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                       f'class="tick">{escape(y_fmt.format(v))}</text>')
        for k in range(7):
            t = self.t0 + (self.t1 - self.t0) * k / 6
            x = self.x(t)
            out.append(f'<text x="{x:.1f}" y="{self.h - 8}" text-anchor="middle" '
                       f'class="tick">{_time_label(t)}</text>')
        return out


def _open(width: int, height: int, title: str, css_class: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" role="img" '
            f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet">'
            f'<title>{escape(title)}</title>')


def stacked_area(times: np.ndarray, series: dict[str, np.ndarray], *, total: float,
                 title: str, width: int = 900, height: int = 280, percent: bool = True
                 ) -> str:
    """Stacked areas of ``series`` (in order) as a share of ``total`` (or absolute)."""
    names = list(series)
    scale = 100.0 / total if (percent and total) else 1.0
    stacked = np.cumsum(np.array([series[n] * scale for n in names]), axis=0) if names else \
        np.zeros((0, len(times)))
    top = float(stacked[-1].max()) if len(names) else 0.0
    y_max = 100.0 if percent else _nice_max(top)
    f = _Frame(times, max(y_max, top), width, height)
    parts = [_open(width, height, title, "chart stacked")]
    parts += f.axes("{:.0f}%" if percent else "{:,.0f}")
    below = np.zeros(len(times))
    for i, name in enumerate(names):
        upper = stacked[i]
        pts = [f"{f.x(t):.1f},{f.y(v):.1f}" for t, v in zip(times, upper, strict=True)]
        pts += [f"{f.x(t):.1f},{f.y(v):.1f}"
                for t, v in zip(times[::-1], below[::-1], strict=True)]
        parts.append(f'<polygon points="{" ".join(pts)}" fill="{color_for(name, i)}" '
                     f'fill-opacity="0.8" data-series="{escape(name)}">'
                     f'<title>{escape(name)}</title></polygon>')
        below = upper
    parts.append("</svg>")
    return "".join(parts)


def lines(times: np.ndarray, series: dict[str, np.ndarray], *, title: str, width: int = 900,
          height: int = 200) -> str:
    """One line per series, absolute values."""
    top = max((float(v.max()) for v in series.values() if len(v)), default=0.0)
    f = _Frame(times, max(_nice_max(top), 5.0), width, height)
    parts = [_open(width, height, title, "chart lines")]
    parts += f.axes("{:,.0f}")
    for i, (name, v) in enumerate(series.items()):
        pts = " ".join(f"{f.x(t):.1f},{f.y(y):.1f}" for t, y in zip(times, v, strict=True))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color_for(name, i)}" '
                     f'stroke-width="2" data-series="{escape(name)}">'
                     f'<title>{escape(name)}</title></polyline>')
    parts.append("</svg>")
    return "".join(parts)


def legend(names: Sequence[str]) -> str:
    items = "".join(f'<span class="key"><i style="background:{color_for(n, i)}"></i>'
                    f"{escape(n)}</span>" for i, n in enumerate(names))
    return f'<div class="legend">{items}</div>'
