"""The regulator files' jobs and schedules: a quarter's EV-ChART files and compliance report, a
year's UK reliability figures, each at 03:00 UTC on the day after the period ended."""

from datetime import UTC, timedelta

import dagster as dg

from chargeops.periods import quarter_start
from pipelines.defs.reports import evchart_asset, report_assets
from pipelines.jobmeta import job_args, run_request
from pipelines.partitions import first_day

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


# The period that has just ended, at 03:00 UTC on its next day: after that day's analytics (00:30),
# maintenance (01:30) and reconciliation (02:00). (Dagster's build_schedule_from_partitioned_job
# would ask for the last partition, which with end_offset=1 is the period that has just begun.)
@dg.schedule(
    job=evchart_job,
    cron_schedule="0 3 1 1,4,7,10 *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="03:00 UTC on the first day of a quarter: quarterly_reports (EV-ChART files and "
    "the compliance report) for the quarter that ended.",
)
def quarterly_reports_schedule(context: dg.ScheduleEvaluationContext):
    ended = context.scheduled_execution_time.astimezone(UTC).date() - timedelta(days=1)
    key = quarter_start(ended)
    if key < quarter_start(first_day()):
        return dg.SkipReason(f"the quarter of {ended} is before the first partition")
    return run_request("quarterly_reports_schedule", f"quarter-{key}", key.isoformat())


@dg.schedule(
    job=uk_job,
    cron_schedule="0 3 1 1 *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="03:00 UTC on 1 January: uk_reliability_yearly for the year that ended.",
)
def uk_reliability_yearly_schedule(context: dg.ScheduleEvaluationContext):
    ended = context.scheduled_execution_time.astimezone(UTC).date() - timedelta(days=1)
    key = ended.replace(month=1, day=1)
    if key.year < first_day().year:
        return dg.SkipReason(f"{key.year} is before the first partition")
    return run_request("uk_reliability_yearly_schedule", f"year-{key.year}", key.isoformat())


# the names the README and older code used
quarterly_reports, uk_yearly = quarterly_reports_schedule, uk_reliability_yearly_schedule


JOBS = [evchart_job, uk_job]
SCHEDULES = [quarterly_reports_schedule, uk_reliability_yearly_schedule]
