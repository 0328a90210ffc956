"""Features per connector per day for predictive maintenance: pure functions over polars frames.

The same code runs on the real tables (read by `pipelines/defs/maintenance/assets.py`) and on the synthetic
history (`models/synthetic.py`); the input contracts below are the meeting point. A feature row
for day D uses only events with a timestamp before D + 1 (00:00 UTC): every aggregate is a
trailing window ending with day D, so a scoring day never sees its own future.

Inputs (timestamps `pl.Datetime("us", "UTC")`; a connector is (charge_point_id, evse_id,
connector_id)):

| frame | rows | from |
| --- | --- | --- |
| CONNECTORS | one per connector: model, firmware (latest known), rated power, first seen | `connector` + `charge_point` |
| FAULTS | each Faulted status with its error code | `status_event` |
| SESSIONS | each session: start, duration, energy, peak power | `analytics.sessions` |
| CONNECTION | connect / disconnect / boot / heartbeat per charge point | `connection_event` |
| FIRMWARE | firmware reported at each boot | `connection_event` boot `detail` |
| OFFLINE | offline minutes per connector and day | `analytics.utilisation_hourly` |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

TS = pl.Datetime("us", "UTC")
KEY = ["charge_point_id", "evse_id", "connector_id"]
_KEY_TYPES = {"charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32}

CONNECTORS = {
    **_KEY_TYPES, "model": pl.String, "firmware_version": pl.String,
    "rated_power_w": pl.Float64,  # connector max power, else the charge point's
    "first_seen_at": TS,  # commissioning: the earlier of connector first seen and registration
}  # fmt: skip
FAULTS = {"ts": TS, **_KEY_TYPES, "error_code": pl.String}
SESSIONS = {
    **_KEY_TYPES, "start_ts": TS, "duration_min": pl.Float64, "energy_wh": pl.Float64,
    "peak_power_w": pl.Float64,
}  # fmt: skip
CONNECTION = {"ts": TS, "charge_point_id": pl.String, "event": pl.String}
FIRMWARE = {"ts": TS, "charge_point_id": pl.String, "firmware_version": pl.String}
OFFLINE = {"day": pl.Date, **_KEY_TYPES, "minutes_offline": pl.Float64}

# OCPP 1.6 ChargePointErrorCode values (less NoError); 2.0.1 codes outside the list and
# OtherError count as "other".
ERROR_CODES = (
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature",
    "InternalError", "LocalListConflict", "OverCurrentFailure", "OverVoltage",
    "PowerMeterFailure", "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage",
    "WeakSignal",
)  # fmt: skip
FAILED_START_MAX_MIN = 2.0  # a session shorter than this ...
FAILED_START_MAX_WH = 100.0  # ... or delivering less than this is a failed start
WINDOWS = (1, 7, 30)
LOOKBACK_DAYS = 90  # how much history a reader should deliver before the first feature day


def _slug(code: str) -> str:
    out = []
    for i, ch in enumerate(code):
        if ch.isupper() and i and (not code[i - 1].isupper() or code[i + 1 : i + 2].islower()):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


CODE_SLUGS = [_slug(c) for c in ERROR_CODES] + ["other"]

NUMERIC_FEATURES = (
    [f"faults_{w}d" for w in WINDOWS]
    + [f"faults_{w}d_{s}" for s in CODE_SLUGS for w in WINDOWS]
    + [
        "sessions_3d", "sessions_7d", "sessions_30d", "energy_kwh_7d", "energy_kwh_30d",
        "failed_starts_1d", "failed_starts_3d", "failed_starts_7d", "failed_starts_30d",
        "failed_start_rate_3d", "failed_start_rate_7d", "failed_start_rate_30d",
        "peak_ratio_3d", "peak_ratio_7d", "peak_ratio_30d", "derate_trend",
        "reconnects_7d", "boots_7d", "offline_min_1d", "offline_min_7d",
        "heartbeat_gap_max_min_1d", "heartbeat_gap_max_min_7d",
        "days_since_fault", "days_since_firmware_change", "connector_age_days",
    ]
)  # fmt: skip
CATEGORICAL_FEATURES = ["model", "firmware_version"]
FEATURE_COLUMNS = NUMERIC_FEATURES + CATEGORICAL_FEATURES
FEATURES = {  # the output: one row per connector and day (analytics.maintenance_features)
    "day": pl.Date, **_KEY_TYPES,
    **{c: pl.Float64 for c in NUMERIC_FEATURES},
    **{c: pl.String for c in CATEGORICAL_FEATURES},
}  # fmt: skip


@dataclass(frozen=True)
class FeatureInputs:
    connectors: pl.DataFrame
    faults: pl.DataFrame
    sessions: pl.DataFrame
    connection: pl.DataFrame
    firmware: pl.DataFrame
    offline: pl.DataFrame

    @classmethod
    def empty(cls) -> FeatureInputs:
        return cls(*(pl.DataFrame(schema=s) for s in _INPUT_SCHEMAS))

    def conformed(self) -> FeatureInputs:
        """Every frame cast to its contract (missing columns are an error, extra ones dropped)."""
        return FeatureInputs(
            *(
                df.select([pl.col(c).cast(t) for c, t in schema.items()])
                for df, schema in zip(self._frames(), _INPUT_SCHEMAS, strict=True)
            )
        )

    def _frames(self) -> tuple[pl.DataFrame, ...]:
        return (
            self.connectors, self.faults, self.sessions, self.connection, self.firmware,
            self.offline,
        )  # fmt: skip

    def until(self, day: date) -> FeatureInputs:
        """Only what was known by the end of `day` (a test helper and a guard)."""
        end = _day_end(day)
        return FeatureInputs(
            self.connectors,
            self.faults.filter(pl.col("ts") < end),
            self.sessions.filter(pl.col("start_ts") < end),
            self.connection.filter(pl.col("ts") < end),
            self.firmware.filter(pl.col("ts") < end),
            self.offline.filter(pl.col("day") <= day),
        )


_INPUT_SCHEMAS = (CONNECTORS, FAULTS, SESSIONS, CONNECTION, FIRMWARE, OFFLINE)


def _day_end(day: date):
    from datetime import UTC, datetime, time

    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def _utc_day(col: str) -> pl.Expr:
    return pl.col(col).dt.convert_time_zone("UTC").dt.date().alias("day")


def _grid(connectors: pl.DataFrame, first: date, last: date) -> pl.DataFrame:
    days = pl.DataFrame({"day": pl.date_range(first, last, "1d", eager=True)})
    return connectors.select(KEY).unique().join(days, how="cross").sort([*KEY, "day"])


def _daily_faults(faults: pl.DataFrame) -> pl.DataFrame:
    slug = pl.col("error_code").replace_strict(
        dict(zip(ERROR_CODES, CODE_SLUGS, strict=False)), default="other"
    )
    df = faults.with_columns(_utc_day("ts"), slug.alias("code"))
    total = df.group_by([*KEY, "day"]).agg(pl.len().cast(pl.Float64).alias("f_total"))
    by_code = [
        df.filter(pl.col("code") == s)
        .group_by([*KEY, "day"])
        .agg(pl.len().cast(pl.Float64).alias(f"f_{s}"))
        for s in CODE_SLUGS
    ]
    out = total
    for part in by_code:
        out = out.join(part, on=[*KEY, "day"], how="left")
    return out


def _daily_sessions(sessions: pl.DataFrame, connectors: pl.DataFrame) -> pl.DataFrame:
    failed = (pl.col("duration_min") < FAILED_START_MAX_MIN) | (
        pl.col("energy_wh").fill_null(0) < FAILED_START_MAX_WH
    )
    ratio = pl.col("peak_power_w") / pl.col("rated_power_w")
    good_ratio = pl.when(~failed & ratio.is_finite() & (ratio > 0)).then(ratio)
    return (
        sessions.join(connectors.select(*KEY, "rated_power_w"), on=KEY, how="left")
        .with_columns(_utc_day("start_ts"), failed.alias("failed"), good_ratio.alias("ratio"))
        .group_by([*KEY, "day"])
        .agg(
            pl.len().cast(pl.Float64).alias("s_n"),
            (pl.col("energy_wh").fill_null(0).clip(lower_bound=0).sum() / 1000).alias("s_kwh"),
            pl.col("failed").sum().cast(pl.Float64).alias("s_failed"),
            pl.col("ratio").sum().alias("s_ratio_sum"),
            pl.col("ratio").count().cast(pl.Float64).alias("s_ratio_n"),
        )
    )


def _daily_connection(connection: pl.DataFrame) -> pl.DataFrame:
    """Per charge point and day: reconnects, boots, and the longest silence ending that day (any
    connection event ends a silence; a heartbeat every interval is the normal pulse)."""
    df = connection.sort("charge_point_id", "ts").with_columns(
        (
            (pl.col("ts") - pl.col("ts").shift(1).over("charge_point_id")).dt.total_seconds() / 60
        ).alias("gap"),
        _utc_day("ts"),
    )
    return df.group_by("charge_point_id", "day").agg(
        (pl.col("event") == "connect").sum().cast(pl.Float64).alias("c_reconnects"),
        (pl.col("event") == "boot").sum().cast(pl.Float64).alias("c_boots"),
        pl.col("gap").max().alias("c_gap"),
    )


def _firmware_changes(firmware: pl.DataFrame) -> pl.DataFrame:
    """Per charge point, the days its reported firmware differed from the previous report."""
    df = firmware.filter(pl.col("firmware_version").is_not_null()).sort("charge_point_id", "ts")
    prev = pl.col("firmware_version").shift(1).over("charge_point_id")
    return df.with_columns(
        _utc_day("ts"), changed=prev.is_not_null() & (prev != pl.col("firmware_version"))
    )


def _roll(col: str, w: int) -> pl.Expr:
    return pl.col(col).fill_null(0).rolling_sum(window_size=w, min_samples=1).over(KEY)


def build_features(inputs: FeatureInputs, first: date, last: date) -> pl.DataFrame:
    """Feature rows (contract FEATURES) for every connector commissioned by each day in
    [first, last]. History before `first` counts as far as the inputs reach back."""
    inp = inputs.conformed()
    if inp.connectors.is_empty() or last < first:
        return pl.DataFrame(schema=FEATURES)
    starts = [first - timedelta(days=max(WINDOWS) - 1)]
    for df, col in ((inp.faults, "ts"), (inp.sessions, "start_ts"), (inp.connection, "ts")):
        if df.height:
            earliest = df.select(pl.col(col).min().dt.convert_time_zone("UTC").dt.date()).item()
            starts.append(earliest)
    grid = _grid(inp.connectors, min(min(starts), first), last)
    # a Faulted status of the charge point itself (EVSE 0) counts for each of its connectors
    whole = inp.faults.filter(pl.col("evse_id") == 0).drop("evse_id", "connector_id")
    faults = pl.concat(
        [
            inp.faults.filter(pl.col("evse_id") != 0),
            whole.join(inp.connectors.select(KEY), on="charge_point_id").select(list(FAULTS)),
        ]
    )
    keys = [*KEY, "day"]
    df = (
        grid.join(_daily_faults(faults), on=keys, how="left")
        .join(_daily_sessions(inp.sessions, inp.connectors), on=keys, how="left")
        .join(_daily_connection(inp.connection), on=["charge_point_id", "day"], how="left")
        .join(inp.offline.group_by(keys).agg(pl.col("minutes_offline").sum()), on=keys, how="left")
    )
    fw = _firmware_changes(inp.firmware)
    fw_change_day = (
        fw.filter("changed")
        .group_by("charge_point_id", "day")
        .agg(pl.lit(True).alias("fw_changed"))
    )
    fw_last = fw.group_by("charge_point_id", "day").agg(
        pl.col("firmware_version").last().alias("fw")
    )
    df = df.join(fw_change_day, on=["charge_point_id", "day"], how="left").join(
        fw_last, on=["charge_point_id", "day"], how="left"
    )
    df = df.sort(keys)
    rolled = [
        *(_roll("f_total", w).alias(f"faults_{w}d") for w in WINDOWS),
        *(_roll(f"f_{s}", w).alias(f"faults_{w}d_{s}") for s in CODE_SLUGS for w in WINDOWS),
        *(_roll("s_n", w).alias(f"sessions_{w}d") for w in (3, 7, 30)),
        *(_roll("s_kwh", w).alias(f"energy_kwh_{w}d") for w in (7, 30)),
        *(_roll("s_failed", w).alias(f"failed_starts_{w}d") for w in (1, 3, 7, 30)),
        *(_roll("s_ratio_sum", w).alias(f"_ratio_sum_{w}") for w in (3, 7, 30)),
        *(_roll("s_ratio_n", w).alias(f"_ratio_n_{w}") for w in (3, 7, 30)),
        _roll("c_reconnects", 7).alias("reconnects_7d"),
        _roll("c_boots", 7).alias("boots_7d"),
        pl.col("minutes_offline").fill_null(0).alias("offline_min_1d"),
        _roll("minutes_offline", 7).alias("offline_min_7d"),
        pl.col("c_gap").alias("heartbeat_gap_max_min_1d"),
        pl.col("c_gap").rolling_max(window_size=7, min_samples=1).over(KEY)
        .alias("heartbeat_gap_max_min_7d"),
        pl.when(pl.col("f_total") > 0).then(pl.col("day")).forward_fill().over(KEY)
        .alias("_last_fault"),
        pl.when(pl.col("fw_changed")).then(pl.col("day")).forward_fill().over(KEY)
        .alias("_last_fw_change"),
        pl.col("fw").forward_fill().over(KEY).alias("_fw"),
    ]  # fmt: skip
    df = df.with_columns(rolled)

    def rate(num: str, den: str) -> pl.Expr:
        return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den))

    def days_since(col: str) -> pl.Expr:
        return (pl.col("day") - pl.col(col)).dt.total_days().cast(pl.Float64)

    df = df.with_columns(
        rate("failed_starts_3d", "sessions_3d").alias("failed_start_rate_3d"),
        rate("failed_starts_7d", "sessions_7d").alias("failed_start_rate_7d"),
        rate("failed_starts_30d", "sessions_30d").alias("failed_start_rate_30d"),
        rate("_ratio_sum_3", "_ratio_n_3").alias("peak_ratio_3d"),
        rate("_ratio_sum_7", "_ratio_n_7").alias("peak_ratio_7d"),
        rate("_ratio_sum_30", "_ratio_n_30").alias("peak_ratio_30d"),
        days_since("_last_fault").alias("days_since_fault"),
        days_since("_last_fw_change").alias("days_since_firmware_change"),
    ).with_columns(rate("peak_ratio_3d", "peak_ratio_30d").alias("derate_trend"))
    df = df.filter(pl.col("day").is_between(first, last)).join(inp.connectors, on=KEY, how="left")
    day_end = pl.col("day").cast(pl.Datetime("us")).dt.replace_time_zone("UTC") + pl.duration(
        days=1
    )
    df = df.with_columns(
        ((day_end - pl.col("first_seen_at")).dt.total_seconds() / 86400).alias(
            "connector_age_days"
        ),
        pl.coalesce("_fw", "firmware_version").alias("firmware_version"),
    ).filter(pl.col("first_seen_at").is_null() | (pl.col("connector_age_days") > 0))
    return df.select([pl.col(c).cast(t) for c, t in FEATURES.items()]).sort(keys)
