"""The Dagster code location (`[tool.dagster] module_name`): every asset with its checks, the
resources (database, Stripe, reports folder, model store, SMTP, dashboard recipients, alerts),
the jobs, schedules and sensors (late data, run failures)."""

from __future__ import annotations

import os

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
    AlertsResource,
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


def _secret(name: str) -> dg.EnvVar | str:
    """`dg.EnvVar(name)` where the variable is set, else empty (the resource then goes without:
    no SMTP login, no webhook) rather than a run that fails for a variable nobody needs."""
    return dg.EnvVar(name) if os.environ.get(name) else ""


defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    executor=dg.in_process_executor,  # a run is one process: see README, "The Dagster UI"
    jobs=[*automation.JOBS, *maintenance.JOBS, *dashboard_asset.JOBS],
    schedules=[*automation.SCHEDULES, *maintenance.SCHEDULES, *dashboard_asset.SCHEDULES],
    sensors=automation.SENSORS,
    resources={
        "database": DatabaseResource(),
        # secrets as environment variables: the UI and the runs' snapshots show the variable's
        # name, the value is read where the run executes
        "stripe": StripeResource(api_key=dg.EnvVar("STRIPE_API_KEY")),
        "reports": ReportsResource(),
        "model_store": ModelStoreResource(),
        "smtp": SmtpResource(password=_secret("CHARGEOPS_SMTP_PASSWORD")),
        "dashboard_recipients": DashboardResource(),
        "alerts": AlertsResource(webhook_url=_secret("CHARGEOPS_ALERT_WEBHOOK")),
    },
)
