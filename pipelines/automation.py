"""Jobs, schedules and sensors: the daily analytics, Stripe sync and reconciliation, the quarterly
and yearly regulator reports, and the late-data sensor."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from pipelines import emissions_asset, evchart_asset, report_assets
from pipelines.assets import ASSETS
from pipelines.partitions import daily
from pipelines.payments import ingest_asset, reconciliation_asset
from pipelines.resources import DatabaseResource

DAILY_ANALYTICS = [*ASSETS, *emissions_asset.ASSETS]

analytics_job = dg.define_asset_job(
    "analytics_daily", selection=dg.AssetSelection.assets(*DAILY_ANALYTICS)
)
stripe_job = dg.define_asset_job(
    "stripe_sync", selection=dg.AssetSelection.assets(*ingest_asset.ASSETS)
)
reconciliation_job = dg.define_asset_job(
    "reconciliation_daily",
    selection=dg.AssetSelection.assets(*reconciliation_asset.ASSETS),
)
evchart_job = dg.define_asset_job(
    "quarterly_reports",
    selection=dg.AssetSelection.assets(
        evchart_asset.evchart_files, report_assets.compliance_report
    ),
)
uk_job = dg.define_asset_job(
    "uk_reliability_yearly", selection=dg.AssetSelection.assets(report_assets.uk_reliability_report)
)

# Stripe every hour; the previous quarter's and year's files shortly after each ends
stripe_hourly = dg.ScheduleDefinition(
    name="stripe_hourly", job=stripe_job, cron_schedule="15 * * * *"
)
quarterly_reports = dg.build_schedule_from_partitioned_job(evchart_job)
uk_yearly = dg.build_schedule_from_partitioned_job(uk_job)

# refunds and disputes arrive days or weeks after the payment: reconcile the last 30 days again
RECONCILE_DAYS = 30


@dg.schedule(job=analytics_job, cron_schedule="30 0 * * *", execution_timezone="UTC")
def previous_day(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Shortly after midnight UTC, materialise the day that just ended."""
    day = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date()
    return dg.RunRequest(run_key=f"daily-{day}", partition_key=day.isoformat())


@dg.schedule(job=reconciliation_job, cron_schedule="0 2 * * *", execution_timezone="UTC")
def reconcile_recent_days(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """After the hourly Stripe sync, reconcile yesterday and the 29 days before it again."""
    today = context.scheduled_execution_time.astimezone(UTC).date()
    first = datetime.fromisoformat(daily.start.isoformat()).date()
    days = [today - timedelta(days=i) for i in range(1, RECONCILE_DAYS + 1)]
    return [
        dg.RunRequest(run_key=f"reconcile-{today}-{day}", partition_key=day.isoformat())
        for day in days
        if day >= first
    ]


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
