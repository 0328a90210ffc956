"""The Dagster code location (`[tool.dagster]`, `[tool.dg]`): the features' own `Definitions`
(`pipelines/defs/<feature>/definitions.py`), merged with the shared resources (database, Stripe,
reports folder, model store, SMTP, dashboard recipients, alerts) and the executor.

The night, in UTC, with every schedule on by default (`dg dev` runs them with its daemon): 00:30
the analytics of the day that ended; 01:30 maintenance features and scores; 02:00 the last 30
days reconciled again; 03:00 on the first day of a quarter (a year) the regulator files of the
one that ended; 06:00 and 07:00 the operator dashboards; Stripe every hour at :15; the late-data
sensor and the raw tables' freshness every 5 minutes; the run-failure alert every minute."""

from __future__ import annotations

import os

import dagster as dg

from pipelines.defs.alerts import definitions as alerts
from pipelines.defs.analytics import definitions as analytics
from pipelines.defs.dashboard import definitions as dashboard
from pipelines.defs.maintenance import definitions as maintenance
from pipelines.defs.payments import definitions as payments
from pipelines.defs.raw import definitions as raw
from pipelines.defs.reports import definitions as reports
from pipelines.resources import (
    AlertsResource,
    DashboardResource,
    DatabaseResource,
    ModelStoreResource,
    ReportsResource,
    SmtpResource,
    StripeResource,
)


def _secret(name: str) -> dg.EnvVar | str:
    """`dg.EnvVar(name)` where the variable is set, else empty (the resource then goes without:
    no SMTP login, no webhook) rather than a run that fails for a variable nobody needs."""
    return dg.EnvVar(name) if os.environ.get(name) else ""


defs = dg.Definitions.merge(
    raw.defs,
    analytics.defs,
    payments.defs,
    maintenance.defs,
    reports.defs,
    dashboard.defs,
    alerts.defs,
    # what every feature shares (one Definitions at module scope: Dagster loads only one)
    dg.Definitions(
        executor=dg.in_process_executor,  # a run is one process: see README, "The Dagster UI"
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
    ),
)
