"""Regulator-ready report files (builders in `reports/`)."""
