"""Predictive maintenance: features, model and scores, with the model's check, jobs, schedules."""

import dagster as dg

from pipelines.defs.maintenance import assets

defs = dg.Definitions(
    assets=assets.ASSETS,
    asset_checks=assets.CHECKS,
    jobs=assets.JOBS,
    schedules=assets.SCHEDULES,
)
