"""Server-side SVG charts of the cohort page, each with a title and a description for screen readers
(the page also shows the numbers as tables): per-subject pre→post lines, the distribution of change per
arm, and the mean change per zone drawn on the atlas face."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ml.measures.atlas import ATLAS_HEIGHT, ATLAS_WIDTH, atlas_face_lines, atlas_zone_outlines

ARM_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
WIDTH, HEIGHT, MARGIN = 560, 320, 56


def _html(template: str, *args: object) -> str:
    """``template.format(*args)`` with text arguments escaped and numbers formatted by the template."""
    return template.format(*(escape(arg) if isinstance(arg, str) else arg for arg in args))


def _number(value: float) -> str:
    return f"{value:.3g}"


def _svg(
    title: str, description: str, body: list[str], width: int = WIDTH, height: int = HEIGHT
) -> SafeString:
    head = _html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {} {}" role="img" '
        'aria-labelledby="{}-title {}-desc"><title id="{}-title">{}</title><desc id="{}-desc">{}</desc>',
        width,
        height,
        *(_chart_id(title),) * 2,
        _chart_id(title),
        title,
        _chart_id(title),
        description,
    )
    return mark_safe(head + "".join(body) + "</svg>")  # noqa: S308 (every part is built with _html)


def _chart_id(title: str) -> str:
    return "chart-" + "".join(character if character.isalnum() else "-" for character in title.lower())[:60]


def _scale(low: float, high: float, out_low: float, out_high: float):
    if math.isclose(low, high):
        low, high = low - 1, high + 1
    return lambda value: out_low + (value - low) * (out_high - out_low) / (high - low)


def _axis(y_of, low: float, high: float, unit: str) -> list[str]:
    parts = [
        _html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>',
            MARGIN,
            MARGIN / 2,
            MARGIN,
            HEIGHT - MARGIN,
        )
    ]
    for step in range(5):
        value = low + (high - low) * step / 4
        y = y_of(value)
        parts.append(
            _html(
                '<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>'
                '<line x1="{}" y1="{}" x2="{}" y2="{}" class="grid"/>',
                MARGIN - 6,
                f"{y + 4:.1f}",
                _number(value),
                MARGIN,
                f"{y:.1f}",
                WIDTH - 10,
                f"{y:.1f}",
            )
        )
    parts.append(
        _html(
            '<text x="12" y="{}" class="tick" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>',
            HEIGHT / 2,
            HEIGHT / 2,
            unit,
        )
    )
    return parts


def slope_chart(
    measure: str, unit: str, subjects: Sequence[tuple[str, str, float, float]], arms: Sequence[str]
) -> SafeString:
    """One line per subject from its pre to its post value; ``subjects`` holds (code, arm, pre, post)."""
    if not subjects:
        return mark_safe("")
    values = [value for _, _, pre, post in subjects for value in (pre, post)]
    low, high = min(values), max(values)
    y_of = _scale(low, high, HEIGHT - MARGIN, MARGIN / 2)
    x_pre, x_post = MARGIN + 60, WIDTH - 90
    body = _axis(y_of, low, high, unit)
    body.append(
        _html(
            '<text x="{}" y="{}" text-anchor="middle" class="label">pre</text><text x="{}" y="{}" '
            'text-anchor="middle" class="label">post</text>',
            x_pre,
            HEIGHT - MARGIN + 20,
            x_post,
            HEIGHT - MARGIN + 20,
        )
    )
    increased = 0
    for code, arm, pre, post in subjects:
        colour = ARM_COLOURS[arms.index(arm) % len(ARM_COLOURS)] if arm in arms else "#555"
        increased += post > pre
        body.append(
            _html(
                '<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="{}" '
                'class="subject-line"><title>{}: {} → {}</title></line>',
                x_pre,
                y_of(pre),
                x_post,
                y_of(post),
                colour,
                code,
                _number(pre),
                _number(post),
            )
        )
    body += _legend(arms)
    description = (
        f"{measure} of {len(subjects)} subjects before and after; {increased} increased, "
        f"{len(subjects) - increased} did not. Values range from {_number(low)} to {_number(high)} {unit}."
    )
    return _svg(f"{measure}: each subject before and after", description, body)


def _legend(arms: Sequence[str]) -> list[str]:
    return [
        _html(
            '<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" '
            'y="{}" class="tick">{}</text>',
            WIDTH - 80,
            12 + 16 * index,
            ARM_COLOURS[index % len(ARM_COLOURS)],
            WIDTH - 65,
            21 + 16 * index,
            arm or "no arm",
        )
        for index, arm in enumerate(arms)
    ]


def change_distribution_chart(
    measure: str, unit: str, changes_by_arm: Mapping[str, Sequence[float]], noise_floor: float | None
) -> SafeString:
    """Per arm: each subject's change as a dot, the median and the interquartile range as a box, and
    the noise floor (± repeatability coefficient) as a shaded band around zero."""
    values = [value for changes in changes_by_arm.values() for value in changes]
    if not values:
        return mark_safe("")
    low, high = min(values + [0.0]), max(values + [0.0])
    if noise_floor:
        low, high = min(low, -noise_floor), max(high, noise_floor)
    y_of = _scale(low, high, HEIGHT - MARGIN, MARGIN / 2)
    body = _axis(y_of, low, high, f"change ({unit})")
    if noise_floor:
        body.append(
            _html(
                '<rect x="{}" y="{:.1f}" width="{}" height="{:.1f}" '
                'class="noise-band"><title>noise floor ±{}</title></rect>',
                MARGIN,
                y_of(noise_floor),
                WIDTH - MARGIN - 10,
                y_of(-noise_floor) - y_of(noise_floor),
                _number(noise_floor),
            )
        )
    body.append(
        _html(
            '<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" class="zero"/>',
            MARGIN,
            y_of(0),
            WIDTH - 10,
            y_of(0),
        )
    )
    arms = list(changes_by_arm)
    slot = (WIDTH - MARGIN - 10) / max(len(arms), 1)
    sentences = []
    for index, arm in enumerate(arms):
        changes = sorted(changes_by_arm[arm])
        centre = MARGIN + slot * (index + 0.5)
        colour = ARM_COLOURS[index % len(ARM_COLOURS)]
        q1, median, q3 = (_quantile(changes, q) for q in (0.25, 0.5, 0.75))
        body.append(
            _html(
                '<rect x="{:.1f}" y="{:.1f}" width="40" height="{:.1f}" class="box" stroke="{}"/>'
                '<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}" class="median"/>',
                centre - 20,
                y_of(q3),
                max(y_of(q1) - y_of(q3), 1),
                colour,
                centre - 20,
                y_of(median),
                centre + 20,
                y_of(median),
                colour,
            )
        )
        for order, change in enumerate(changes):
            jitter = ((order * 7919) % 21 - 10) * 1.6
            body.append(
                _html(
                    '<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}" class="dot"/>',
                    centre + jitter,
                    y_of(change),
                    colour,
                )
            )
        body.append(
            _html(
                '<text x="{:.1f}" y="{}" text-anchor="middle" class="label">{} (n={})</text>',
                centre,
                HEIGHT - MARGIN + 20,
                arm or "no arm",
                len(changes),
            )
        )
        sentences.append(
            f"{arm or 'no arm'}: n={len(changes)}, median change {_number(median)}, interquartile "
            f"range {_number(q1)} to {_number(q3)} {unit}"
        )
    description = "; ".join(sentences) + (
        f". Noise floor ±{_number(noise_floor)} {unit}." if noise_floor else "."
    )
    return _svg(f"{measure}: change per arm", description, body)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _diverging(value: float, limit: float) -> str:
    """Blue for a decrease, red for an increase, white at zero."""
    share = max(-1.0, min(1.0, value / limit)) if limit else 0.0
    fade = int(255 * (1 - abs(share)))
    return f"rgb(255,{fade},{fade})" if share > 0 else f"rgb({fade},{fade},255)"


def zone_atlas_chart(title: str, unit: str, mean_change_by_zone: Mapping[str, float]) -> SafeString:
    """The atlas face with each zone of ``mean_change_by_zone`` filled by its mean change (diverging
    colours, symmetric around zero); zones without a figure are outlined only."""
    if not mean_change_by_zone:
        return mark_safe("")
    limit = max(abs(value) for value in mean_change_by_zone.values()) or 1.0
    body = []
    for abbreviation, outlines in atlas_zone_outlines().items():
        value = mean_change_by_zone.get(abbreviation)
        fill = _diverging(value, limit) if value is not None else "none"
        path = " ".join(
            "M" + " L".join(f"{outline[i]},{outline[i + 1]}" for i in range(0, len(outline), 2)) + " Z"
            for outline in outlines
        )
        label = (
            f"{abbreviation}: {_number(value)} {unit}" if value is not None else f"{abbreviation}: no figure"
        )
        body.append(
            _html(
                '<path d="{}" fill="{}" fill-rule="evenodd" class="zone" '
                'data-zone="{}"><title>{}</title></path>',
                path,
                fill,
                abbreviation,
                label,
            )
        )
    for points, closed in atlas_face_lines():
        tag = "polygon" if closed else "polyline"
        body.append(
            _html('<{} points="{}" class="face-line"/>', tag, " ".join(f"{x:.1f},{y:.1f}" for x, y in points))
        )
    for index, value in enumerate((-limit, 0.0, limit)):
        body.append(
            _html(
                '<rect x="{}" y="{}" width="14" height="14" fill="{}" stroke="#888"/><text '
                'x="{}" y="{}" class="tick">{} {}</text>',
                10,
                10 + 20 * index,
                _diverging(value, limit),
                30,
                22 + 20 * index,
                _number(value),
                unit,
            )
        )
    ordered = sorted(mean_change_by_zone.items(), key=lambda item: item[1])
    description = (
        "Mean change per zone: "
        + ", ".join(f"{abbreviation} {_number(value)}" for abbreviation, value in ordered)
        + f" {unit}."
    )
    return _svg(title, description, body, width=ATLAS_WIDTH, height=ATLAS_HEIGHT)
