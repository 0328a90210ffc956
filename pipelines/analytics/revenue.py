"""What each session owes under the tariff in force at its start, in the currency's minor units.

Groundwork for revenue reconciliation (the Stripe side comes with the payments assets). A tariff
row (table `tariff`) applies to a charge point when its `charge_point_id` matches, else to every
charge point of its `site_id`; among those, the one whose [valid_from, valid_to) contains the
session's start wins, a charge-point tariff over a site tariff.

Components, in major units: energy (kWh x price), time (session minutes x price), idle (minutes
idle beyond the grace period x fee; none for a session that delivered nothing, which is idle all
along but a failed attempt, not a car left after charging), and the flat session fee. When
prices include tax, their sum is the gross and tax = gross - gross / (1 + rate); otherwise their
sum is the net and tax = net x rate.
Every amount is rounded half away from zero to minor units once, at the end: 10^2 for most
currencies, 10^0 for Stripe's zero-decimal currencies (JPY, KRW, ...), 10^3 for BHD, JOD, KWD, OMR
and TND; the components are rounded separately and the gross is their sum, so a breakdown always
adds up.

Imported history (`chargeops import`) carries what the driver paid, not a tariff: a finished
session with an imported fee (table `import_payment`) and no tariff in force is priced at that
fee, tariff_id `imported`, the whole amount in session_fee_amount (the export does not break it
down, and says nothing of tax: tax 0, net = gross = the fee). Where a tariff is in force it wins,
so the reconciliation compares what the export says was paid with what the tariff asks.
"""

from __future__ import annotations

import polars as pl

from chargeops.money import minor_unit_exponent, to_minor
from pipelines.analytics.frames import TS

IMPORTED_TARIFF = "imported"  # tariff_id of a session priced at its imported fee
IMPORTED_FEES = {"session_id": pl.String, "currency": pl.String, "amount": pl.Int64}

TARIFFS = {
    "tariff_id": pl.String, "site_id": pl.String, "charge_point_id": pl.String,
    "currency": pl.String, "energy_price_per_kwh": pl.Float64, "time_price_per_min": pl.Float64,
    "idle_fee_per_min": pl.Float64, "idle_grace_min": pl.Int64, "session_fee": pl.Float64,
    "tax_rate": pl.Float64, "prices_include_tax": pl.Boolean, "valid_from": TS, "valid_to": TS,
}  # fmt: skip

EXPECTED_REVENUE = {
    "session_id": pl.String, "charge_point_id": pl.String, "site_id": pl.String,
    "tariff_id": pl.String, "currency": pl.String, "minor_unit_exponent": pl.Int8,
    "energy_kwh": pl.Float64, "session_min": pl.Float64, "billable_idle_min": pl.Float64,
    "energy_amount": pl.Int64, "time_amount": pl.Int64, "idle_amount": pl.Int64,
    "session_fee_amount": pl.Int64, "tax_amount": pl.Int64, "net_amount": pl.Int64,
    "gross_amount": pl.Int64,
}  # fmt: skip


def tariff_for_sessions(sessions: pl.DataFrame, tariffs: pl.DataFrame) -> pl.DataFrame:
    """`sessions` (session_id, charge_point_id, site_id, start_ts) with the tariff in force."""
    keys = sessions.select("session_id", "charge_point_id", "site_id", "start_ts")
    terms = [c for c in TARIFFS if c not in ("site_id", "charge_point_id")]
    by_cp = keys.join(
        tariffs.filter(pl.col("charge_point_id").is_not_null()).select("charge_point_id", *terms),
        on="charge_point_id",
    ).with_columns(rank=pl.lit(0))
    by_site = keys.join(
        tariffs.filter(pl.col("charge_point_id").is_null()).select("site_id", *terms),
        on="site_id",
    ).with_columns(rank=pl.lit(1))
    in_force = pl.concat([by_cp, by_site]).filter(
        (pl.col("valid_from") <= pl.col("start_ts"))
        & (pl.col("valid_to").is_null() | (pl.col("start_ts") < pl.col("valid_to")))
    )
    return (
        in_force.sort(["session_id", "rank", "valid_from"], descending=[False, False, True])
        .unique("session_id", keep="first", maintain_order=True)
        .drop("rank")
    )


def expected_revenue(
    sessions: pl.DataFrame, tariffs: pl.DataFrame, imported_fees: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Per session (SESSIONS frame: session_id, charge_point_id, site_id, start_ts, end_ts,
    energy_wh, idle_min) the amount owed with its breakdown (EXPECTED_REVENUE). A session with
    no tariff in force is priced at its imported fee (IMPORTED_FEES) when it has one, else left
    out; still open sessions (no end) are left out."""
    owed = _tariffed(sessions, tariffs)
    if imported_fees is None or imported_fees.is_empty():
        return owed
    return pl.concat([owed, _at_imported_fee(sessions, imported_fees, owed)]).sort("session_id")


def _at_imported_fee(
    sessions: pl.DataFrame, fees: pl.DataFrame, tariffed: pl.DataFrame
) -> pl.DataFrame:
    fee = pl.col("amount")
    zero = pl.lit(0, pl.Int64)
    return (
        sessions.filter(pl.col("end_ts").is_not_null())
        .join(fees, on="session_id")
        .join(tariffed.select("session_id"), on="session_id", how="anti")
        .select(
            "session_id",
            "charge_point_id",
            "site_id",
            tariff_id=pl.lit(IMPORTED_TARIFF),
            currency=pl.col("currency").str.to_uppercase(),
            minor_unit_exponent=minor_unit_exponent(pl.col("currency")),
            energy_kwh=pl.col("energy_wh").fill_null(0) / 1000.0,
            session_min=(pl.col("end_ts") - pl.col("start_ts")).dt.total_microseconds() / 60e6,
            billable_idle_min=pl.lit(0.0),
            energy_amount=zero,
            time_amount=zero,
            idle_amount=zero,
            session_fee_amount=fee,
            tax_amount=zero,
            net_amount=fee,
            gross_amount=fee,
        )  # fmt: skip
        .select([pl.col(c).cast(t) for c, t in EXPECTED_REVENUE.items()])
    )


def _tariffed(sessions: pl.DataFrame, tariffs: pl.DataFrame) -> pl.DataFrame:
    """The sessions priced under the tariff in force at their start."""
    priced = tariff_for_sessions(sessions, tariffs).join(
        sessions.select("session_id", "end_ts", "energy_wh", "idle_min"), on="session_id"
    )
    priced = priced.filter(pl.col("end_ts").is_not_null())
    exp = minor_unit_exponent(pl.col("currency"))
    priced = priced.with_columns(
        minor_unit_exponent=exp,
        energy_kwh=pl.col("energy_wh").fill_null(0) / 1000.0,
        session_min=(pl.col("end_ts") - pl.col("start_ts")).dt.total_microseconds() / 60e6,
        # idle fees are for a bay kept after charging; a session that delivered nothing (a
        # failed attempt, idle all along) is not billed for idling
        billable_idle_min=pl.when(pl.col("energy_wh").fill_null(1) > 0)
        .then((pl.col("idle_min").fill_null(0) - pl.col("idle_grace_min")).clip(0))
        .otherwise(0.0),
    ).with_columns(
        energy_amount=to_minor(pl.col("energy_kwh") * pl.col("energy_price_per_kwh"), exp),
        time_amount=to_minor(pl.col("session_min") * pl.col("time_price_per_min"), exp),
        idle_amount=to_minor(pl.col("billable_idle_min") * pl.col("idle_fee_per_min"), exp),
        session_fee_amount=to_minor(pl.col("session_fee"), exp),
    )
    subtotal = (
        pl.col("energy_amount") + pl.col("time_amount") + pl.col("idle_amount")
        + pl.col("session_fee_amount")
    )  # fmt: skip
    rate = pl.col("tax_rate")
    tax = (
        pl.when(pl.col("prices_include_tax"))
        .then(subtotal - subtotal / (1 + rate))
        .otherwise(subtotal * rate)
    )
    priced = priced.with_columns(tax_amount=to_minor(tax, pl.lit(0, pl.Int8)))
    priced = priced.with_columns(
        net_amount=pl.when(pl.col("prices_include_tax"))
        .then(subtotal - pl.col("tax_amount"))
        .otherwise(subtotal),
        gross_amount=pl.when(pl.col("prices_include_tax"))
        .then(subtotal)
        .otherwise(subtotal + pl.col("tax_amount")),
    )
    return priced.select([pl.col(c).cast(t) for c, t in EXPECTED_REVENUE.items()])
