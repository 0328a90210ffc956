"""The Dagster code location (`[tool.dagster] module_name`): every asset with its checks, the
resources (database, Stripe, reports folder, model store, SMTP, dashboard recipients), the jobs,
schedules and the late-data sensor."""

from __future__ import annotations

import dagster as dg

from pipelines import (
    automation,
    dashboard_asset,
    emissions_asset,
    evchart_asset,
    maintenance,
    report_assets,
)
from pipelines.assets import ASSETS
from pipelines.checks import CHECKS
from pipelines.payments import ingest_asset, reconciliation_asset
from pipelines.resources import (
    DashboardResource,
    DatabaseResource,
    ModelStoreResource,
    ReportsResource,
    SmtpResource,
    StripeResource,
)

ALL_ASSETS = [
    *ASSETS,
    *emissions_asset.ASSETS,
    *ingest_asset.ASSETS,
    *reconciliation_asset.ASSETS,
    *evchart_asset.ASSETS,
    *report_assets.ASSETS,
    *maintenance.ASSETS,
    *dashboard_asset.ASSETS,
]
ALL_CHECKS = [
    *CHECKS,
    *emissions_asset.CHECKS,
    *reconciliation_asset.CHECKS,
    *evchart_asset.CHECKS,
    *report_assets.CHECKS,
    *maintenance.CHECKS,
]

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    executor=dg.in_process_executor,  # a run is one process: see README, "The Dagster UI"
    jobs=[
        automation.analytics_job,
        automation.stripe_job,
        automation.reconciliation_job,
        automation.evchart_job,
        automation.uk_job,
        *maintenance.JOBS,
        *dashboard_asset.JOBS,
    ],
    schedules=[
        automation.previous_day,
        automation.stripe_hourly,
        automation.reconcile_recent_days,
        automation.quarterly_reports,
        automation.uk_yearly,
        *maintenance.SCHEDULES,
        *dashboard_asset.SCHEDULES,
    ],
    sensors=[automation.late_data],
    resources={
        "database": DatabaseResource(),
        "stripe": StripeResource(),
        "reports": ReportsResource(),
        "model_store": ModelStoreResource(),
        "smtp": SmtpResource(),
        "dashboard_recipients": DashboardResource(),
    },
)
