"""What every chargeops job carries, so the UI can filter and trace runs: a description, its
stage (tag `chargeops/stage`: raw, analytics, payments, maintenance, reports, dashboard) and its owner
(Dagster's `owners=`, shown on the job's page)."""

import warnings

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
