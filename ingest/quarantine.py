"""Rows the collector acknowledges but does not store as data, because they cannot be true: a
number that is not finite in base units (NaN, Infinity, or "1e308" kWh, which overflows as Wh)
and a timestamp far ahead of the time the row arrived (a clock set to 2100) or years behind it. They go to table
`quarantine` with the reason, so they never reach a sum, never block another charger's day, and
stay visible (the audit log keeps the whole frame too).

A clock a little fast is not quarantined: the `raw_timestamps_not_in_future` check warns about it.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

FUTURE_LIMIT = timedelta(hours=24)  # a row stamped further ahead of its arrival is quarantined
# ... or further behind it: a charger may deliver what it stored offline, but not from 1926
# (each month a row names would otherwise become a partition: 900 months in one frame once).
PAST_LIMIT = timedelta(days=3 * 366)


def set_window(*, past: timedelta, future: timedelta) -> None:
    """The sane window around a row's arrival (CHARGEOPS_TIMESTAMP_PAST_DAYS / _FUTURE_HOURS)."""
    global PAST_LIMIT, FUTURE_LIMIT
    PAST_LIMIT, FUTURE_LIMIT = past, future


COLUMNS = (
    "received_at", "charge_point_id", "kind", "ts", "evse_id", "connector_id", "transaction_id",
    "what", "raw_value", "reason",
)  # fmt: skip


def why_timestamp(ts: datetime, received_at: datetime) -> str | None:
    if ts - received_at > FUTURE_LIMIT:
        return f"timestamp {ts.isoformat()} is more than {FUTURE_LIMIT} after it arrived"
    if received_at - ts > PAST_LIMIT:
        return f"timestamp {ts.isoformat()} is more than {PAST_LIMIT.days} days before it arrived"
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
