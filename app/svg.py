"""Charts for reports as inline SVG: they print, open offline, and need no JavaScript or image renderer."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_FONT = 'font-family="sans-serif" font-size="12"'


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering low..high."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= m * step)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(math.ceil((high - first) / step) + 1)]


def _esc(text: object) -> str:
    return html.escape(str(text))


def _opening(title: str, width: int, height: int, title_x: float) -> str:
    """The <svg> element's opening tag, labelled for screen readers, and the chart's bold title."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_esc(title)}"><text x="{title_x}" y="20" {_FONT} font-weight="bold">'
        f"{_esc(title)}</text>"
    )


def _y_grid(y: float, at: float, left: float, right: float, y_format: Callable[[float], str]) -> str:
    """One horizontal grid line across the plot with its value written at the left."""
    return (
        f'<line x1="{left}" x2="{right}" y1="{at:.1f}" y2="{at:.1f}" stroke="#e5e5e5"/>'
        f'<text x="{left - 6}" y="{at + 4:.1f}" {_FONT} text-anchor="end">{_esc(y_format(y))}</text>'
    )


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    x_label: str,
    y_format: Callable[[float], str],
    width: int = 760,
    height: int = 360,
    bands: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None,
) -> str:
    """Lines (name, xs, ys), one colour each, legend on the right; optional shaded (low, high) band per name."""
    left, right, top, bottom = 80, 210, 36, 44
    xs = [x for _, sx, _ in series for x in sx]
    ys = [y for _, _, sy in series for y in sy] + [y for lo, hi in (bands or {}).values() for y in (*lo, *hi)]
    if not xs:
        return ""
    yt = _ticks(min(0.0, min(ys)), max(ys))
    x0, x1, y0, y1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1, yt[0], yt[-1]
    sx = lambda x: left + (x - x0) / (x1 - x0) * (width - left - right)
    sy = lambda y: top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom)
    out = [_opening(title, width, height, left)]
    out += [_y_grid(y, sy(y), left, width - right, y_format) for y in yt]
    for x in _ticks(x0, x1, 6):
        if x0 <= x <= x1:
            out.append(f'<text x="{sx(x):.1f}" y="{height - bottom + 16}" {_FONT} text-anchor="middle">{x:g}</text>')
    out.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" {_FONT} text-anchor="middle">{_esc(x_label)}</text>'
    )
    for i, (name, px, py) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        if bands and name in bands:
            lo, hi = bands[name]
            poly = [f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(px, hi)] + [
                f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(reversed(px), reversed(lo))
            ]
            out.append(f'<polygon points="{" ".join(poly)}" fill="{colour}" opacity="0.15"/>')
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(px, py))
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        ly = top + 16 * i
        out.append(
            f'<line x1="{width - right + 12}" x2="{width - right + 30}" y1="{ly}" y2="{ly}" stroke="{colour}" '
            f'stroke-width="3"/><text x="{width - right + 36}" y="{ly + 4}" {_FONT}>{_esc(name[:26])}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float, float]],
    base: float,
    x_format: Callable[[float], str],
    low_label: str = "low end",
    high_label: str = "high end",
    width: int = 760,
) -> str:
    """Horizontal bars from `base` to each (name, low value, high value): a tornado, labels never cut."""
    label_w, right, top, row = 210, 40, 40, 26
    height = top + row * len(bars) + 50
    values = [base] + [v for _, lo, hi in bars for v in (lo, hi)]
    xt = _ticks(min(values), max(values), 5)
    x0, x1 = xt[0], xt[-1]
    sx = lambda x: label_w + (x - x0) / (x1 - x0) * (width - label_w - right)
    out = [_opening(title, width, height, 10)]
    for x in xt:
        out.append(
            f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top - 4}" y2="{top + row * len(bars)}" '
            f'stroke="#e5e5e5"/><text x="{sx(x):.1f}" y="{top + row * len(bars) + 16}" {_FONT} '
            f'text-anchor="middle">{_esc(x_format(x))}</text>'
        )
    for i, (name, lo, hi) in enumerate(bars):
        y = top + row * i
        out.append(f'<text x="{label_w - 8}" y="{y + 16}" {_FONT} text-anchor="end">{_esc(name)}</text>')
        for value, colour in ((lo, "#1f77b4"), (hi, "#ff7f0e")):
            a, b = sorted((sx(base), sx(value)))
            out.append(
                f'<rect x="{a:.1f}" y="{y + 4}" width="{max(b - a, 1):.1f}" height="{row - 8}" fill="{colour}" '
                'opacity="0.8"/>'
            )
    out.append(
        f'<line x1="{sx(base):.1f}" x2="{sx(base):.1f}" y1="{top - 6}" y2="{top + row * len(bars)}" '
        'stroke="#333" stroke-dasharray="4 3"/>'
    )
    ly = height - 14
    second = label_w + 30 + 7 * len(low_label)  # after the first legend's text (about 7 px a character)
    out.append(
        f'<rect x="{label_w}" y="{ly - 9}" width="12" height="10" fill="#1f77b4"/><text x="{label_w + 16}" '
        f'y="{ly}" {_FONT}>{_esc(low_label)}</text><rect x="{second}" y="{ly - 9}" width="12" '
        f'height="10" fill="#ff7f0e"/><text x="{second + 16}" y="{ly}" {_FONT}>{_esc(high_label)}</text>'
    )
    out.append("</svg>")
    return "".join(out)


def scatter_chart(
    title: str,
    points: Sequence[tuple[float, float, bool]],
    x_label: str,
    y_label: str,
    x_format: Callable[[float], str],
    y_format: Callable[[float], str],
    x_line: float | None = None,
    y_line: float | None = None,
    mark: tuple[float, float] | None = None,
    width: int = 760,
    height: int = 380,
) -> str:
    """Points (x, y, highlighted) with optional target lines and one ringed point (the closest candidate)."""
    left, right, top, bottom = 80, 30, 36, 48
    xs = [p[0] for p in points] + ([x_line] if x_line is not None else [])
    ys = [p[1] for p in points] + ([y_line] if y_line is not None else [])
    if not xs:
        return ""
    xt, yt = _ticks(min(xs), max(xs)), _ticks(min(ys), max(ys))
    sx = lambda x: left + (x - xt[0]) / (xt[-1] - xt[0]) * (width - left - right)
    sy = lambda y: top + (1 - (y - yt[0]) / (yt[-1] - yt[0])) * (height - top - bottom)
    out = [_opening(title, width, height, left)]
    out += [_y_grid(y, sy(y), left, width - right, y_format) for y in yt]
    for x in xt:
        out.append(
            f'<text x="{sx(x):.1f}" y="{height - bottom + 16}" {_FONT} text-anchor="middle">{_esc(x_format(x))}</text>'
        )
    out.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" {_FONT} text-anchor="middle">'
        f'{_esc(x_label)}</text><text x="14" y="{(top + height - bottom) / 2}" {_FONT} text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})">{_esc(y_label)}</text>'
    )
    if x_line is not None:
        out.append(
            f'<line x1="{sx(x_line):.1f}" x2="{sx(x_line):.1f}" y1="{top}" y2="{height - bottom}" '
            'stroke="#d62728" stroke-dasharray="5 4"/>'
        )
    if y_line is not None:
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{sy(y_line):.1f}" y2="{sy(y_line):.1f}" '
            'stroke="#d62728" stroke-dasharray="5 4"/>'
        )
    for x, y, hot in points:
        out.append(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{"#2ca02c" if hot else "#7f7f7f"}" opacity="0.8"/>'
        )
    if mark is not None:
        out.append(
            f'<circle cx="{sx(mark[0]):.1f}" cy="{sy(mark[1]):.1f}" r="10" fill="none" stroke="#000" stroke-width="2"/>'
        )
    out.append("</svg>")
    return "".join(out)
