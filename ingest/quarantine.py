"""Rows the collector acknowledges but does not store as data, because they cannot be true: a
number that is not finite in base units (NaN, Infinity, or "1e308" kWh, which overflows as Wh)
and a timestamp far ahead of the time the row arrived (a clock set to 2100). They go to table
`quarantine` with the reason, so they never reach a sum, never block another charger's day, and
stay visible (the audit log keeps the whole frame too).

A clock a little fast is not quarantined: the `raw_timestamps_not_in_future` check warns about it.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

FUTURE_LIMIT = timedelta(hours=24)  # a row stamped further ahead of its arrival is quarantined

COLUMNS = (
    "received_at", "charge_point_id", "kind", "ts", "evse_id", "connector_id", "transaction_id",
    "what", "raw_value", "reason",
)  # fmt: skip


def why_timestamp(ts: datetime, received_at: datetime) -> str | None:
    if ts - received_at > FUTURE_LIMIT:
        return f"timestamp {ts.isoformat()} is more than {FUTURE_LIMIT} after it arrived"
    return None


def why_value(value: float) -> str | None:
    if not math.isfinite(value):
        return f"value {value} is not finite in base units"
    return None


def row(
    *,
    received_at: datetime,
    charge_point_id: str,
    kind: str,
    ts: datetime,
    reason: str,
    evse_id: int = 0,
    connector_id: int = 0,
    transaction_id: str | None = None,
    what: str = "",
    raw_value: Any = "",
) -> tuple:
    return (
        received_at, charge_point_id, kind, ts, evse_id, connector_id, transaction_id or "",
        what[:200], str(raw_value)[:200], reason,
    )  # fmt: skip
