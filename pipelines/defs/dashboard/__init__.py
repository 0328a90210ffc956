"""The emailed operator dashboards (builders in `reports/`)."""
