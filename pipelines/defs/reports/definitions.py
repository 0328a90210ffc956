"""The regulator files: EV-ChART modules, the compliance report, the UK reliability figures."""

import dagster as dg

from pipelines.defs.reports import evchart_asset, jobs, report_assets

defs = dg.Definitions(
    assets=[*evchart_asset.ASSETS, *report_assets.ASSETS],
    asset_checks=[*evchart_asset.CHECKS, *report_assets.CHECKS],
    jobs=jobs.JOBS,
    schedules=jobs.SCHEDULES,
)
