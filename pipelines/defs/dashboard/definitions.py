"""The operator dashboards (daily and weekly), their jobs and schedules."""

import dagster as dg

from pipelines.defs.dashboard import assets

defs = dg.Definitions(assets=assets.ASSETS, jobs=assets.JOBS, schedules=assets.SCHEDULES)
