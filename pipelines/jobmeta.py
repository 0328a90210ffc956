"""What every chargeops job carries, so the UI can filter and trace runs: a description, its
stage (tag `chargeops/stage`: raw, analytics, payments, maintenance, reports, dashboard) and its owner
(Dagster's `owners=`, shown on the job's page)."""

import warnings

import dagster as dg

OWNERS = ["team:data"]
STAGE_TAG = "chargeops/stage"
TRIGGER_TAG = "chargeops/trigger"  # on runs a schedule or sensor requested: which one
STAGES = ("raw", "analytics", "payments", "maintenance", "reports", "dashboard")

# owners on jobs are a Dagster beta parameter (assets' owners are not): the UI shows them
warnings.filterwarnings("ignore", message=r"Parameter `owners` of .* is currently in beta")


def job_args(stage: str, description: str, **tags: str) -> dict:
    """Keyword arguments of `dg.define_asset_job` for a job of `stage`."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of {', '.join(STAGES)}")
    return {"description": description, "tags": {STAGE_TAG: stage, **tags}, "owners": OWNERS}


def run_request(trigger: str, run_key: str, partition_key: str | None = None) -> dg.RunRequest:
    """A schedule's or sensor's run request, tagged with the schedule or sensor that asked."""
    return dg.RunRequest(run_key=run_key, partition_key=partition_key, tags={TRIGGER_TAG: trigger})
