"""Jobs, schedules and sensors: the daily analytics, Stripe sync and reconciliation, the quarterly
and yearly regulator reports, the late-data sensor and the run-failure alert. (Maintenance and
dashboard jobs and schedules live beside their assets, in pipelines/maintenance.py and
pipelines/dashboard_asset.py.)

The night, in UTC, with every schedule on by default (`dagster dev` runs them with its daemon):
00:30 the analytics of the day that ended; 01:30 maintenance features and scores; 02:00 the last
30 days reconciled again; 03:00 on the first day of a quarter (a year) the regulator files of
the one that ended; 06:00 and 07:00 the operator dashboards; Stripe every hour at :15; the
late-data sensor every 5 minutes."""

import os
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from chargeops.periods import quarter_start
from pipelines import emissions_asset, evchart_asset, report_assets
from pipelines.alerts import deliver, failure_of
from pipelines.assets import ASSETS
from pipelines.jobmeta import TRIGGER_TAG, job_args
from pipelines.partitions import daily
from pipelines.payments import ingest_asset, reconciliation_asset
from pipelines.resources import AlertsResource, DatabaseResource, SmtpResource

RUNNING = dg.DefaultScheduleStatus.RUNNING
SENSOR_RUNNING = dg.DefaultSensorStatus.RUNNING
DAILY_ANALYTICS = [*ASSETS, *emissions_asset.ASSETS]

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
stripe_job = dg.define_asset_job(
    "stripe_sync",
    selection=dg.AssetSelection.assets(*ingest_asset.ASSETS),
    **job_args(
        "payments",
        "Copy Stripe's payments, charges, refunds, disputes, balance transactions and payouts "
        "into the raw stripe_* tables (incremental). Schedule stripe_hourly; the key is the "
        "STRIPE_API_KEY environment variable.",
    ),
)
reconciliation_job = dg.define_asset_job(
    "reconciliation_daily",
    selection=dg.AssetSelection.assets(*reconciliation_asset.ASSETS),
    **job_args(
        "payments",
        "Reconcile one UTC day: expected revenue per session against the Stripe payments. "
        "Schedule reconcile_recent_days (02:00 UTC, the last 30 days again).",
    ),
)
evchart_job = dg.define_asset_job(
    "quarterly_reports",
    selection=dg.AssetSelection.assets(
        evchart_asset.evchart_files, report_assets.compliance_report
    ),
    **job_args(
        "reports",
        "One calendar quarter's regulator files: the EV-ChART module CSVs and the compliance "
        "report. Schedule quarterly_reports_schedule (03:00 UTC on the quarter's next day).",
    ),
)
uk_job = dg.define_asset_job(
    "uk_reliability_yearly",
    selection=dg.AssetSelection.assets(report_assets.uk_reliability_report),
    **job_args(
        "reports",
        "One calendar year's UK Public Charge Point Regulations reliability figures. Schedule "
        "uk_reliability_yearly_schedule (03:00 UTC on 1 January, the year that ended).",
    ),
)

# refunds and disputes arrive days or weeks after the payment: reconcile the last 30 days again
RECONCILE_DAYS = 30


def _first_day() -> date:
    return datetime.fromisoformat(daily.start.isoformat()).date()


@dg.schedule(
    job=analytics_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
    description="00:30 UTC: analytics_daily for the UTC day that just ended (its data is "
    "complete but for chargers that were offline; late_data re-runs those days).",
)
def previous_day(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date()
    return dg.RunRequest(
        run_key=f"daily-{day}", partition_key=day.isoformat(), tags={TRIGGER_TAG: "previous_day"}
    )


@dg.schedule(
    job=stripe_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
    description="Every hour at :15: stripe_sync (skipped while STRIPE_API_KEY is not set).",
)
def stripe_hourly(context: dg.ScheduleEvaluationContext):
    if not os.environ.get("STRIPE_API_KEY"):
        return dg.SkipReason("STRIPE_API_KEY is not set in the code location's environment")
    hour = context.scheduled_execution_time.astimezone(UTC).strftime("%Y-%m-%dT%H")
    return dg.RunRequest(run_key=f"stripe-{hour}", tags={TRIGGER_TAG: "stripe_hourly"})


@dg.schedule(
    job=reconciliation_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=RUNNING,
    description="02:00 UTC, after the hourly Stripe sync: reconciliation_daily for yesterday "
    "and the 29 days before it again (refunds and disputes arrive late).",
)
def reconcile_recent_days(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    today = context.scheduled_execution_time.astimezone(UTC).date()
    first = _first_day()
    days = [today - timedelta(days=i) for i in range(1, RECONCILE_DAYS + 1)]
    return [
        dg.RunRequest(
            run_key=f"reconcile-{today}-{day}",
            partition_key=day.isoformat(),
            tags={TRIGGER_TAG: "reconcile_recent_days"},
        )
        for day in days
        if day >= first
    ]


# The period that has just ended, at 03:00 UTC on its next day: after that day's analytics (00:30),
# maintenance (01:30) and reconciliation (02:00). (Dagster's build_schedule_from_partitioned_job
# would ask for the last partition, which with end_offset=1 is the period that has just begun.)
@dg.schedule(
    job=evchart_job,
    cron_schedule="0 3 1 1,4,7,10 *",
    execution_timezone="UTC",
    default_status=RUNNING,
    description="03:00 UTC on the first day of a quarter: quarterly_reports (EV-ChART files and "
    "the compliance report) for the quarter that ended.",
)
def quarterly_reports_schedule(context: dg.ScheduleEvaluationContext):
    ended = context.scheduled_execution_time.astimezone(UTC).date() - timedelta(days=1)
    key = quarter_start(ended)
    if key < quarter_start(_first_day()):
        return dg.SkipReason(f"the quarter of {ended} is before the first partition")
    return dg.RunRequest(
        run_key=f"quarter-{key}",
        partition_key=key.isoformat(),
        tags={TRIGGER_TAG: "quarterly_reports_schedule"},
    )


@dg.schedule(
    job=uk_job,
    cron_schedule="0 3 1 1 *",
    execution_timezone="UTC",
    default_status=RUNNING,
    description="03:00 UTC on 1 January: uk_reliability_yearly for the year that ended.",
)
def uk_reliability_yearly_schedule(context: dg.ScheduleEvaluationContext):
    ended = context.scheduled_execution_time.astimezone(UTC).date() - timedelta(days=1)
    key = ended.replace(month=1, day=1)
    if key.year < _first_day().year:
        return dg.SkipReason(f"{key.year} is before the first partition")
    return dg.RunRequest(
        run_key=f"year-{key.year}",
        partition_key=key.isoformat(),
        tags={TRIGGER_TAG: "uk_reliability_yearly_schedule"},
    )


# the names the README and older code used
quarterly_reports, uk_yearly = quarterly_reports_schedule, uk_reliability_yearly_schedule


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


@dg.sensor(
    job=analytics_job,
    minimum_interval_seconds=300,
    default_status=SENSOR_RUNNING,
    description="Every 5 minutes: re-runs analytics_daily for each UTC day that received meter "
    "values, statuses or transaction events after it ended (chargers that were offline send "
    "their queued messages late, with their original timestamps).",
)
def late_data(context: dg.SensorEvaluationContext, database: DatabaseResource):
    since = (
        datetime.fromisoformat(context.cursor)
        if context.cursor
        else datetime.now(UTC) - timedelta(hours=1)
    )
    with database.connection() as conn:
        rows = conn.execute(LATE_SQL, {"since": since, "first": _first_day()}).fetchall()
    if not rows:
        return dg.SkipReason(f"no late rows since {since.isoformat()}")
    newest = max(r[1] for r in rows)
    context.update_cursor(newest.isoformat())
    return [
        dg.RunRequest(
            run_key=f"late-{day}-{newest.isoformat()}",
            partition_key=day.isoformat(),
            tags={TRIGGER_TAG: "late_data"},
        )
        for day, _ in rows
    ]


@dg.run_failure_sensor(
    default_status=SENSOR_RUNNING,
    minimum_interval_seconds=60,
    description="When a run of any chargeops job fails: a mail to CHARGEOPS_ALERT_TO through the "
    "SMTP relay and a JSON POST to CHARGEOPS_ALERT_WEBHOOK, each where set, naming the job, the "
    "run, its partition or range, the failed steps and their errors.",
)
def run_failure_alert(
    context: dg.RunFailureSensorContext, smtp: SmtpResource, alerts: AlertsResource
) -> None:
    failure = failure_of(
        context.dagster_run,
        context.failure_event,
        context.get_step_failure_events(),
        alerts.ui(),
    )
    recipients, webhook = alerts.recipients(), alerts.webhook()
    # (returning nothing, every failed run since the last tick is handled in this one)
    done = deliver(failure, smtp.config, recipients, webhook)
    context.log.info(
        "run %s of %s failed: %s",
        failure.run_id,
        failure.job,
        "; ".join(done)
        or "nobody to tell (set CHARGEOPS_ALERT_TO with CHARGEOPS_SMTP_HOST, or "
        "CHARGEOPS_ALERT_WEBHOOK)",
    )


JOBS = [analytics_job, stripe_job, reconciliation_job, evchart_job, uk_job]
SCHEDULES = [
    previous_day,
    stripe_hourly,
    reconcile_recent_days,
    quarterly_reports_schedule,
    uk_reliability_yearly_schedule,
]
SENSORS = [late_data, run_failure_alert]
