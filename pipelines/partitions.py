"""Daily partitions in UTC from a configured start date (CHARGEOPS_PARTITIONS_START, default
2024-01-01); today's partition exists so late data for it can be materialised too."""

from __future__ import annotations

import os
from datetime import date

import dagster as dg

START = os.environ.get("CHARGEOPS_PARTITIONS_START", "2024-01-01")

daily = dg.DailyPartitionsDefinition(start_date=START, timezone="UTC", end_offset=1)


def partition_day(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    key = context.partition_key
    return date.fromisoformat(key)


# calendar quarters (EV-ChART modules 2-4) and years (UK reliability), keyed by their first day
# (`2026-07-01` is 2026Q3); the current period exists so it can be reported on while it runs
quarterly = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *", start=START, fmt="%Y-%m-%d", timezone="UTC", end_offset=1
)
yearly = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *", start=START, fmt="%Y-%m-%d", timezone="UTC", end_offset=1
)


def quarter_label(key: str) -> str:
    """`2026-07-01` -> `2026Q3`."""
    d = date.fromisoformat(key)
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


def quarter_key(label: str) -> str:
    """`2026Q3` -> `2026-07-01`; a clear ValueError otherwise."""
    text = label.strip().upper()
    if len(text) != 6 or text[4] != "Q" or not text[:4].isdigit() or text[5] not in "1234":
        raise ValueError(f"{label!r} is not a calendar quarter such as 2026Q3")
    return date(int(text[:4]), 3 * (int(text[5]) - 1) + 1, 1).isoformat()
