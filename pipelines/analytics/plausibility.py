"""What a meter can physically report: the line between unusual data (kept, flagged) and values
that cannot be true (quarantined: listed, never summed).

A register step is impossible when it is larger than the connector could deliver in the time it
spans: `rated power x POWER_MARGIN x span + RESOLUTION_WH`. The margin covers chargers that
briefly exceed their nameplate and clocks a little off; the resolution covers registers reported
in whole kWh. Where the rated power is unknown, `UNKNOWN_RATED_W` (a megawatt charging system)
stands in. Sessions (`sessions.py`) and the load curve (`energy.py`) use the same rule, so a jump
is left out of both.
"""

from __future__ import annotations

import polars as pl

from chargeops.plausibility import (  # noqa: F401 - the rule lives in chargeops for ingest too
    POWER_MARGIN,
    RESOLUTION_WH,
    UNKNOWN_RATED_W,
    step_limit_wh,
)


def impossible_step(step_wh: pl.Expr, span: pl.Expr, rated_w: pl.Expr) -> pl.Expr:
    """A rise no connector of `rated_w` could deliver in `span` (null when either is null)."""
    return step_wh > step_limit_wh(span, rated_w)


def finite(col: str) -> pl.Expr:
    """Null-safe: a null is not a bad value (it is a missing one)."""
    return pl.col(col).is_null() | pl.col(col).is_finite()


def step_reason(step_wh: pl.Expr, span: pl.Expr, rated_w: pl.Expr) -> pl.Expr:
    return pl.format(
        "register rose {} Wh in {} s; at most {} Wh possible at {} W",
        step_wh.round(0),
        span.dt.total_seconds(),
        step_limit_wh(span, rated_w).round(0),
        rated_w.fill_null(UNKNOWN_RATED_W).round(0),
    )
