"""The usage page's charts, drawn on the server as inline SVG by pygal.

No JavaScript and nothing fetched: pygal's tooltip script (a CDN link by
default) is switched off, the config script it embeds is dropped, and its
stylesheets are inlined into the SVG, so the charts render offline and in any
browser. Each point carries an SVG `<title>`, which browsers show on hover;
exact numbers are also in the tables the page shows under each chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import pygal
from flask_babel import gettext as _
from markupsafe import Markup
from pygal.style import Style

from webapp.usage.models import UsageKind
from webapp.usage.services import UsagePoint

TICKS = 5
# Major y guides are drawn as the quota line; without a list pygal picks some itself.
NO_MAJOR_GUIDE = [-1]
# Bootstrap's palette: primary, teal, orange for the kinds; purple and red for the lines.
KIND_COLORS = ("#0d6efd", "#20c997", "#fd7e14")
TOTAL_COLOR = "#6f42c1"
QUOTA_COLOR = "#dc3545"
STYLE_OPTIONS = {
    "background": "transparent",
    "plot_background": "transparent",
    "font_family": "system-ui, -apple-system, 'Segoe UI', 'PingFang SC', "
    "'Microsoft YaHei', 'WenQuanYi Micro Hei', sans-serif",
    "label_font_size": 13,
    "major_label_font_size": 13,
    "legend_font_size": 14,
    "guide_stroke_color": "#dee2e6",
    "major_guide_stroke_color": QUOTA_COLOR,
    "major_guide_stroke_dasharray": "6,4",
}
COMMON = {
    "js": [],  # the default is a script on a CDN
    "disable_xml_declaration": True,
    "width": 1000,
    "height": 380,
    "legend_at_bottom": True,
    "truncate_legend": -1,
    "include_x_axis": True,
    "value_formatter": lambda value: f"{value:,.0f}",
    "show_minor_y_labels": True,
}


def _local_name(node: Any) -> str:
    tag = node.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _finish_svg(caption: str, series_titles: list[str]) -> Callable[[Any], Any]:
    """An xml filter: no script, the caption as the SVG's title, a hover title per point."""

    def finish(root: Any) -> Any:
        for parent in list(root.iter()):
            for child in list(parent):
                if _local_name(child) == "script":
                    parent.remove(child)
                elif _local_name(child) == "title" and parent is root:
                    child.text = caption
        for series in root.iter():
            classes = (series.get("class") or "").split()
            if _local_name(series) != "g" or "series" not in classes:
                continue
            index = next(int(c[6:]) for c in classes if c.startswith("serie-"))
            for point in series:
                descs = {
                    (d.get("class") or "").partition(" ")[0]: d.text
                    for d in point
                    if _local_name(d) == "desc"
                }
                if "value" in descs:
                    title = point.makeelement("title", {})
                    label = descs.get("x_label")
                    title.text = (
                        f"{series_titles[index]}"
                        + (f" · {label}" if label else "")
                        + f": {descs['value']}"
                    )
                    point.insert(0, title)
        return root

    return finish


def render_chart(chart: Any, caption: str) -> Markup:
    """The chart as inline SVG, finished by `_finish_svg` (also used by the analytics page)."""
    titles = [str(options["title"]) for _values, options in chart.raw_series]
    return Markup(chart.render(is_unicode=True, xml_filters=[_finish_svg(caption, titles)]))


def kind_labels() -> dict[str, str]:
    return {
        UsageKind.MESSAGE.value: _("Messages"),
        UsageKind.IMAGE.value: _("Images"),
        UsageKind.VOICE.value: _("Voice"),
    }


def nice_step(maximum: int, ticks: int = TICKS) -> int:
    """A round tick step (1, 2 or 5 times a power of ten) so that `ticks` steps reach `maximum`."""
    raw = max(maximum, 1) / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if raw <= m * magnitude)
    return max(math.ceil(step), 1)


def month_to_date(points: Sequence[UsagePoint]) -> list[int]:
    """Running totals that start again on the first of each month (the quota's period)."""
    totals, running, month = [], 0, None
    for point in points:
        if (point.period.year, point.period.month) != month:
            running, month = 0, (point.period.year, point.period.month)
        running += point.total
        totals.append(running)
    return totals


def daily_chart(points: Sequence[UsagePoint], since: date, quota: int | None) -> Markup:
    """Per-kind daily usage (left axis) with the month-to-date total and the quota (right axis).

    `points` may start before `since` (at the start of its month) so the running total
    is right; only days from `since` on are drawn.
    """
    running = month_to_date(points)
    shown = [i for i, point in enumerate(points) if point.period >= since]
    days = [points[i] for i in shown]
    totals = [running[i] for i in shown]
    left = nice_step(max((p.by_kind[k] for p in days for k in p.by_kind), default=0))
    right = nice_step(max([*totals, quota or 0]))
    chart = pygal.Line(
        style=Style(colors=(*KIND_COLORS, TOTAL_COLOR, QUOTA_COLOR), **STYLE_OPTIONS),
        range=(0, left * TICKS),
        secondary_range=(0, right * TICKS),
        y_labels=[left * i for i in range(TICKS + 1)],
        y_labels_major=NO_MAJOR_GUIDE,
        x_label_rotation=-45,
        x_labels_major_every=5,
        show_minor_x_labels=False,
        legend_at_bottom_columns=3,
        dots_size=2.5,
        **COMMON,
    )
    chart.x_labels = [f"{p.period:%m-%d}" for p in days]
    for kind, label in kind_labels().items():
        chart.add(label, [p.by_kind[kind] for p in days])
    chart.add(_("Month to date (right axis)"), totals, secondary=True)
    if quota is not None:
        chart.add(
            _("Monthly quota (right axis)"),
            [quota] * len(days),
            secondary=True,
            show_dots=False,
            stroke_style={"width": 2, "dasharray": "8,5"},
        )
    return render_chart(chart, _("Messages per day, last 30 days"))


def monthly_chart(points: Sequence[UsagePoint], quota: int | None) -> Markup:
    """Per-kind monthly usage, stacked, with the quota as a dashed red guide."""
    step = nice_step(max([*(p.total for p in points), quota or 0]))
    y_labels: list[object] = [step * i for i in range(TICKS + 1) if step * i != quota]
    if quota is not None:
        y_labels.append({"label": _("Quota %(n)s", n=f"{quota:,}"), "value": quota})
    chart = pygal.StackedBar(
        style=Style(colors=KIND_COLORS, **STYLE_OPTIONS),
        range=(0, step * TICKS),
        y_labels=y_labels,
        y_labels_major=[quota] if quota is not None else NO_MAJOR_GUIDE,
        legend_at_bottom_columns=3,
        **COMMON,
    )
    chart.x_labels = [f"{p.period:%Y-%m}" for p in points]
    for kind, label in kind_labels().items():
        chart.add(label, [p.by_kind[kind] for p in points])
    return render_chart(chart, _("Messages per month, last 12 months"))
