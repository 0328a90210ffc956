"""The run-failure alert: the data team hears of a failed run by mail and webhook."""

import dagster as dg

from pipelines.defs.alerts.delivery import deliver, failure_of
from pipelines.resources import AlertsResource, SmtpResource


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
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


SENSORS = [run_failure_alert]
