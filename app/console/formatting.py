"""How figures read on a page (pure): percentages with their counts, lines, times, URLs, ages.

Rates are computed exactly (``Fraction``) and rounded once, half-even, for display only; the
states beside them come from the tier judge, which compares counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

PERCENT_PLACES = Decimal("0.01")


def rate_of(quality_refunds: int, orders: int) -> Fraction | None:
    """The exact rate, or None when there are no orders (there is no rate to show)."""
    return Fraction(quality_refunds, orders) if orders else None


def percent(rate: Fraction | None) -> str:
    """``Fraction(5, 400)`` → ``"1.25%"``; None → ``"—"``."""
    if rate is None:
        return "—"
    scaled = Decimal(rate.numerator * 100) / Decimal(rate.denominator)
    return f"{scaled.quantize(PERCENT_PLACES, rounding=ROUND_HALF_EVEN)}%"


def decimal_percent(rate: str | None) -> str:
    """A rate given as a decimal string (``"0.0219"``, the platform's) → ``"2.19%"``."""
    if rate is None:
        return "—"
    return percent(Fraction(Decimal(rate)))


def signed_points(drift: str | None) -> str:
    """A drift of rates (``"-0.001234"``) in percentage points: ``"−0.12 pt"``."""
    if drift is None:
        return "—"
    value = (Decimal(drift) * 100).quantize(PERCENT_PLACES, rounding=ROUND_HALF_EVEN)
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{abs(value)} pt"


def signed_count(drift: int | None) -> str:
    if drift is None:
        return "—"
    return f"{drift:+d}" if drift else "±0"


def threshold_percent(threshold: Decimal) -> str:
    """A tier's line as a short percentage: ``Decimal("0.01")`` → ``"1%"``, 0.025 → ``"2.5%"``."""
    value = (threshold * 100).normalize()
    text = format(value, "f")
    return f"{text}%"


def local_time(at: datetime | None, tz: ZoneInfo) -> str:
    """An instant as the store's clock shows it: ``2026-11-25 12:00``."""
    if at is None:
        return "—"
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def utc_offset(at: datetime, tz: ZoneInfo) -> str:
    """``UTC+08:00`` for the zone at that instant (shown beside times, so none is ambiguous)."""
    offset = at.astimezone(tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def duration_parts(seconds: float) -> tuple[int, str]:
    """A duration as its largest whole unit: ``(3, "d")``, ``(5, "h")``, ``(12, "min")``."""
    seconds = max(0.0, seconds)
    if seconds >= 86400:
        return int(seconds // 86400), "d"
    if seconds >= 3600:
        return int(seconds // 3600), "h"
    if seconds >= 60:
        return int(seconds // 60), "min"
    return int(seconds), "s"


def masked_url(url: str) -> str:
    """A webhook URL fit to show: group-robot URLs carry their token in the query, so the
    query (and any user:password) is replaced by ``…``; scheme, host and path stay."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    query = "…" if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def fraction_or_zero(rate: Fraction | None) -> float:
    """The rate as a float for drawing only (charts and sparklines), 0 when undefined."""
    return float(rate) if rate is not None else 0.0
