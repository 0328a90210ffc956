"""Connector state intervals for one day: what every connector was doing at every instant.

`connector_states` turns raw status notifications, connection events and meter samples into
non-overlapping intervals that cover the day exactly (frame STATES). The rules, in order of
precedence at any instant t:

1. offline: the charge point is offline
   - from a `disconnect` connection event until the next `connect` or `boot` (events at the same
     instant: the disconnect is taken first, so a reconnect in the same microsecond is online), or
   - when nothing was heard from it for more than `heartbeat_timeout_s`: signs of life are
     connection events other than `disconnect`/`refused` (heartbeat, connect, boot, firmware or
     diagnostics status, NotifyEvent, ...), status rows (any connector, connector 0 included) and
     meter rows, by their timestamps. After a silence longer than the timeout, the charge point
     is offline from last_seen + timeout until the next sign of life (or the end of the day).
2. a Faulted or Unavailable status on connector 0 (1.6 `connectorId` 0, stored as EVSE 0,
   connector 0) makes every connector of that charge point faulted/unavailable until connector 0
   reports another status; the connectors then fall back to their own last status.
3. the connector's own last status: Available -> available, Charging -> charging,
   SuspendedEV/SuspendedEVSE -> suspended, Preparing/Finishing/Reserved/Occupied -> occupied_other,
   Faulted -> faulted, Unavailable -> unavailable, anything else or no status yet -> unknown.
   2.0.1 `Occupied` (reported for a whole session) is refined: it counts as charging while the
   connector's transaction has a Power.Active.Import sample > 0 in force (a sample's value holds
   until the transaction's next power sample or its stop). A transaction that sends no power
   samples uses its energy register instead: from one register sample to the next counts as
   charging when the register increased. 1.6 statuses are trusted as they are.

State is carried in: status rows and connection events before the day (the readers deliver the
last ones before the window) decide the state at day_start. `error_code` is the status's error
code for faulted intervals (connector 0's for an override), null otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from pipelines.analytics.frames import STATES, TS, RawWindow

KEY = ["charge_point_id", "evse_id", "connector_id"]
CP = "charge_point_id"
POWER = "Power.Active.Import"
REGISTER = "Energy.Active.Import.Register"

STATUS_STATE = {
    "Available": "available",
    "Charging": "charging",
    "SuspendedEV": "suspended",
    "SuspendedEVSE": "suspended",
    "Preparing": "occupied_other",
    "Finishing": "occupied_other",
    "Reserved": "occupied_other",
    "Occupied": "occupied_other",
    "Faulted": "faulted",
    "Unavailable": "unavailable",
}
# connection events that are not a sign of life: the socket closing, a refused handshake
NOT_ALIVE = ["disconnect", "refused"]


def utc(dt: datetime) -> datetime:
    """An aware UTC datetime (a naive one is read as UTC)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def day_bounds(window: RawWindow) -> tuple[datetime, datetime]:
    return utc(window.day_start), utc(window.day_end)


def _last_per_instant(df: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Sorted by `by` + ts, one row per (by, ts): the last one in the frame's order."""
    return df.unique(subset=[*by, "ts"], keep="last", maintain_order=True).sort([*by, "ts"])


def _asof(left: pl.DataFrame, right: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Backward as-of join on ts within `by` (both sides sorted by `by` + ts)."""
    return left.join_asof(right, on="ts", by=by, check_sortedness=False)


def connector_list(window: RawWindow) -> pl.DataFrame:
    """Connectors (connector_id > 0) of `window.connectors` plus any seen only in status rows."""
    return (
        pl.concat(
            [
                window.connectors.select(KEY),
                window.status.select(KEY),
            ]
        )
        .filter(pl.col("connector_id") > 0)
        .unique()
        .sort(KEY)
    )


def _link_timeline(connection: pl.DataFrame) -> pl.DataFrame:
    """(charge point, ts, disconnected): True from a disconnect until the next connect/boot."""
    return (
        connection.filter(pl.col("event").is_in(["connect", "boot", "disconnect"]))
        .select(CP, "ts", (pl.col("event") == "disconnect").alias("disconnected"))
        .sort([CP, "ts", "disconnected"], descending=[False, False, True])
        .pipe(_last_per_instant, [CP])
    )


def _silence_timeline(window: RawWindow, timeout_s: float) -> pl.DataFrame:
    """(charge point, ts, silent): True from last_seen + timeout until the next sign of life.

    Only for charge points that speak OCPP to us (a connection event in or before the window):
    imported history (`chargeops import`) has no heartbeat to miss, so its silence between
    sessions is not an outage."""
    alive = (
        pl.concat(
            [
                window.connection.filter(~pl.col("event").is_in(NOT_ALIVE)).select(CP, "ts"),
                window.status.select(CP, "ts"),
                window.meter.select(CP, "ts"),
            ]
        )
        .unique()
        .sort([CP, "ts"])
        .with_columns(next_ts=pl.col("ts").shift(-1).over(CP))
    )
    timeout = pl.duration(microseconds=round(timeout_s * 1e6))
    gaps = alive.filter(pl.col("next_ts").is_null() | (pl.col("next_ts") - pl.col("ts") > timeout))
    return (
        pl.concat(
            [
                gaps.select(CP, (pl.col("ts") + timeout).alias("ts"), silent=pl.lit(True)),
                gaps.filter(pl.col("next_ts").is_not_null()).select(
                    CP, pl.col("next_ts").alias("ts"), silent=pl.lit(False)
                ),
            ]
        )
        .join(window.connection.select(CP).unique(), on=CP, how="semi")
        .sort([CP, "ts"])
    )


def _power_timeline(window: RawWindow) -> pl.DataFrame:
    """(connector, ts, powered): change points of 'the connector's transaction is drawing power'.

    From Power.Active.Import samples of the transaction (value > 0 holds until the next sample);
    a transaction without power samples uses its register (increase until the next sample). The
    flag drops to False at the transaction's stop."""
    tx = window.transactions.select(
        CP,
        "transaction_id",
        pl.col("evse_id").alias("tx_evse"),
        pl.col("connector_id").alias("tx_connector"),
        "start_ts",
        "stop_ts",
    )
    samples = (
        window.meter.filter(
            pl.col("transaction_id").is_not_null() & pl.col("measurand").is_in([POWER, REGISTER])
        )
        .select(CP, "transaction_id", "ts", "measurand", "value", "evse_id", "connector_id")
        .join(tx, on=[CP, "transaction_id"], how="inner")
        .with_columns(
            evse_id=pl.coalesce("tx_evse", "evse_id"),
            connector_id=pl.coalesce("tx_connector", "connector_id"),
        )
        .filter(
            (pl.col("start_ts").is_null() | (pl.col("ts") >= pl.col("start_ts")))
            & (pl.col("stop_ts").is_null() | (pl.col("ts") < pl.col("stop_ts")))
        )
    )
    txk = [CP, "transaction_id"]
    with_power = samples.filter(pl.col("measurand") == POWER).select(txk).unique()
    power = (
        samples.filter(pl.col("measurand") == POWER)
        .group_by([*KEY, "transaction_id", "ts"])
        .agg(pl.col("value").max())
        .select(*KEY, "transaction_id", "ts", powered=pl.col("value") > 0)
    )
    register = (
        samples.filter(pl.col("measurand") == REGISTER)
        .join(with_power, on=txk, how="anti")
        .group_by([*KEY, "transaction_id", "ts"])
        .agg(pl.col("value").max())
        .sort([*txk, "ts"])
        .select(
            *KEY,
            "transaction_id",
            "ts",
            powered=(pl.col("value").shift(-1).over(txk) > pl.col("value")).fill_null(False),
        )
    )
    used = pl.concat([power, register])
    # the flag drops at the stop, on the connector the transaction's samples were put on
    stops = (
        used.select(*KEY, "transaction_id")
        .unique()
        .join(tx.select(*txk, "stop_ts"), on=txk)
        .filter(pl.col("stop_ts").is_not_null())
        .select(*KEY, ts="stop_ts", powered=pl.lit(False), prio=pl.lit(0))
    )
    timeline = (
        pl.concat([used.select(*KEY, "ts", "powered", prio=pl.lit(1)), stops], how="vertical")
        .filter(pl.col("evse_id").is_not_null() & pl.col("connector_id").is_not_null())
        .sort([*KEY, "ts", "prio"])
        .pipe(_last_per_instant, KEY)
    )
    changed = pl.col("powered").ne_missing(pl.col("powered").shift(1).over(KEY))
    return timeline.filter(changed).select(*KEY, "ts", "powered")


def connector_states(window: RawWindow, *, heartbeat_timeout_s: float = 1800) -> pl.DataFrame:
    """State intervals per connector covering [day_start, day_end) exactly (frame STATES).

    See the module docstring for the rules."""
    day_start, day_end = day_bounds(window)
    connectors = connector_list(window)
    in_day = pl.col("ts").is_between(day_start, day_end, closed="left")

    own = _last_per_instant(
        window.status.filter(pl.col("connector_id") > 0).select(
            *KEY, "ts", own_status="status", own_error="error_code"
        ),
        KEY,
    )
    cp0 = _last_per_instant(
        window.status.filter((pl.col("connector_id") == 0) & (pl.col("evse_id") == 0)).select(
            CP, "ts", cp0_status="status", cp0_error="error_code"
        ),
        [CP],
    )
    link = _link_timeline(window.connection)
    silence = _silence_timeline(window, heartbeat_timeout_s)
    power = _power_timeline(window)

    starts = connectors.with_columns(ts=pl.lit(day_start, dtype=TS))
    per_cp = pl.concat([cp0.select(CP, "ts"), link.select(CP, "ts"), silence.select(CP, "ts")])
    bounds = (
        pl.concat(
            [
                starts.select(*KEY, "ts"),
                own.filter(in_day).select(*KEY, "ts"),
                power.filter(in_day).select(*KEY, "ts"),
                connectors.join(per_cp.filter(in_day), on=CP).select(*KEY, "ts"),
            ]
        )
        .join(connectors, on=KEY, how="semi")
        .unique()
        .sort([*KEY, "ts"])
    )
    b = _asof(bounds, own, KEY)
    b = _asof(b, power, KEY)
    b = _asof(b.sort([CP, "ts"]), cp0, [CP])
    b = _asof(b, link, [CP])
    b = _asof(b, silence, [CP]).sort([*KEY, "ts"])

    offline = pl.col("disconnected").fill_null(False) | pl.col("silent").fill_null(False)
    cp0_down = pl.col("cp0_status").is_in(["Faulted", "Unavailable"])
    own_state = pl.col("own_status").replace_strict(STATUS_STATE, default="unknown")
    state = (
        pl.when(offline)
        .then(pl.lit("offline"))
        .when(cp0_down)
        .then(pl.col("cp0_status").str.to_lowercase())
        .when((pl.col("own_status") == "Occupied") & pl.col("powered").fill_null(False))
        .then(pl.lit("charging"))
        .otherwise(own_state)
    )
    b = b.with_columns(state=state).with_columns(
        error_code=pl.when(pl.col("state") != "faulted")
        .then(pl.lit(None, dtype=pl.String))
        .when(cp0_down)
        .then(pl.col("cp0_error"))
        .otherwise(pl.col("own_error")),
        end_ts=pl.col("ts").shift(-1).over(KEY).fill_null(pl.lit(day_end, dtype=TS)),
    )
    run = pl.struct(*KEY, "state", "error_code").rle_id()
    out = (
        b.with_columns(run=run)
        .group_by("run", maintain_order=True)
        .agg(
            *[pl.col(c).first() for c in KEY],
            start_ts=pl.col("ts").first(),
            end_ts=pl.col("end_ts").last(),
            state=pl.col("state").first(),
            error_code=pl.col("error_code").first(),
        )
    )
    return out.select([pl.col(c).cast(t) for c, t in STATES.items()])
