"""Payments: Stripe into the raw tables, reconciled against expected revenue."""
