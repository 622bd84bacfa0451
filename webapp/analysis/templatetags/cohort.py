"""Number formats of the cohort page: significant digits and p-values."""

from django import template

register = template.Library()


@register.filter
def sig(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits; an em dash for no number (None, or a figure the
    stored record lacks, which a template resolves to an empty string)."""
    if not isinstance(value, int | float):
        return "—"
    return f"{value:.{int(digits)}g}"


@register.filter
def pvalue(value: float | None) -> str:
    """A p-value as journals print it: 3 decimals, or "< 0.001"."""
    if not isinstance(value, int | float):
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


@register.filter
def interval(bounds: tuple[float, float] | None) -> str:
    """A confidence interval as "[low, high]" with 3 significant digits."""
    if not bounds:
        return "—"
    return f"[{bounds[0]:.3g}, {bounds[1]:.3g}]"
