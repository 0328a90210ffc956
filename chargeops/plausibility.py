"""The most energy a connector can deliver over a span: the line between an unusual register
step and one that cannot be true. The analytics (`pipelines.analytics.plausibility`) and the
importers (`ingest.importers.common`) apply the same rule.
"""

from __future__ import annotations

import polars as pl

POWER_MARGIN = 1.5
RESOLUTION_WH = 1000.0
UNKNOWN_RATED_W = 4_000_000.0


def step_limit_wh(span: pl.Expr, rated_w: pl.Expr) -> pl.Expr:
    """The largest register step (Wh) a connector of `rated_w` can make over `span` (a
    duration); negative spans count as zero, an unknown rating is a megawatt charger's."""
    hours = span.dt.total_microseconds().clip(lower_bound=0).cast(pl.Float64) / 3.6e9
    return rated_w.fill_null(UNKNOWN_RATED_W) * POWER_MARGIN * hours + RESOLUTION_WH
