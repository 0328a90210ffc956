"""Expected revenue per session: tariffs in force, minor units, tax, hand-computed amounts."""

from datetime import UTC, datetime

import polars as pl

from pipelines.analytics.revenue import TARIFFS, expected_revenue


def T(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def tariffs(*rows: dict) -> pl.DataFrame:
    base = {"charge_point_id": None, "time_price_per_min": 0.0, "idle_fee_per_min": 0.0,
            "idle_grace_min": 0, "session_fee": 0.0, "tax_rate": 0.0, "prices_include_tax": False,
            "valid_from": T("2000-01-01 00:00"), "valid_to": None}  # fmt: skip
    return pl.DataFrame([{**base, **r} for r in rows], schema=TARIFFS)


def sessions(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"session_id": sid, "charge_point_id": cp, "site_id": site, "start_ts": T(start),
             "end_ts": T(end) if end else None, "energy_wh": wh, "idle_min": idle}
            for sid, cp, site, start, end, wh, idle in rows
        ],
        schema={"session_id": pl.String, "charge_point_id": pl.String, "site_id": pl.String,
                "start_ts": pl.Datetime("us", "UTC"), "end_ts": pl.Datetime("us", "UTC"),
                "energy_wh": pl.Float64, "idle_min": pl.Float64},
    )  # fmt: skip


def by_id(df: pl.DataFrame) -> dict:
    return {r["session_id"]: r for r in df.iter_rows(named=True)}


def test_usd_energy_idle_and_session_fee():
    t = tariffs({"tariff_id": "US", "site_id": "S", "currency": "USD", "energy_price_per_kwh": 0.32,
                 "idle_fee_per_min": 0.40, "idle_grace_min": 15, "session_fee": 1.00})  # fmt: skip
    # 10 kWh -> 3.20; 30 idle minutes, 15 free -> 15 x 0.40 = 6.00; fee 1.00; no tax
    out = by_id(
        expected_revenue(
            sessions(("a", "CP", "S", "2025-06-01 10:00", "2025-06-01 12:00", 10_000, 30)), t
        )
    )
    r = out["a"]
    assert (r["energy_amount"], r["idle_amount"], r["session_fee_amount"], r["tax_amount"]) == (
        320,
        600,
        100,
        0,
    )
    assert (r["net_amount"], r["gross_amount"], r["minor_unit_exponent"]) == (1020, 1020, 2)
    assert r["billable_idle_min"] == 15.0 and r["session_min"] == 120.0


def test_zero_decimal_currency_and_exclusive_tax():
    t = tariffs({"tariff_id": "JP", "site_id": "J", "currency": "JPY", "energy_price_per_kwh": 50,
                 "time_price_per_min": 2, "tax_rate": 0.10})  # fmt: skip
    # 12.345 kWh x 50 = 617.25 -> 617 yen; 45 min x 2 = 90 yen; net 707; tax 70.7 -> 71; gross 778
    r = by_id(
        expected_revenue(
            sessions(("j", "CPJ", "J", "2025-06-01 10:00", "2025-06-01 10:45", 12_345, 0)), t
        )
    )["j"]
    assert r["minor_unit_exponent"] == 0
    assert (
        r["energy_amount"],
        r["time_amount"],
        r["net_amount"],
        r["tax_amount"],
        r["gross_amount"],
    ) == (617, 90, 707, 71, 778)


def test_prices_including_vat():
    t = tariffs({"tariff_id": "GB", "site_id": "G", "currency": "GBP", "energy_price_per_kwh": 0.79,
                 "tax_rate": 0.20, "prices_include_tax": True})  # fmt: skip
    # 10 kWh x 0.79 = 7.90 gross; VAT = 790 - 790 / 1.2 = 131.67 -> 132; net 658
    r = by_id(
        expected_revenue(
            sessions(("g", "CPG", "G", "2025-06-01 10:00", "2025-06-01 11:00", 10_000, 0)), t
        )
    )["g"]
    assert (r["gross_amount"], r["tax_amount"], r["net_amount"]) == (790, 132, 658)


def test_tariff_change_mid_period_and_charge_point_override():
    t = tariffs(
        {"tariff_id": "old", "site_id": "S", "currency": "EUR", "energy_price_per_kwh": 0.40,
         "valid_to": T("2025-06-15 00:00")},
        {"tariff_id": "new", "site_id": "S", "currency": "EUR", "energy_price_per_kwh": 0.50,
         "valid_from": T("2025-06-15 00:00")},
        {"tariff_id": "vip", "site_id": "S", "charge_point_id": "CP-VIP", "currency": "EUR",
         "energy_price_per_kwh": 0.10},
    )  # fmt: skip
    s = sessions(
        ("before", "CP", "S", "2025-06-14 23:30", "2025-06-15 01:00", 10_000, 0),  # start decides
        ("after", "CP", "S", "2025-06-15 00:00", "2025-06-15 01:00", 10_000, 0),
        ("vip", "CP-VIP", "S", "2025-06-20 10:00", "2025-06-20 11:00", 10_000, 0),
        ("open", "CP", "S", "2025-06-20 10:00", None, 10_000, 0),  # still running: not priced
        ("nowhere", "CP-X", "OTHER", "2025-06-20 10:00", "2025-06-20 11:00", 10_000, 0),
    )
    out = by_id(expected_revenue(s, t))
    assert set(out) == {"before", "after", "vip"}
    assert (out["before"]["tariff_id"], out["before"]["gross_amount"]) == ("old", 400)
    assert (out["after"]["tariff_id"], out["after"]["gross_amount"]) == ("new", 500)
    assert (out["vip"]["tariff_id"], out["vip"]["gross_amount"]) == ("vip", 100)
