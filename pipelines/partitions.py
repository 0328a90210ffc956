"""Daily partitions in UTC from the first day of data: CHARGEOPS_PARTITIONS_START when set, else
the day the data folder records (`chargeops.periods.partitions_start`), else 2024-01-01; today's
partition exists so late data for it can be materialised too."""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import dagster as dg

from chargeops.periods import partitions_start, quarter_start

START = partitions_start().isoformat()

daily = dg.DailyPartitionsDefinition(start_date=START, timezone="UTC", end_offset=1)


def partition_day(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    key = context.partition_key
    return date.fromisoformat(key)


def first_day() -> date:
    """The first daily partition's day."""
    return daily.start.date()


def partition_days(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[date]:
    """The days a run covers: one for a partition launched on its own, a whole range for a run
    of a backfill (`BackfillPolicy.multi_run`), in order."""
    if context.has_partition_key_range:
        return [date.fromisoformat(k) for k in context.partition_keys]
    return [partition_day(context)]


# Dagster calls `backfill_policy` beta: it is the documented way to run a range per run
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of .* is currently in beta")

# a backfill of the daily assets runs up to a month of days per run: the per-run cost (Dagster's
# step and event handling, resource set-up, the checks' validation) is paid once per range
DAILY_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)


# calendar quarters (EV-ChART modules 2-4) and years (UK reliability), keyed by their first day
# (`2026-07-01` is 2026Q3), from the quarter and the year that hold START; the current period
# exists so it can be reported on while it runs
_first = partitions_start()
quarterly = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *",
    start=quarter_start(_first).isoformat(),
    fmt="%Y-%m-%d",
    timezone="UTC",
    end_offset=1,
)
yearly = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *",
    start=_first.replace(month=1, day=1).isoformat(),
    fmt="%Y-%m-%d",
    timezone="UTC",
    end_offset=1,
)

# ISO weeks (Monday to Sunday), keyed by their Monday, for the weekly operator dashboard
weekly = dg.WeeklyPartitionsDefinition(
    start_date=(_first - timedelta(days=_first.weekday())).isoformat(),
    day_offset=1,
    timezone="UTC",
    end_offset=1,
)
