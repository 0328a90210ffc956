"""Payments' jobs and schedules: the Stripe sync every hour, the reconciliation of the last 30 days
every night."""

import os
from datetime import UTC, timedelta

import dagster as dg

from pipelines.defs.payments import ingest_asset, reconciliation_asset
from pipelines.jobmeta import job_args, run_request
from pipelines.partitions import first_day

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

# refunds and disputes arrive days or weeks after the payment: reconcile the last 30 days again
RECONCILE_DAYS = 30


@dg.schedule(
    job=stripe_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour at :15: stripe_sync (skipped while STRIPE_API_KEY is not set).",
)
def stripe_hourly(context: dg.ScheduleEvaluationContext):
    if not os.environ.get("STRIPE_API_KEY"):
        return dg.SkipReason("STRIPE_API_KEY is not set in the code location's environment")
    hour = context.scheduled_execution_time.astimezone(UTC).strftime("%Y-%m-%dT%H")
    return run_request("stripe_hourly", f"stripe-{hour}")


@dg.schedule(
    job=reconciliation_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:00 UTC, after the hourly Stripe sync: reconciliation_daily for yesterday "
    "and the 29 days before it again (refunds and disputes arrive late).",
)
def reconcile_recent_days(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    today = context.scheduled_execution_time.astimezone(UTC).date()
    first = first_day()
    days = [today - timedelta(days=i) for i in range(1, RECONCILE_DAYS + 1)]
    return [
        run_request("reconcile_recent_days", f"reconcile-{today}-{day}", day.isoformat())
        for day in days
        if day >= first
    ]


JOBS = [stripe_job, reconciliation_job]
SCHEDULES = [stripe_hourly, reconcile_recent_days]
