"""The raw tables the collector writes, as Dagster sees them (external assets), with freshness
checks every five minutes that warn when no row arrived for CHARGEOPS_RAW_FRESHNESS_MINUTES
(default 15). A network that should be sending and is silent is
itself a finding: the collector is down, the chargers lost their uplink, or the database refuses
writes; nobody else would notice before the next day's analytics."""

from __future__ import annotations

import os

import dagster as dg

from chargeops.settings import ConfigError
from pipelines.jobmeta import TRIGGER_TAG, job_args
from pipelines.resources import DatabaseResource

FRESHNESS_ENV = "CHARGEOPS_RAW_FRESHNESS_MINUTES"
GROUP = "raw"
# table: (what it holds, the column that says when a row arrived)
TABLES = {
    "meter_value": ("meter values (MeterValues, TransactionEvent samples)", "received_at"),
    "status_event": ("connector statuses (StatusNotification)", "received_at"),
    "connection_event": ("connects, disconnects, boots and heartbeats", "ts"),
}
WINDOW = "2 days"  # how far back the newest row is looked for (the tables' BRIN indexes)


def freshness_minutes(env: dict | None = None) -> int:
    raw = (env if env is not None else os.environ).get(FRESHNESS_ENV) or "15"
    try:
        minutes = int(raw)
    except ValueError:
        raise ConfigError(f"{FRESHNESS_ENV}={raw!r} is not a whole number of minutes") from None
    if not 1 <= minutes <= 10080:
        raise ConfigError(f"{FRESHNESS_ENV}={minutes} is outside 1..10080 minutes")
    return minutes


def newest_row_sql(table: str) -> str:
    column = TABLES[table][1]
    return f"""SELECT max({column}),
                      count(*) FILTER (WHERE {column} > now() - interval '1 hour'),
                      count(DISTINCT charge_point_id) FILTER (WHERE {column} > now() - interval '1 hour'),
                      extract(epoch FROM now() - max({column}))::double precision / 60
               FROM {table} WHERE {column} > now() - interval '{WINDOW}'"""


RAW = [
    dg.AssetSpec(
        table,
        group_name=GROUP,
        description=f"Raw table `{table}`: {what}, written by the collector (not by Dagster).",
        kinds={"postgres"},
    )
    for table, (what, _) in TABLES.items()
]


def _freshness_check(spec: dg.AssetSpec, minutes: int) -> dg.AssetChecksDefinition:
    table = spec.key.to_user_string()
    column = TABLES[table][1]

    @dg.asset_check(
        asset=spec.key,
        name="freshness",
        description=f"A row arrived in `{table}` within the last {minutes} minutes "
        f"({FRESHNESS_ENV}); a warning, with the newest row and the last hour's rows and charge "
        "points.",
    )
    def check(database: DatabaseResource) -> dg.AssetCheckResult:
        with database.connection() as conn:
            newest, rows, charge_points, age_min = conn.execute(newest_row_sql(table)).fetchone()
        return dg.AssetCheckResult(
            passed=age_min is not None and age_min <= minutes,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "newest_row": dg.MetadataValue.timestamp(newest)
                if newest
                else dg.MetadataValue.text(f"none in the last {WINDOW} (by {column})"),
                "minutes_since_newest": dg.MetadataValue.float(round(float(age_min), 1))
                if age_min is not None
                else dg.MetadataValue.null(),
                "rows_last_hour": int(rows),
                "charge_points_last_hour": int(charge_points),
            },
        )

    return check


CHECKS = [_freshness_check(spec, freshness_minutes()) for spec in RAW]
freshness_job = dg.define_asset_job(
    "raw_freshness",
    selection=dg.AssetSelection.checks(*CHECKS),
    **job_args("raw", "The raw tables' freshness checks: has the collector written recently?"),
)
every_5_min = dg.ScheduleDefinition(
    name="raw_freshness_every_5_min",
    job=freshness_job,
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
    description="Every five minutes, check that meter values, statuses and connection events are "
    "still arriving (a warning in the UI when one stopped).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={TRIGGER_TAG: "raw_freshness_every_5_min"},
)

defs = dg.Definitions(
    assets=RAW, asset_checks=CHECKS, jobs=[freshness_job], schedules=[every_5_min]
)
