"""The Dagster code location (`[tool.dagster] module_name`): the analytics assets, their
Great Expectations checks, the database resource, the daily schedule and the late-data sensor."""

from __future__ import annotations

import dagster as dg

from pipelines.assets import ASSETS
from pipelines.automation import analytics_job, late_data, previous_day
from pipelines.checks import CHECKS
from pipelines.resources import DatabaseResource

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[analytics_job],
    schedules=[previous_day],
    sensors=[late_data],
    resources={"database": DatabaseResource()},
)
