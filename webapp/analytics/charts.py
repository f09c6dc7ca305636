"""The analytics page's charts: inline SVG by pygal, in the usage page's style."""

from __future__ import annotations

import pygal
from flask_babel import gettext as _
from markupsafe import Markup
from pygal.style import Style

from webapp.analytics.services import DayCount
from webapp.usage.charts import (
    COMMON,
    KIND_COLORS,
    NO_MAJOR_GUIDE,
    STYLE_OPTIONS,
    TICKS,
    nice_step,
    render_chart,
)


def _axis(maximum: int) -> dict[str, object]:
    step = nice_step(maximum)
    return {
        "range": (0, step * TICKS),
        "y_labels": [step * i for i in range(TICKS + 1)],
        "y_labels_major": NO_MAJOR_GUIDE,
    }


def daily_chart(days: list[DayCount]) -> Markup:
    """Customer messages per day, and those the bot answered."""
    chart = pygal.Line(
        style=Style(colors=KIND_COLORS, **STYLE_OPTIONS),
        x_label_rotation=-45,
        x_labels_major_every=max(len(days) // 6, 1),
        show_minor_x_labels=False,
        legend_at_bottom_columns=2,
        dots_size=2.5,
        **_axis(max((day.messages for day in days), default=0)),
        **COMMON,
    )
    chart.x_labels = [f"{day.day:%m-%d}" for day in days]
    chart.add(_("Customer messages"), [day.messages for day in days])
    chart.add(_("Answered by the bot"), [day.answered for day in days])
    return render_chart(chart, _("Customer messages per day"))


def hours_chart(hours: list[int]) -> Markup:
    """Customer messages by hour of day (Beijing time)."""
    chart = pygal.Bar(
        style=Style(colors=KIND_COLORS, **STYLE_OPTIONS),
        show_legend=False,
        **_axis(max(hours, default=0)),
        **COMMON,
    )
    chart.x_labels = [f"{hour:02d}" for hour in range(len(hours))]
    chart.add(_("Customer messages"), hours)
    return render_chart(chart, _("Customer messages by hour of day"))


def rates_chart(days: list[DayCount]) -> Markup:
    """Resolution, pick and handoff rates per day, in percent (a gap where there is none)."""
    chart = pygal.Line(
        style=Style(colors=(*KIND_COLORS[1:], KIND_COLORS[0]), **STYLE_OPTIONS),
        x_label_rotation=-45,
        x_labels_major_every=max(len(days) // 6, 1),
        show_minor_x_labels=False,
        legend_at_bottom_columns=3,
        dots_size=2.5,
        range=(0, 100),
        y_labels=[20 * i for i in range(TICKS + 1)],
        y_labels_major=NO_MAJOR_GUIDE,
        **{**COMMON, "value_formatter": lambda value: f"{value:.0f}%"},
    )
    chart.x_labels = [f"{day.day:%m-%d}" for day in days]

    def percent(rates: list[float | None]) -> list[float | None]:
        return [None if rate is None else rate * 100 for rate in rates]

    chart.add(_("Resolution rate"), percent([day.resolution_rate for day in days]))
    chart.add(_("Suggestion pick rate"), percent([day.pick_rate for day in days]))
    chart.add(_("Handoff rate"), percent([day.handoff_rate for day in days]))
    return render_chart(chart, _("Rates per day"))
