"""Predictive maintenance: features, training and scoring over polars frames."""
