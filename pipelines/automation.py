"""The daily schedule and the late-data sensor."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from pipelines.assets import ASSETS
from pipelines.partitions import daily
from pipelines.resources import DatabaseResource

analytics_job = dg.define_asset_job(
    "analytics_daily", selection=dg.AssetSelection.assets(*ASSETS), partitions_def=daily
)


@dg.schedule(job=analytics_job, cron_schedule="30 0 * * *", execution_timezone="UTC")
def previous_day(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Shortly after midnight UTC, materialise the day that just ended."""
    day = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date()
    return dg.RunRequest(run_key=f"daily-{day}", partition_key=day.isoformat())


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
GROUP BY day ORDER BY day
"""


@dg.sensor(job=analytics_job, minimum_interval_seconds=300)
def late_data(context: dg.SensorEvaluationContext, database: DatabaseResource):
    """Re-run the partitions of days that received rows after they ended (chargers that were
    offline send their queued messages late, with their original timestamps)."""
    since = (
        datetime.fromisoformat(context.cursor)
        if context.cursor
        else datetime.now(UTC) - timedelta(hours=1)
    )
    first = datetime.fromisoformat(daily.start.isoformat()).date()
    with database.connection() as conn:
        rows = conn.execute(LATE_SQL, {"since": since, "first": first}).fetchall()
    if not rows:
        return dg.SkipReason(f"no late rows since {since.isoformat()}")
    newest = max(r[1] for r in rows)
    context.update_cursor(newest.isoformat())
    return [
        dg.RunRequest(run_key=f"late-{day}-{newest.isoformat()}", partition_key=day.isoformat())
        for day, _ in rows
    ]
