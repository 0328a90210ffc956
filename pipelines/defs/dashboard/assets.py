"""The operator dashboard as Dagster assets: `operator_dashboard_daily` (daily partitions, sent
each morning for the last day whole in every site's local time) and `operator_dashboard_weekly`
(ISO weeks, sent once the week is whole in every site's local time: Monday, or Tuesday with a
site west of UTC). Each writes every audience's files and, where SMTP is configured and the
audience has recipients, mails it; a partition re-run mails only those who did not get it.

The at-risk list follows the latest model card in `model_store` (the model's list only while it
beats the fault-count baseline); days an upstream asset did not compute are named in the
dashboards' banner and in the metadata (`incomplete`)."""

from datetime import UTC, date

import dagster as dg
import polars as pl

from chargeops.periods import day_period, iso_week
from models import artifacts
from pipelines import metadata as md
from pipelines.jobmeta import job_args, run_request
from pipelines.partitions import daily, weekly
from pipelines.resources import (
    DashboardResource,
    DatabaseResource,
    ModelStoreResource,
    ReportsResource,
    SmtpResource,
)
from reports import dashboard

GROUP = "dashboard"
UPSTREAM = [
    "sessions", "energy", "utilisation", "peak_usage", "uptime", "expected_revenue",
    "reconciliation", "emissions", "maintenance_features", "maintenance_scores",
]  # fmt: skip


class DashboardConfig(dg.Config):
    send: bool = True  # False: write the files only (a dry run)
    resend: bool = False  # mail audiences that already got this period's dashboard again


def _materialize(
    context: dg.AssetExecutionContext,
    period,
    config: DashboardConfig,
    database: DatabaseResource,
    reports: ReportsResource,
    smtp: SmtpResource,
    recipients: DashboardResource,
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    url = database.resolved_url()
    smtp_config = smtp.config()
    audiences = recipients.audiences(dashboard.site_names(url))
    results = dashboard.run(
        url, reports.path(), period, audiences,
        smtp=smtp_config, send=config.send, resend=config.resend,
        model_card=artifacts.load_card(model_store.path()), log=context.log.info,
    )  # fmt: skip
    network = next((r for r in results if r.audience.scope == "operator"), results[0])
    h = network.headline
    if network.incomplete:
        context.log.warning("incomplete data: " + "; ".join(network.incomplete))
    audiences = pl.DataFrame(
        {
            "audience": [r.audience.key for r in results],
            "status": [r.status for r in results],
            "recipients": [len(r.accepted) or len(r.audience.to) for r in results],
            "subject": [r.subject for r in results],
        },
        schema={"audience": pl.String, "status": pl.String, "recipients": pl.Int64,
                "subject": pl.String},
    )  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "period": period.label,
            "folder": dg.MetadataValue.path(str(network.folder.parent)),
            "audiences": md.preview(audiences, audiences.height),
            "sent": sum(r.status == "sent" for r in results),
            "smtp": "not configured" if smtp_config is None else f"{smtp_config.host}",
            "preview": dg.MetadataValue.path(str(network.folder / "email.html")),
            # the network's headline figures (sessions, energy_kwh, uptime_pct, ...): null where
            # the figure's asset computed none of the period's days, never 0
            **md.numbers(h),
            "incomplete": dg.MetadataValue.json(network.incomplete),
        }
    )


@dg.asset(
    partitions_def=daily,
    group_name=GROUP,
    kinds={"html", "email"},
    deps=UPSTREAM,
    code_version="1",
    description="The operator dashboard for the day against the day before, per operator and "
    "site: email body (inline PNG charts) + interactive HTML attachment, written under "
    "<reports>/<day>/dashboard/ and mailed where SMTP and recipients are configured.",
)
def operator_dashboard_daily(
    context: dg.AssetExecutionContext,
    config: DashboardConfig,
    database: DatabaseResource,
    reports: ReportsResource,
    smtp: SmtpResource,
    dashboard_recipients: DashboardResource,
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    period = day_period(date.fromisoformat(context.partition_key))
    return _materialize(
        context, period, config, database, reports, smtp, dashboard_recipients, model_store
    )


@dg.asset(
    partitions_def=weekly,
    group_name=GROUP,
    kinds={"html", "email"},
    deps=UPSTREAM,
    code_version="1",
    description="The operator dashboard for the ISO week (Monday to Sunday) against the week "
    "before; files under <reports>/<year>-W<week>/dashboard/, mailed as the daily one.",
)
def operator_dashboard_weekly(
    context: dg.AssetExecutionContext,
    config: DashboardConfig,
    database: DatabaseResource,
    reports: ReportsResource,
    smtp: SmtpResource,
    dashboard_recipients: DashboardResource,
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    period = iso_week(date.fromisoformat(context.partition_key))
    return _materialize(
        context, period, config, database, reports, smtp, dashboard_recipients, model_store
    )


daily_job = dg.define_asset_job(
    "operator_dashboard_daily_job",
    selection=[operator_dashboard_daily],
    **job_args(
        "dashboard",
        "The daily operator dashboard of one day, per audience: files under "
        "<reports>/<day>/dashboard/, mailed where SMTP and recipients are set. Schedule "
        "dashboard_daily (06:00 UTC).",
    ),
)
weekly_job = dg.define_asset_job(
    "operator_dashboard_weekly_job",
    selection=[operator_dashboard_weekly],
    **job_args(
        "dashboard",
        "The weekly operator dashboard of one ISO week, per audience, mailed as the daily one. "
        "Schedule dashboard_weekly (07:00 UTC, once the week is whole in every site's zone).",
    ),
)


def _request(
    context: dg.ScheduleEvaluationContext, database: DatabaseResource, weekly: bool
) -> dg.RunRequest | dg.SkipReason:
    today = context.scheduled_execution_time.astimezone(UTC).date()
    zones = dashboard.site_zones(database.resolved_url())
    period = dashboard.new_period(weekly, today, zones)
    if period is None:
        return dg.SkipReason(
            f"no new {'week' if weekly else 'day'} is whole yet in every site's local time "
            f"({', '.join(zones)})"
        )
    trigger = "dashboard_weekly" if weekly else "dashboard_daily"
    return run_request(trigger, f"dashboard-{period.label}", period.start.isoformat())


@dg.schedule(
    job=daily_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="06:00 UTC, after the night's analytics (00:30) and reconciliation (02:00): "
    "the daily dashboard of the last local day whose UTC partitions are all computed "
    "(yesterday; the day before when a site is west of UTC), once per day.",
)
def dashboard_daily(context: dg.ScheduleEvaluationContext, database: DatabaseResource):
    return _request(context, database, weekly=False)


@dg.schedule(
    job=weekly_job,
    cron_schedule="0 7 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="07:00 UTC every day: the weekly dashboard of the ISO week that has just become "
    "whole in every site's local time, once (Monday; Tuesday when a site is west of UTC).",
)
def dashboard_weekly(context: dg.ScheduleEvaluationContext, database: DatabaseResource):
    return _request(context, database, weekly=True)


ASSETS = [operator_dashboard_daily, operator_dashboard_weekly]
JOBS = [daily_job, weekly_job]
SCHEDULES = [dashboard_daily, dashboard_weekly]
