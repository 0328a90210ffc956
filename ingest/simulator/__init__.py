"""OCPP fleet simulator: realistic charge points speaking OCPP 1.6J / 2.0.1 to the collector.

- `config`: FleetConfig, sites, tariffs, charge points; `default_fleet()`, `load_fleet(path)`.
- `calibration`: the workplace profile fitted to ACN-Data (JPL 2021); hand-set profiles otherwise.
- `behaviour`: pure timeline generation and ground truth (`generate_fleet`).
- `client`: the OCPP charge-point side replaying a timeline.
- `fleet`: `run_fleet` (compressed simulated time, shared clock).
- `load`: `load_meter_values`, the ingest benchmark's load generator.
"""

from .config import (
    ChargePointConfig,
    FleetConfig,
    SiteConfig,
    TariffConfig,
    default_fleet,
    load_fleet,
)
from .fleet import FleetSummary, run_fleet

__all__ = [
    "ChargePointConfig",
    "FleetConfig",
    "FleetSummary",
    "SiteConfig",
    "TariffConfig",
    "default_fleet",
    "load_fleet",
    "run_fleet",
]
