"""Charts drawn by the server with pygal, shown as images: no script, no CDN, the CSP stays strict.

pygal renders an SVG document with its own ``<style>`` and a small ``<script>``; inlined
into a page, both would break ``style-src 'self'``/``script-src 'self'``. So a chart is
embedded as an ``<img>`` with a ``data:`` URI (``img-src`` allows ``data:``): an SVG image
runs no script and its styles stay inside it. Every chart has an ``alt`` text, and the
pages put the numbers behind it in a table next to it.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pygal
from pygal.style import Style

__all__ = [
    "PALETTE",
    "ChartImage",
    "axis_ticks",
    "chart_config",
    "duration_axis",
    "duration_label",
    "render",
]

#: Series colours (colour-blind safe order; the first two are canary and stable).
PALETTE = ("#dc2626", "#2563eb", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#64748b", "#db2777")

STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#334155",
    foreground_strong="#0f172a",
    foreground_subtle="#94a3b8",
    font_family="system-ui, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
    title_font_size=14,
    value_font_size=11,
    colors=PALETTE,
    opacity=".7",
    opacity_hover=".9",
    transition="none",
)

_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


@dataclass(frozen=True)
class ChartImage:
    """A rendered chart: the ``data:`` URI for ``<img src>``, its text alternative and size."""

    uri: str
    alt: str
    width: int
    height: int
    svg: str

    def __str__(self) -> str:
        return self.uri


def styled(**overrides: Any) -> Style:
    """The shared style with some of its values changed (``colors=...``)."""
    values = {k: getattr(STYLE, k) for k in ("background", "plot_background", "foreground",
              "foreground_strong", "foreground_subtle", "font_family", "label_font_size",
              "major_label_font_size", "legend_font_size", "title_font_size", "value_font_size",
              "colors", "opacity", "opacity_hover", "transition")}  # fmt: skip
    values.update(overrides)
    return Style(**values)


def chart_config(**options: Any) -> dict[str, Any]:
    """The options every chart shares (no script, no XML declaration, our style), plus ``options``."""
    base: dict[str, Any] = {
        "js": [],
        "disable_xml_declaration": True,
        "style": STYLE,
        "width": 720,
        "height": 260,
        "margin": 8,
        "legend_at_bottom": True,
        "truncate_legend": 40,
        "show_x_guides": False,
        "no_data_text": "No data",
    }
    base.update(options)
    return base


def render(chart: Any, *, alt: str) -> ChartImage:
    """Render a pygal chart to a ``data:`` URI image (its ``<script>`` dropped: images run none).

    Give every chart an explicit ``range``: pygal 3.1.3's own scale loops forever when all
    values are equal (a rate that stays 0).
    """
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return ChartImage(
        uri=f"data:image/svg+xml;base64,{encoded}",
        alt=alt,
        width=int(chart.config.width),
        height=int(chart.config.height),
        svg=svg,
    )


def _nice_step(span: float, count: int) -> float:
    """A step of 1, 2 or 5 x 10^k so that about ``count`` steps cover ``span``."""
    raw = span / max(count, 1)
    if raw <= 0:
        return 1.0
    scale = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * scale:
            return float(m * scale)
    return float(10 * scale)


def axis_ticks(top: float, count: int = 4) -> list[float]:
    """Evenly spaced, distinct, readable tick values from 0 to at least ``top``."""
    top = top if top > 0 else 1.0
    step = _nice_step(top, count)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(n + 1)]


def _decimals(step: float) -> int:
    """Digits after the point that tell ticks ``step`` apart."""
    if step <= 0:
        return 0
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _unit(hours: float) -> tuple[float, str]:
    """The unit (its length in hours, its name) that reads well for ``hours``."""
    scale = abs(hours)
    if scale < 1:
        return 1 / 60, "min"
    if scale < 48:
        return 1.0, "h"
    return 24.0, "d"


def duration_axis(top_hours: float, count: int = 4) -> list[tuple[float, str]]:
    """Ticks of a duration axis from 0 to at least ``top_hours``: ``[(hours, label)]``.

    The unit fits the top (minutes under an hour, hours under two days, else days), the
    ticks are round numbers in that unit and every label differs from the others: an axis
    to 0.2 h reads "0 min, 5 min, 10 min, 15 min", never "0.1 h" twice.
    """
    unit_hours, unit = _unit(top_hours if top_hours > 0 else 1.0)
    ticks = axis_ticks(top_hours / unit_hours, count)
    digits = _decimals(ticks[1] - ticks[0]) if len(ticks) > 1 else 0
    return [(t * unit_hours, f"{t:.{digits}f} {unit}") for t in ticks]


def duration_label(hours: float) -> str:
    """One duration as text in the unit that fits it ("12 min", "5.5 h", "3.2 d")."""
    unit_hours, unit = _unit(hours)
    digits = 0 if unit == "min" else 1
    return f"{hours / unit_hours:.{digits}f} {unit}"


def values_text(labels: Sequence[str], values: Sequence[float | None], fmt: str = "{:g}") -> str:
    """``label value, label value`` for an alt text (None as "no data")."""
    return ", ".join(
        f"{label} {'no data' if v is None else fmt.format(v)}"
        for label, v in zip(labels, values, strict=False)
    )


def bar(**options: Any) -> Any:
    return pygal.Bar(**chart_config(**options))


def line(**options: Any) -> Any:
    return pygal.Line(**chart_config(**options))


def stacked_area(**options: Any) -> Any:
    return pygal.StackedLine(**chart_config(fill=True, show_dots=False, **options))
