"""The fields a rule may test, their types, and durations (CONTRACT section 2).

A rule is checked against this registry when it is loaded, so a typo in a field name or a
number compared with text is a FILE:LINE error, not a rule that silently never fires.
"""

from __future__ import annotations

import difflib
import math
import re
from datetime import timedelta
from typing import Any

NUMBER, BOOL, TEXT = "number", "bool", "text"

_WINDOWED = {
    "trauma_points": ("7d", "30d", "90d", "365d", "5y"),
    "exposures": ("7d", "30d", "90d", "365d", "5y"),
    "tier3_exposures": ("30d", "365d"),
    # Tier-2-or-higher exposures in 30 days (the cluster rule's figure, engine.scoring.indicators);
    # an addition to CONTRACT section 2's list.
    "tier2plus_exposures": ("30d",),
    "cancelled_rest_days": ("30d", "90d", "365d"),
    "sickness_days": ("90d", "365d"),
}

SNAPSHOT_FIELDS: dict[str, str] = {
    **{f"{name}_{window}": NUMBER for name, windows in _WINDOWED.items() for window in windows},
    "trauma_points_365d_role_percentile": NUMBER,
    "short_notice_cancellations_90d": NUMBER,
    "sickness_spells_365d": NUMBER,
    "bradford_factor_365d": NUMBER,
    "absent_now": BOOL,
    "open_investigations": NUMBER,
    "deployments_30d": NUMBER,
    "service_years": NUMBER,
    "staff_type": TEXT,
    "role_group": TEXT,
    "rank_or_grade": TEXT,
}

EXPOSURE_ONLY_FIELDS: dict[str, str] = {
    "category": TEXT,
    "tier": NUMBER,
    "role": TEXT,
    "points": NUMBER,
    "feed": TEXT,
}

# Exposure rules also test the exposure's age in days at evaluation time: the engine is given
# `age_days <= max_age` with the rule, so old history never alerts and the explanation shows it.
AGE_FIELD = "age_days"

KINDS = ("snapshot", "exposure")


def fields_for(kind: str) -> dict[str, str]:
    """Field name -> type for rules `on: kind`."""
    if kind == "exposure":
        return {**EXPOSURE_ONLY_FIELDS, **SNAPSHOT_FIELDS}
    return SNAPSHOT_FIELDS


def unknown_field_message(name: str, kind: str) -> str:
    known = fields_for(kind)
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    extra = (
        ""
        if kind == "exposure" or name not in EXPOSURE_ONLY_FIELDS
        else ("; exposure fields need `on: exposure`")
    )
    return f"unknown field {name!r}{hint}{extra}"


# durable_rules reads whole numbers as 64-bit integers and misjudges comparisons beyond them
# (a fact of -2^63 - 2 meets `>= -2^63 - 1`); it can't read infinity or NaN at all.
INTEGER_LIMIT = 2**63 - 1


def number_problem(value: int | float) -> str | None:
    """Why `value` can't be a number in a rule (threshold or test value), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else "is not a finite number"
    if abs(value) > INTEGER_LIMIT:
        return "is out of range: a whole number in a rule lies between -(2^63 - 1) and 2^63 - 1"
    return None


def typed(value: Any, kind: str) -> Any:
    """`value` if it is of field type `kind`, else None (treated as missing by every rule).

    Both the engine and the Python explanation see the result, so they agree on odd input: a
    boolean is not a number here (Python would say True == 1), and NaN, infinity and whole
    numbers beyond 64 bits are no value at all.
    """
    if kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return None if number_problem(value) else value
    if kind == BOOL:
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) else None


_DURATION = re.compile(r"^(\d+)(m|h|d|w)$")
MAX_DURATION = timedelta(days=100 * 365)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: Any) -> timedelta:
    """`15m`, `72h`, `30d`, `4w` as a timedelta; ValueError with what was expected."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        shown = text if not isinstance(text, str) or len(text) <= 40 else f"{text[:30]}..."
        raise ValueError(f"expected a duration like 15m, 72h, 30d or 4w, got {shown!r}")
    digits, unit = match.group(1), match.group(2)
    if len(digits) > 7 or timedelta(**{_UNITS[unit]: int(digits)}) > MAX_DURATION:
        raise ValueError(f"{text[:30]} is longer than {MAX_DURATION.days // 365} years")
    return timedelta(**{_UNITS[unit]: int(digits)})
