"""Payments: Stripe ingestion with Stripe's SDK (`sync`, `ingest_asset`), a local server that
speaks Stripe's API for the demo and the tests (`local_stripe`, `seed`), and the revenue
reconciliation (`reconcile`)."""
