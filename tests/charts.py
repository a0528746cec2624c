"""Reading the charts the pages embed (pygal SVG as ``data:`` URI images) back in tests."""

from __future__ import annotations

import base64
import re

_IMG = r'<img[^>]*id="{id}"[^>]*src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"'
BAR = 'class="rect reactive tooltip-trigger"'


def chart_svg(html: str, img_id: str) -> str:
    """The SVG of the chart image ``<img id=img_id>`` in ``html``."""
    match = re.search(_IMG.format(id=re.escape(img_id)), html)
    assert match is not None, f"no chart image #{img_id}"
    return base64.b64decode(match.group(1)).decode("utf-8")


def bars(svg: str) -> list[float]:
    """The heights of the bars of a pygal bar chart, in drawing order."""
    return [float(h) for h in re.findall(r'<rect[^>]*height="([0-9.]+)"[^>]*' + BAR, svg)]


def y_labels(svg: str) -> list[str]:
    """The labels of a pygal chart's y axis guides, in drawing order (ticks, then majors)."""
    axis = svg.split('class="axis y', 1)[1].split('class="series', 1)[0]
    return re.findall(r"<text[^>]*>([^<]+)</text>", axis)
