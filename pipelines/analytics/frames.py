"""The frames the analytics functions take and return: names and dtypes are the contract
between the readers (pipelines/raw.py), the pure logic (this package) and the tables in schema
`analytics` (sql/003_analytics.sql).

All timestamps are `pl.Datetime("us", "UTC")`. A day partition D covers [D 00:00Z, D+1 00:00Z).
The readers deliver raw rows for a window wider than the day (see `RawWindow`), plus the last
state before the window so that intervals can be carried in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

TS = pl.Datetime("us", "UTC")

# -- inputs ---------------------------------------------------------------------------------------
TRANSACTIONS = {  # every transaction overlapping the window (start or stop in it, or spanning it)
    "charge_point_id": pl.String, "transaction_id": pl.String, "ocpp_version": pl.String,
    "evse_id": pl.Int32, "connector_id": pl.Int32, "id_token": pl.String,
    "start_ts": TS, "meter_start_wh": pl.Float64, "stop_ts": TS, "meter_stop_wh": pl.Float64,
    "stop_reason": pl.String,
}  # fmt: skip
METER = {  # meter_value rows in the window, measurands Energy.Active.Import.Register and
    # Power.Active.Import only (a reader may narrow further), phase '' (totals) only
    "ts": TS, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "transaction_id": pl.String, "measurand": pl.String, "context": pl.String, "value": pl.Float64,
}  # fmt: skip
STATUS = {  # status_event rows in the window, plus per connector the last one before it
    "ts": TS, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "status": pl.String, "error_code": pl.String,
}  # fmt: skip
CONNECTION = {  # connection_event rows (connect, disconnect, boot, heartbeat) in the window,
    # plus per charge point the last one before it
    "ts": TS, "charge_point_id": pl.String, "event": pl.String,
}  # fmt: skip
CHARGE_POINTS = {
    "charge_point_id": pl.String, "site_id": pl.String, "max_power_w": pl.Float64,
    "current_type": pl.String, "registered_at": TS,
}  # fmt: skip
CONNECTORS = {"charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32}
SITES = {  # operating_hours: JSON text {"mon": ["07:00", "19:00"], ...}, null = 24/7; a day
    # missing from a non-null object = closed that day. Times are the site's local time.
    "site_id": pl.String, "timezone": pl.String, "country": pl.String,
    "operating_hours": pl.String,
}  # fmt: skip
EXCLUSIONS = {  # outage_exclusion rows overlapping the window; evse_id/connector_id null = all
    "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "starts_at": TS, "ends_at": TS, "reason": pl.String,
}  # fmt: skip
TRANSACTION_EVENTS = {  # 2.0.1 TransactionEvents of the window's transactions that tell the EV
    # left (trigger_reason EVDeparted): evidence for the end of a session without a stop
    "ts": TS, "charge_point_id": pl.String, "transaction_id": pl.String,
    "trigger_reason": pl.String,
}  # fmt: skip


@dataclass(frozen=True)
class RawWindow:
    """Raw rows for one day partition. `day_start`/`day_end` bound the day; the frames cover
    [day_start - margin, day_end + margin) so sessions crossing midnight are whole."""

    day_start: datetime
    day_end: datetime
    transactions: pl.DataFrame
    meter: pl.DataFrame
    status: pl.DataFrame
    connection: pl.DataFrame
    charge_points: pl.DataFrame
    connectors: pl.DataFrame
    sites: pl.DataFrame
    exclusions: pl.DataFrame
    transaction_events: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=TRANSACTION_EVENTS)
    )


# -- outputs (one day partition each; `day` is a pl.Date) ---------------------------------------
SESSIONS = {  # one row per session whose start_ts falls in the day (UTC)
    "day": pl.Date, "session_id": pl.String,  # charge_point_id || ':' || transaction_id
    "charge_point_id": pl.String, "transaction_id": pl.String, "ocpp_version": pl.String,
    "site_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32, "id_token": pl.String,
    "start_ts": TS, "end_ts": TS,              # transaction start/stop; end_ts null when still open
    "end_source": pl.String,  # 'stop' | 'status' | 'ev_departed' | 'next_transaction' |
    # 'last_sample': the evidence end_ts comes from (sessions.py); null while open
    "plug_in_ts": TS, "plug_out_ts": TS,       # from statuses where they tell (else null)
    "charging_end_ts": TS,  # last sample with power > 0; start_ts when 0 Wh; else end_ts
    "duration_min": pl.Float64, "idle_min": pl.Float64,  # idle: charging end to plug-out/end
    "energy_wh": pl.Float64, "energy_source": pl.String,  # 'meter' | 'samples' | 'none'
    "peak_power_w": pl.Float64, "mean_power_w": pl.Float64,
    "missing_stop": pl.Boolean, "meter_reset": pl.Boolean, "energy_mismatch": pl.Boolean,
    "failed_attempt": pl.Boolean,  # nothing delivered (0 Wh) or no time (end = start): data
    "quarantined_steps": pl.Int32,  # register steps no connector could deliver: not counted
}  # fmt: skip
QUARANTINE = {  # per day: raw values the reconstruction refused to count, and why
    "day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "transaction_id": pl.String, "ts": TS, "value": pl.Float64, "previous": pl.Float64,
    "reason": pl.String,
}  # fmt: skip
UTILISATION = {  # per connector and UTC hour of the day; the minutes columns sum to 60
    "day": pl.Date, "hour_ts": TS, "charge_point_id": pl.String, "evse_id": pl.Int32,
    "connector_id": pl.Int32, "site_id": pl.String,
    "minutes_available": pl.Float64, "minutes_charging": pl.Float64,
    "minutes_suspended": pl.Float64, "minutes_occupied_other": pl.Float64,
    "minutes_faulted": pl.Float64, "minutes_unavailable": pl.Float64,
    "minutes_offline": pl.Float64, "minutes_unknown": pl.Float64,
    "occupancy_ratio": pl.Float64,   # (charging + suspended + occupied_other) / 60
    "charging_ratio": pl.Float64,    # charging / 60
}  # fmt: skip
UPTIME = {  # per port (connector) and day, 23 CFR 680.116(b)
    "day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "site_id": pl.String, "minutes_in_period": pl.Float64, "outage_minutes": pl.Float64,
    "excluded_minutes": pl.Float64, "uptime_pct": pl.Float64,
}  # fmt: skip
OUTAGES = {  # outage intervals clipped to the day
    "day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "site_id": pl.String, "start_ts": TS, "end_ts": TS, "duration_min": pl.Float64,
    "cause": pl.String,  # 'faulted' | 'unavailable' | 'offline'
    "excluded": pl.Boolean, "exclusion_reason": pl.String,  # reason or 'outside_operating_hours'
}  # fmt: skip
STATES = {  # per connector, non-overlapping intervals covering exactly [day_start, day_end)
    "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "start_ts": TS, "end_ts": TS,
    # available | charging | suspended | occupied_other | faulted | unavailable | offline | unknown
    "state": pl.String,
    "error_code": pl.String,  # for faulted, else null
}  # fmt: skip
UK_RELIABILITY = {  # per rapid (>= 50 kW) charge point and day: The Public Charge Point
    # Regulations 2023, reg. 6: a rapid charge point is operational when at least one of its
    # connectors is; reliability = operational minutes / minutes in period. closed_minutes: the
    # site closed (accessible = minutes_in_period - closed_minutes); offline_minutes: counted
    # inoperative minutes with a connector offline (see uptime.uk_reliability_daily)
    "day": pl.Date, "charge_point_id": pl.String, "site_id": pl.String,
    "minutes_in_period": pl.Float64, "inoperative_minutes": pl.Float64,
    "excluded_minutes": pl.Float64, "reliability_pct": pl.Float64,
    "closed_minutes": pl.Float64, "offline_minutes": pl.Float64,
}  # fmt: skip
ENERGY_CONNECTOR_DAY = {
    "day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "site_id": pl.String, "energy_kwh": pl.Float64, "sessions": pl.Int64,
}  # fmt: skip
ENERGY_SITE_DAY = {
    "day": pl.Date, "site_id": pl.String, "energy_kwh": pl.Float64, "sessions": pl.Int64,
    "peak_demand_kw": pl.Float64, "peak_demand_at": TS,  # max of the 15-minute load curve
}  # fmt: skip
LOAD_CURVE = {  # per site and 15-minute interval of the day: mean power delivered
    "day": pl.Date, "site_id": pl.String, "interval_start": TS, "energy_kwh": pl.Float64,
    "mean_kw": pl.Float64,
}  # fmt: skip
PEAK_USAGE = {  # per site, day and local hour: the raw material of hour-of-day x weekday views
    "day": pl.Date, "site_id": pl.String, "local_weekday": pl.Int8,  # 1 = Monday
    "local_hour": pl.Int8, "connector_hours": pl.Float64, "occupied_hours": pl.Float64,
    "charging_hours": pl.Float64, "energy_kwh": pl.Float64, "sessions_started": pl.Int64,
}  # fmt: skip
