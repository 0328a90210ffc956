"""The daily analytics: assets, their checks, the job, its schedule and the late-data sensor."""

import dagster as dg

from pipelines.defs.analytics import assets, checks, emissions_asset, jobs

defs = dg.Definitions(
    assets=[*assets.ASSETS, *emissions_asset.ASSETS],
    asset_checks=[*checks.CHECKS, *emissions_asset.CHECKS],
    jobs=jobs.JOBS,
    schedules=jobs.SCHEDULES,
    sensors=jobs.SENSORS,
)
