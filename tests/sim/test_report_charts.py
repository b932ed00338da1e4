"""The report's charts carry readable scales: waits in s/min/h/d on the bar chart's axis, and
large counts with thousands separators rather than scientific notation."""

from __future__ import annotations

import re

import numpy as np

from aicc.sim.report import _fmt_s, svg_bars, svg_lines


def _labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end">([^<]+)</text>', svg)


def test_bar_chart_has_a_wait_scale():
    svg = svg_bars(["industry", "research"], {"fifo": [3.196e6, 100.0]}, title="p90 wait",
                   ylabel="wait", fmt=_fmt_s)
    # four gridlines up to 1.1 × the largest bar (40.7 days), labelled in days
    assert _labels(svg) == ["10.2 d", "20.3 d", "30.5 d", "40.7 d"]
    assert "<title>37.0 d</title>" in svg  # a bar's tooltip, in the same unit


def test_line_chart_counts_without_scientific_notation():
    svg = svg_lines(np.arange(10) * 86400.0, {"pending": np.arange(10) * 147.0},
                    title="queue", ylabel="jobs")
    labels = _labels(svg)
    assert "1,389" in labels and not any("e+" in x for x in labels)


def test_bar_chart_draws_a_dash_for_a_missing_value():
    # a sector with no job has no p90 wait: no bar (a bar of 0 s would read as "no wait")
    svg = svg_bars(["industry", "research"], {"fifo": [None, 100.0], "fairshare": [
        float("nan"), 50.0]}, title="p90 wait", ylabel="wait", fmt=_fmt_s)
    assert svg.count("<rect") == 2 + 2  # two bars (research), two legend keys
    assert svg.count("–<title>no value</title>") == 2
    assert "<title>0 s</title>" not in svg
