"""The daily analytics' job, its schedule (00:30 UTC, the day that ended) and the late-data sensor
(every 5 minutes, the days that received rows after they ended)."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from pipelines.defs.analytics.assets import ASSETS
from pipelines.defs.analytics.emissions_asset import ASSETS as EMISSIONS
from pipelines.jobmeta import job_args, run_request
from pipelines.partitions import first_day
from pipelines.resources import DatabaseResource

DAILY_ANALYTICS = [*ASSETS, *EMISSIONS]

analytics_job = dg.define_asset_job(
    "analytics_daily",
    selection=dg.AssetSelection.assets(*DAILY_ANALYTICS),
    **job_args(
        "analytics",
        "One UTC day of every daily analytics asset with its checks: connector states, sessions, "
        "utilisation, uptime and outages, energy, peak usage, expected revenue, emissions. "
        "Schedule previous_day (00:30 UTC); sensor late_data re-runs days that got late rows.",
    ),
)


@dg.schedule(
    job=analytics_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="00:30 UTC: analytics_daily for the UTC day that just ended (its data is "
    "complete but for chargers that were offline; late_data re-runs those days).",
)
def previous_day(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date()
    return run_request("previous_day", f"daily-{day}", day.isoformat())


LATE_SQL = """
SELECT day, max(received_at) FROM (
    SELECT (ts AT TIME ZONE 'UTC')::date AS day, received_at FROM meter_value
    WHERE received_at > %(since)s
    UNION ALL
    SELECT (ts AT TIME ZONE 'UTC')::date, received_at FROM status_event WHERE received_at > %(since)s
    UNION ALL
    SELECT (ts AT TIME ZONE 'UTC')::date, received_at FROM transaction_event
    WHERE received_at > %(since)s
) r
WHERE day < (received_at AT TIME ZONE 'UTC')::date AND day >= %(first)s
  AND day >= (received_at AT TIME ZONE 'UTC')::date - %(late_days)s
GROUP BY day ORDER BY day
"""
# how late a row may come and still re-run its day: an offline charger's queue is hours or days
# old; older rows are history brought in by `chargeops import`, which prints the backfill to run
# (else an import of a year would queue a run per imported day)
LATE_DAYS = 30


@dg.sensor(
    job=analytics_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes: re-runs analytics_daily for each UTC day that received meter "
    "values, statuses or transaction events after it ended (chargers that were offline send "
    "their queued messages late, with their original timestamps), up to 30 days late.",
)
def late_data(context: dg.SensorEvaluationContext, database: DatabaseResource):
    since = (
        datetime.fromisoformat(context.cursor)
        if context.cursor
        else datetime.now(UTC) - timedelta(hours=1)
    )
    with database.connection() as conn:
        rows = conn.execute(
            LATE_SQL, {"since": since, "first": first_day(), "late_days": LATE_DAYS}
        ).fetchall()
    if not rows:
        return dg.SkipReason(f"no late rows since {since.isoformat()}")
    newest = max(r[1] for r in rows)
    context.update_cursor(newest.isoformat())
    return [
        run_request("late_data", f"late-{day}-{newest.isoformat()}", day.isoformat())
        for day, _ in rows
    ]


JOBS = [analytics_job]
SCHEDULES = [previous_day]
SENSORS = [late_data]
