"""Alerts to the data team: the run-failure sensor."""

import dagster as dg

from pipelines.defs.alerts import sensors

defs = dg.Definitions(sensors=sensors.SENSORS)
