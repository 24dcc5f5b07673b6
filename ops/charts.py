"""Charts rendered on the server as inline SVG: nothing to load, nothing from another host."""

from __future__ import annotations

from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 400, 160
LEFT, RIGHT, TOP, BOTTOM = 56, 10, 10, 24


def _number(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def line_chart(
    points: list[tuple[datetime, float | None]], *, objective: float, unit: str, start: datetime, end: datetime,
    label: str,
) -> SafeString:
    """The values over time against the objective (dashed); a gap where a bin had no events."""
    values = [value for _, value in points if value is not None]
    top = max([objective * 1.5, *(value * 1.1 for value in values)]) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = (end - start).total_seconds() or 1.0
    clock = "%H:%M" if span <= 12 * 3600 else "%b %d %H:%M"  # a day's window: which day, too

    def x(at: datetime) -> float:
        return LEFT + plot_w * (at - start).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - min(value, top) / top)

    runs: list[list[str]] = [[]]
    for at, value in points:
        if value is None:
            runs.append([])
        else:
            runs[-1].append(f"{x(at):.1f},{y(value):.1f}")
    lines = format_html_join(
        "", '<polyline class="chart-line" points="{}"/>', ((" ".join(run),) for run in runs if len(run) > 1)
    )
    dots = format_html_join(
        "", '<circle class="chart-dot" cx="{}" cy="{}" r="2.5"/>',
        ((point.split(",")[0], point.split(",")[1]) for run in runs if len(run) == 1 for point in run),
    )
    grid = format_html_join(
        "",
        '<line class="chart-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="chart-axis" x="{}" y="{}" text-anchor="end">{} {}</text>',
        ((LEFT, WIDTH - RIGHT, f"{y(v):.1f}", f"{y(v):.1f}", LEFT - 4, f"{y(v) + 4:.1f}", _number(v), unit)
         for v in (0, top / 2, top)),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}">'
        "<title>{label}</title>{grid}"
        '<line class="chart-objective" x1="{left}" x2="{right}" y1="{oy}" y2="{oy}"/>'
        '<text class="chart-objective-label" x="{right}" y="{oty}" text-anchor="end">'
        "objective {objective} {unit}</text>"
        "{lines}{dots}"
        '<text class="chart-axis" x="{left}" y="{ay}">{first}</text>'
        '<text class="chart-axis" x="{right}" y="{ay}" text-anchor="end">{last}</text>'
        "</svg>",
        w=WIDTH, h=HEIGHT, label=label, grid=grid, left=LEFT, right=WIDTH - RIGHT,
        oy=f"{y(objective):.1f}", oty=f"{y(objective) - 4:.1f}", objective=_number(objective), unit=unit,
        lines=lines, dots=dots, ay=HEIGHT - 6, first=f"{start:{clock}}", last=f"{end:{clock}} UTC",
    )
