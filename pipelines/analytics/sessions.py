"""Charging sessions: one row per transaction that started in the day (frame SESSIONS).

Meter rows belong to a transaction by (charge_point_id, transaction_id). The rules:

- Which: transactions whose start_ts is in [day_start, day_end); a session crossing midnight
  belongs to its start day and keeps all its energy. A transaction with only stop fields (a
  StopTransaction for a transaction never seen) is not a session: `orphan_stops` lists those
  whose stop_ts is in the day.
- End: end_ts = stop_ts (end_source 'stop'). A transaction without a stop (missing_stop) ends at
  the first sign that it is over, in this order of evidence:
  1. 'status': the connector leaves the transaction's statuses (Preparing, Charging, SuspendedEV,
     SuspendedEVSE, Finishing, Occupied, Reserved): its first Available, Unavailable or Faulted
     after the start, which is also the plug-out where the charger reports one; or 'ev_departed':
     a 2.0.1 TransactionEvent with triggerReason EVDeparted (the EV disconnected). The earlier of
     the two counts, if it comes before the next transaction on the connector starts.
  2. 'next_transaction': another transaction started on the connector, so this one was over by
     then: end_ts = this one's last meter sample, or the next start when it has no sample after
     its start.
  3. 'last_sample': its last meter sample (any measurand) is more than 2 h before the data
     horizon (the latest timestamp of any row in the window).
  Otherwise end_ts is null (still open). An end is never before the start (an earlier piece of
  evidence, e.g. a clock step, ends the session at its start).
- failed_attempt: a session that delivered nothing (0 Wh) or took no time (end = start). It is
  a real event (a charge that was tried and did not happen), kept and flagged; not a data error.
- Energy: the register chain of a transaction is meter_start (at start), its
  Energy.Active.Import.Register samples (any context; one value per timestamp, the highest) in
  time order, then meter_stop (at stop). meter_reset when any step of that chain goes down
  (a sample below the one before it, meter_stop below the last sample or below meter_start).
  * 'meter': start, stop, meter_start and meter_stop are present and there is no reset:
    energy = meter_stop - meter_start;
  * 'samples': otherwise, when there is at least one register sample: energy = the sum of the
    chain's non-negative steps (a drop counts 0, the climb after it counts);
  * 'none': otherwise; energy null.
  Values that cannot be physical are quarantined (listed by `reconstruct`, never counted): a
  non-finite sample, meter_start or meter_stop is left out; a step that rises more than the
  charge point's rated power could deliver in its time span (`plausibility.py`) counts 0, like
  a reset, and makes the source 'samples' (or 'none' if nothing else is left): quarantined_steps.
  energy_mismatch (only for 'meter' with samples): the sample-based energy (non-negative steps of
  meter_start and the samples, without meter_stop) differs from the meter energy by more than
  max(1% of the meter energy, 50 Wh).
- Power: peak_power_w and mean_power_w are the max and the arithmetic mean of the transaction's
  Power.Active.Import samples with start_ts <= ts <= end_ts (no upper bound while open). Without
  power samples, mean_power_w = energy / (charging_end_ts - start_ts); null when that is not
  defined.
- charging_end_ts: the last power sample > 0 in [start, end]; else the last register sample (or
  meter_stop) that is higher than the step before it, in [start, end]; else, when the session
  delivered nothing (0 Wh), start_ts: it never charged, so its charging time is 0 and all of its
  time is idle, the minutes utilisation counts as suspended (one definition, issue 17 row 7);
  else end_ts (energy unknown).
- plug_in_ts: the last status change (a status different from the connector's previous one) to
  Preparing/Occupied at or before start_ts and at most 1 h before it, provided no change to
  Available came in between. plug_out_ts: the first status change to Available at or after end_ts
  and at most 24 h after it, provided no change to Preparing/Occupied came first.
- duration_min = end_ts - start_ts; idle_min = (plug_out_ts, else end_ts) - charging_end_ts;
  both null when an end is missing. site_id from charge_points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from pipelines.analytics.frames import QUARANTINE, SESSIONS, TRANSACTIONS, TS, RawWindow
from pipelines.analytics.plausibility import finite, impossible_step, step_reason
from pipelines.analytics.states import CP, KEY, POWER, REGISTER, day_bounds

TXK = [CP, "transaction_id"]
OVER_AFTER = timedelta(hours=2)  # a session without stop and without samples for longer is over
PLUG_IN_WITHIN = timedelta(hours=1)
PLUG_OUT_WITHIN = timedelta(hours=24)
MISMATCH_REL, MISMATCH_ABS_WH = 0.01, 50.0


def _minutes(later: str | pl.Expr, earlier: str | pl.Expr) -> pl.Expr:
    later = pl.col(later) if isinstance(later, str) else later
    earlier = pl.col(earlier) if isinstance(earlier, str) else earlier
    return (later - earlier).dt.total_microseconds() / 60e6


def _horizon(window: RawWindow) -> datetime | None:
    """The latest timestamp of any row in the window: how far the data reaches."""
    cands = [
        window.meter["ts"].max(),
        window.status["ts"].max(),
        window.connection["ts"].max(),
        window.transactions["start_ts"].max(),
        window.transactions["stop_ts"].max(),
    ]
    cands = [c for c in cands if c is not None]
    return max(cands) if cands else None  # type: ignore[type-var]


def orphan_stops(window: RawWindow) -> pl.DataFrame:
    """Transactions with a stop in the day but no start (frame TRANSACTIONS): stops of
    transactions never seen, which `build_sessions` leaves out."""
    day_start, day_end = day_bounds(window)
    return (
        window.transactions.filter(
            pl.col("start_ts").is_null()
            & pl.col("stop_ts").is_between(day_start, day_end, closed="left")
        )
        .sort(TXK)
        .select([pl.col(c).cast(t) for c, t in TRANSACTIONS.items()])
    )


def _plug_events(window: RawWindow) -> pl.DataFrame:
    """Status changes to Available / Preparing / Occupied per connector, sorted (KEY, ts)."""
    status = (
        window.status.filter(pl.col("connector_id") > 0)
        .select(*KEY, "ts", "status")
        .unique(subset=[*KEY, "ts"], keep="last", maintain_order=True)
        .sort([*KEY, "ts"])
    )
    changed = pl.col("status").ne_missing(pl.col("status").shift(1).over(KEY))
    return status.filter(changed & pl.col("status").is_in(["Available", "Preparing", "Occupied"]))


# statuses a connector shows during a transaction; the first other one after the start ends it
IN_TRANSACTION = ["Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing",
                  "Occupied", "Reserved"]  # fmt: skip
END_STATUSES = ["Available", "Unavailable", "Faulted"]
EV_DEPARTED = "EVDeparted"


@dataclass(frozen=True)
class Reconstruction:
    sessions: pl.DataFrame  # frame SESSIONS
    quarantine: pl.DataFrame  # frame QUARANTINE: values no sum may use, with the reason


def build_sessions(window: RawWindow) -> pl.DataFrame:
    """One row per transaction started in the day (frame SESSIONS); see the module docstring."""
    return reconstruct(window).sessions


def _status_ends(window: RawWindow) -> pl.DataFrame:
    """Per connector, the times it showed a status that ends a transaction, sorted."""
    return (
        window.status.filter(pl.col("status").is_in(END_STATUSES))
        .select(*KEY, status_end_ts="ts")
        .drop_nulls()
        .unique()
        .sort([*KEY, "status_end_ts"])
    )


def _ends(window: RawWindow, tx: pl.DataFrame, meter: pl.DataFrame) -> pl.DataFrame:
    """`tx` with end_ts and end_source (see the module docstring) and next_start_ts."""
    last_sample = meter.group_by(TXK).agg(last_sample_ts=pl.col("ts").max())
    starts = (
        window.transactions.filter(
            pl.col("start_ts").is_not_null()
            & pl.all_horizontal(pl.col(c).is_not_null() for c in KEY)
        )
        .select(*KEY, next_start_ts="start_ts")
        .sort([*KEY, "next_start_ts"])
    )
    departed = (
        window.transaction_events.filter(pl.col("trigger_reason") == EV_DEPARTED)
        .group_by(TXK)
        .agg(departed_ts=pl.col("ts").min())
    )

    def first_after_start(left: pl.DataFrame, right: pl.DataFrame, on: str) -> pl.DataFrame:
        """`left` with `right`'s first `on` strictly after each start on the same connector."""
        return left.join_asof(
            right,
            left_on="start_ts",
            right_on=on,
            by=KEY,
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )

    tx = (
        first_after_start(
            first_after_start(tx.sort([*KEY, "start_ts"]), starts, "next_start_ts"),
            _status_ends(window),
            "status_end_ts",
        )
        .join(last_sample, on=TXK, how="left")
        .join(departed.filter(pl.col("departed_ts").is_not_null()), on=TXK, how="left")
    )
    horizon = _horizon(window)
    stale = (
        (pl.lit(horizon, dtype=TS) - pl.col("last_sample_ts") > OVER_AFTER)
        if horizon is not None
        else pl.lit(False)
    )
    before_next = pl.col("next_start_ts").is_null() | (pl.col("next_start_ts") > pl.col("signal"))
    departed_ok = pl.col("departed_ts") >= pl.col("start_ts")
    tx = tx.with_columns(
        signal=pl.min_horizontal("status_end_ts", pl.when(departed_ok).then(pl.col("departed_ts"))),
        signal_source=pl.when(
            pl.col("status_end_ts").is_null()
            | (departed_ok & (pl.col("departed_ts") < pl.col("status_end_ts")))
        )
        .then(pl.lit("ev_departed"))
        .otherwise(pl.lit("status")),
    )
    sample_before_next = pl.when(
        (pl.col("last_sample_ts") > pl.col("start_ts"))
        & (pl.col("last_sample_ts") <= pl.col("next_start_ts"))
    ).then(pl.col("last_sample_ts"))
    has_stop = pl.col("stop_ts").is_not_null()
    has_signal = pl.col("signal").is_not_null() & before_next.fill_null(False)
    has_next = pl.col("next_start_ts").is_not_null()
    is_stale = stale.fill_null(False)
    tx = tx.with_columns(
        missing_stop=~has_stop,
        end_source=pl.when(has_stop)
        .then(pl.lit("stop"))
        .when(has_signal)
        .then(pl.col("signal_source"))
        .when(has_next)
        .then(pl.lit("next_transaction"))
        .when(is_stale)
        .then(pl.lit("last_sample")),
        end_ts=pl.when(has_stop)
        .then(pl.col("stop_ts"))
        .when(has_signal)
        .then(pl.col("signal"))
        .when(has_next)
        .then(pl.coalesce(sample_before_next, pl.col("next_start_ts")))
        .when(is_stale)
        .then(pl.col("last_sample_ts")),
    )
    # never before the start: evidence from a clock that stepped back ends it at the start
    return tx.with_columns(
        end_ts=pl.when(pl.col("end_ts").is_not_null()).then(pl.max_horizontal("end_ts", "start_ts"))
    )


def reconstruct(window: RawWindow) -> Reconstruction:
    """Sessions of the day and the raw values they refused to count."""
    day_start, day_end = day_bounds(window)
    tx = (
        window.transactions.filter(pl.col("start_ts").is_between(day_start, day_end, closed="left"))
        .unique(TXK, keep="last", maintain_order=True)
        .with_columns(
            pl.when(finite(c)).then(pl.col(c)).alias(c) for c in ("meter_start_wh", "meter_stop_wh")
        )
    )
    tx_meter = window.meter.filter(pl.col("transaction_id").is_not_null()).join(
        tx.select(TXK), on=TXK, how="semi"
    )
    meter = tx_meter.filter(finite("value"))
    not_finite = tx_meter.filter(~finite("value"))
    raw_tx = window.transactions.join(tx.select(TXK), on=TXK, how="semi")

    tx = _ends(window, tx, meter)
    bounds = tx.select(*TXK, "start_ts", "end_ts")
    in_session = (pl.col("ts") >= pl.col("start_ts")) & (
        pl.col("end_ts").is_null() | (pl.col("ts") <= pl.col("end_ts"))
    )

    # -- energy from the register chain ----------------------------------------------------------
    register = (
        meter.filter(pl.col("measurand") == REGISTER)
        .group_by([*TXK, "ts"])
        .agg(pl.col("value").max())
    )
    rated = window.charge_points.select(CP, rated_w="max_power_w").unique(CP)
    chain = (
        pl.concat(
            [
                tx.filter(pl.col("meter_start_wh").is_not_null()).select(
                    *TXK, ts="start_ts", value="meter_start_wh", ord=pl.lit(0)
                ),
                register.select(*TXK, "ts", "value", ord=pl.lit(1)),
                tx.filter(
                    pl.col("meter_stop_wh").is_not_null() & pl.col("stop_ts").is_not_null()
                ).select(*TXK, ts="stop_ts", value="meter_stop_wh", ord=pl.lit(2)),
            ]
        )
        .sort([*TXK, "ord", "ts"])
        .join(rated, on=CP, how="left")
        .with_columns(
            previous=pl.col("value").shift(1).over(TXK),
            span=pl.col("ts") - pl.col("ts").shift(1).over(TXK),
        )
        .with_columns(step=pl.col("value") - pl.col("previous"))
        .with_columns(
            impossible=impossible_step(pl.col("step"), pl.col("span"), pl.col("rated_w")).fill_null(
                False
            )
        )
        .join(bounds, on=TXK, how="left")
    )
    quarantine = _quarantine(window, tx, chain, not_finite, raw_tx)
    chain = chain.with_columns(step=pl.when(pl.col("impossible")).then(0.0).otherwise("step"))
    rise = pl.col("step").clip(lower_bound=0)
    energy_parts = chain.group_by(TXK).agg(
        n_register=(pl.col("ord") == 1).sum(),
        reset=(pl.col("step") < 0).any(),
        quarantined_steps=pl.col("impossible").sum().cast(pl.Int32),
        chain_wh=rise.sum(),
        sample_wh=rise.filter(pl.col("ord") < 2).sum(),
        last_rise_ts=pl.col("ts").filter((pl.col("step") > 0) & in_session).max(),
    )

    # -- power ---------------------------------------------------------------------------------
    power = (
        meter.filter(pl.col("measurand") == POWER)
        .select(*TXK, "ts", "value")
        .join(bounds, on=TXK)
        .filter(in_session)
        .group_by(TXK)
        .agg(
            peak_power_w=pl.col("value").max(),
            sample_mean_w=pl.col("value").mean(),
            last_power_ts=pl.col("ts").filter(pl.col("value") > 0).max(),
        )
    )

    s = (
        tx.join(energy_parts, on=TXK, how="left")
        .join(power, on=TXK, how="left")
        .with_columns(
            pl.col("n_register").fill_null(0),
            meter_reset=pl.col("reset").fill_null(False),
        )
    )
    meter_ok = (
        pl.all_horizontal(
            pl.col(c).is_not_null() for c in ("stop_ts", "meter_start_wh", "meter_stop_wh")
        )
        & ~pl.col("meter_reset")
        & (pl.col("quarantined_steps").fill_null(0) == 0)
    )
    meter_wh = pl.col("meter_stop_wh") - pl.col("meter_start_wh")
    s = s.with_columns(
        energy_source=pl.when(meter_ok)
        .then(pl.lit("meter"))
        .when(pl.col("n_register") > 0)
        .then(pl.lit("samples"))
        .otherwise(pl.lit("none")),
        energy_wh=pl.when(meter_ok)
        .then(meter_wh)
        .when(pl.col("n_register") > 0)
        .then(pl.col("chain_wh")),
    ).with_columns(
        energy_mismatch=(
            (pl.col("energy_source") == "meter")
            & (pl.col("n_register") > 0)
            & (
                (pl.col("energy_wh") - pl.col("sample_wh")).abs()
                > pl.max_horizontal(MISMATCH_REL * pl.col("energy_wh"), pl.lit(MISMATCH_ABS_WH))
            )
        ).fill_null(False),
        charging_end_ts=pl.coalesce(
            "last_power_ts",
            "last_rise_ts",
            pl.when(pl.col("energy_wh") == 0).then("start_ts"),  # never charged
            "end_ts",
        ),
    )
    charge_h = _minutes("charging_end_ts", "start_ts") / 60.0
    s = s.with_columns(
        mean_power_w=pl.when(pl.col("peak_power_w").is_not_null())
        .then(pl.col("sample_mean_w"))
        .when(charge_h > 0)
        .then(pl.col("energy_wh") / charge_h),
    )

    # -- plug-in / plug-out from statuses --------------------------------------------------------
    plug = _plug_events(window).rename({"ts": "plug_ts", "status": "plug_status"})
    keyed = s.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in KEY))
    plug_in = (
        keyed.select(*KEY, "transaction_id", "start_ts")
        .sort([*KEY, "start_ts"])
        .join_asof(
            plug,
            left_on="start_ts",
            right_on="plug_ts",
            by=KEY,
            strategy="backward",
            tolerance=PLUG_IN_WITHIN,
            check_sortedness=False,
        )
        .select(
            *TXK,
            plug_in_ts=pl.when(pl.col("plug_status") != "Available").then(pl.col("plug_ts")),
        )
    )
    plug_out = (
        keyed.filter(pl.col("end_ts").is_not_null())
        .select(*KEY, "transaction_id", "end_ts")
        .sort([*KEY, "end_ts"])
        .join_asof(
            plug,
            left_on="end_ts",
            right_on="plug_ts",
            by=KEY,
            strategy="forward",
            tolerance=PLUG_OUT_WITHIN,
            check_sortedness=False,
        )
        .select(
            *TXK,
            plug_out_ts=pl.when(pl.col("plug_status") == "Available").then(pl.col("plug_ts")),
        )
    )
    sites = window.charge_points.select(CP, "site_id").unique(CP)
    s = (
        s.join(plug_in, on=TXK, how="left")
        .join(plug_out, on=TXK, how="left")
        .join(sites, on=CP, how="left")
        .with_columns(
            day=pl.lit(day_start.date(), dtype=pl.Date),
            session_id=pl.concat_str(CP, pl.lit(":"), "transaction_id"),
            duration_min=_minutes("end_ts", "start_ts"),
            idle_min=_minutes(pl.coalesce("plug_out_ts", "end_ts"), pl.col("charging_end_ts")),
            quarantined_steps=pl.col("quarantined_steps").fill_null(0),
        )
        .with_columns(
            failed_attempt=((pl.col("energy_wh") == 0) | (pl.col("duration_min") == 0)).fill_null(
                False
            )
        )
        .sort([CP, "start_ts", "transaction_id"])
    )
    return Reconstruction(
        sessions=s.select([pl.col(c).cast(t) for c, t in SESSIONS.items()]),
        quarantine=quarantine,
    )


def _quarantine(
    window: RawWindow,
    tx: pl.DataFrame,
    chain: pl.DataFrame,
    not_finite: pl.DataFrame,
    raw_tx: pl.DataFrame,
) -> pl.DataFrame:
    """Frame QUARANTINE: the non-finite samples and meter readings, and the impossible steps."""
    day = window.day_start.date()
    where = tx.select(*TXK, "evse_id", "connector_id")
    steps = chain.filter("impossible").join(where, on=TXK, how="left")
    readings = pl.concat(
        [
            raw_tx.filter(~finite(c)).select(
                *TXK, "evse_id", "connector_id", ts=ts, value=c, reason=pl.lit(f"{c} not finite")
            )
            for c, ts in (("meter_start_wh", "start_ts"), ("meter_stop_wh", "stop_ts"))
        ]
    )
    frames = [
        steps.select(
            *TXK,
            "evse_id",
            "connector_id",
            "ts",
            "value",
            "previous",
            reason=step_reason(pl.col("step"), pl.col("span"), pl.col("rated_w")),
        ),  # fmt: skip
        not_finite.select(
            *TXK,
            "evse_id",
            "connector_id",
            "ts",
            "value",
            reason=pl.format("{} sample not finite", "measurand"),
        ),  # fmt: skip
        readings,
    ]
    return (
        pl.concat(frames, how="diagonal_relaxed")
        .with_columns(day=pl.lit(day, dtype=pl.Date))
        .select([pl.col(c).cast(t) for c, t in QUARANTINE.items()])
        .sort(CP, "transaction_id", "ts", nulls_last=True)
    )
