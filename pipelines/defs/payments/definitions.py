"""Payments: the Stripe sync and the reconciliation, with their checks, jobs and schedules."""

import dagster as dg

from pipelines.defs.payments import ingest_asset, jobs, reconciliation_asset

defs = dg.Definitions(
    assets=[*ingest_asset.ASSETS, *reconciliation_asset.ASSETS],
    asset_checks=reconciliation_asset.CHECKS,
    jobs=jobs.JOBS,
    schedules=jobs.SCHEDULES,
)
