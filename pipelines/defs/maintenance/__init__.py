"""Predictive maintenance assets (logic in `models/`)."""
