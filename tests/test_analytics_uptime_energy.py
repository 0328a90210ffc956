"""Uptime, UK reliability, energy and peak usage over small hand-built frames; every expected
value is worked out by hand in the comments. Pure polars: no database, no Dagster."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from pipelines.analytics import frames as F
from pipelines.analytics.energy import energy_connector_day, energy_site_day, load_curve
from pipelines.analytics.peak import busiest, peak_usage
from pipelines.analytics.uptime import (
    closed_intervals,
    outages,
    uk_network_reliability,
    uk_reliability_daily,
    uptime_daily,
    uptime_rollup,
)

DAY = date(2024, 6, 12)  # a Wednesday, no DST change anywhere


# -- helpers --------------------------------------------------------------------------------------
def ts(day: date, hh: int, mm: int = 0) -> datetime:
    """UTC instant `hh:mm` of `day` (hh may be 24 for the next midnight)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hh, minutes=mm)


def frame(schema: dict, rows: Iterable[dict] = ()) -> pl.DataFrame:
    """A frame with exactly the contract dtypes; missing keys are null, no rows = empty frame."""
    return pl.DataFrame(list(rows), schema=schema)


def raw_window(day: date, **rows: Sequence[dict]) -> F.RawWindow:
    """A RawWindow for the UTC day `day` from literal rows (dicts keyed by column name); keyword
    names are the RawWindow fields, omitted ones are empty frames with the right schema."""
    schemas = {
        "transactions": F.TRANSACTIONS, "meter": F.METER, "status": F.STATUS,
        "connection": F.CONNECTION, "charge_points": F.CHARGE_POINTS,
        "connectors": F.CONNECTORS, "sites": F.SITES, "exclusions": F.EXCLUSIONS,
    }  # fmt: skip
    unknown = set(rows) - set(schemas)
    assert not unknown, f"not RawWindow fields: {unknown}"
    return F.RawWindow(
        day_start=ts(day, 0),
        day_end=ts(day, 24),
        **{name: frame(schema, rows.get(name, ())) for name, schema in schemas.items()},
    )


def timeline(cp: str, evse: int, conn: int, changes: list[tuple[datetime, str]], end: datetime):
    """STATES rows of one connector: each (start, state) lasts until the next change or `end`."""
    bounds = [t for t, _ in changes[1:]] + [end]
    return [
        {"charge_point_id": cp, "evse_id": evse, "connector_id": conn, "start_ts": s,
         "end_ts": e, "state": state, "error_code": "GroundFailure" if state == "faulted" else None}
        for (s, state), e in zip(changes, bounds, strict=True)
    ]  # fmt: skip


def states(*timelines: list[dict]) -> pl.DataFrame:
    return frame(F.STATES, [row for t in timelines for row in t])


def site(site_id: str, tz: str = "UTC", hours: str | None = None, country: str = "US") -> dict:
    return {"site_id": site_id, "timezone": tz, "country": country, "operating_hours": hours}


def cp(cp_id: str, site_id: str, power_w: float = 22_000.0) -> dict:
    return {"charge_point_id": cp_id, "site_id": site_id, "max_power_w": power_w,
            "current_type": "DC" if power_w >= 50_000 else "AC",
            "registered_at": ts(DAY, 0)}  # fmt: skip


def conn(cp_id: str, evse: int, connector: int = 1) -> dict:
    return {"charge_point_id": cp_id, "evse_id": evse, "connector_id": connector}


def excl(cp_id: str, start: datetime, end: datetime, reason: str, evse=None, connector=None):
    return {"charge_point_id": cp_id, "evse_id": evse, "connector_id": connector,
            "starts_at": start, "ends_at": end, "reason": reason}  # fmt: skip


def pieces(df: pl.DataFrame) -> list[tuple]:
    """Outage rows as (evse, start hh:mm, end hh:mm, cause, excluded, reason)."""
    return [
        (r["evse_id"], r["start_ts"].strftime("%H:%M"), r["end_ts"].strftime("%H:%M"), r["cause"],
         r["excluded"], r["exclusion_reason"])
        for r in df.sort("evse_id", "start_ts").iter_rows(named=True)
    ]  # fmt: skip


def meter(cp_id, evse, tx, at, value, measurand="Energy.Active.Import.Register", context=None):
    return {"ts": at, "charge_point_id": cp_id, "evse_id": evse, "connector_id": 1,
            "transaction_id": tx, "measurand": measurand,
            "context": context or "Sample.Periodic", "value": value}  # fmt: skip


def session(cp_id, evse, tx, start, end, site_id="S1") -> dict:
    return {"day": start.date(), "session_id": f"{cp_id}:{tx}", "charge_point_id": cp_id,
            "transaction_id": tx, "site_id": site_id, "evse_id": evse, "connector_id": 1,
            "start_ts": start, "end_ts": end}  # fmt: skip


# -- uptime (23 CFR 680.116(b)) -------------------------------------------------------------------
def test_fault_half_inside_exclusion_and_offline_gap() -> None:
    d = DAY
    w = raw_window(
        d,
        sites=[site("S1")],  # 24/7
        charge_points=[cp("CP1", "S1")],
        connectors=[conn("CP1", 0, 0), conn("CP1", 1), conn("CP1", 2)],
        exclusions=[
            # whole charge point (null evse): covers the second half of the 10:00-12:00 fault
            excl("CP1", ts(d, 11), ts(d, 13), "utility_interruption"),
            # EVSE 2 only: must not touch EVSE 1's offline gap at 18:00
            excl("CP1", ts(d, 17), ts(d, 19), "vandalism", evse=2, connector=1),
        ],
    )
    st = states(
        timeline("CP1", 1, 1, [(ts(d, 0), "available"), (ts(d, 10), "faulted"),
                               (ts(d, 12), "available"), (ts(d, 18), "offline"),
                               (ts(d, 18, 30), "available")], ts(d, 24)),
        timeline("CP1", 2, 1, [(ts(d, 0), "available"), (ts(d, 9), "charging"),
                               (ts(d, 10), "available")], ts(d, 24)),
        # the charge point itself (connector 0) is never a port
        timeline("CP1", 0, 0, [(ts(d, 0), "unavailable")], ts(d, 24)),
    )  # fmt: skip
    out = outages(st, w)
    assert out.schema == pl.Schema(F.OUTAGES)
    assert pieces(out) == [
        (1, "10:00", "11:00", "faulted", False, None),
        (1, "11:00", "12:00", "faulted", True, "utility_interruption"),
        (1, "18:00", "18:30", "offline", False, None),
    ]
    assert out["duration_min"].to_list() == [60.0, 60.0, 30.0]
    assert out["site_id"].to_list() == ["S1"] * 3 and out["day"].to_list() == [d] * 3

    up = uptime_daily(out, w)
    assert up.schema == pl.Schema(F.UPTIME)
    # EVSE 1: outage 60 + 60 + 30 = 150 min, of which 60 excluded; counted 90 min:
    # (1440 - 90) / 1440 * 100 = 93.75.  EVSE 2: no outage, 100%.  Connector 0: no row.
    assert up.select("evse_id", "minutes_in_period", "outage_minutes", "excluded_minutes",
                     "uptime_pct").rows() == [(1, 1440.0, 150.0, 60.0, 93.75),
                                              (2, 1440.0, 0.0, 0.0, 100.0)]  # fmt: skip


def test_overlapping_exclusions_pick_one_reason_and_count_once() -> None:
    d = DAY
    w = raw_window(
        d,
        sites=[site("S1")],
        charge_points=[cp("CP1", "S1")],
        connectors=[conn("CP1", 1)],
        exclusions=[
            excl("CP1", ts(d, 11), ts(d, 13), "utility_interruption"),
            excl("CP1", ts(d, 10, 30), ts(d, 11, 30), "other", evse=1, connector=1),
        ],
    )
    st = states(
        timeline("CP1", 1, 1, [(ts(d, 0), "available"), (ts(d, 10), "faulted"),
                               (ts(d, 12), "available")], ts(d, 24))
    )  # fmt: skip
    out = outages(st, w)
    # 10:00-10:30 counted; 10:30-11:00 'other' alone; from 11:00 utility_interruption wins
    # (it ranks before 'other'), so 11:00-12:00 is one piece
    assert pieces(out) == [
        (1, "10:00", "10:30", "faulted", False, None),
        (1, "10:30", "11:00", "faulted", True, "other"),
        (1, "11:00", "12:00", "faulted", True, "utility_interruption"),
    ]
    up = uptime_daily(out, w)
    # 120 min down, 90 excluded: 100 * (1440 - 30) / 1440
    assert up.select("outage_minutes", "excluded_minutes").row(0) == (120.0, 90.0)
    assert up["uptime_pct"][0] == 100 * (1440 - 30) / 1440


def test_closed_at_night_on_london_dst_day() -> None:
    # 2024-03-31: the UK clocks go forward at 01:00 UTC. Open 07:00-19:00 local every day; on
    # Sunday 31 March that is 06:00-18:00 UTC (BST). Sat 30 March's and Mon 1 April's hours fall
    # outside the UTC day. So the site is closed 00:00-06:00 and 18:00-24:00 UTC.
    d = date(2024, 3, 31)
    every_day = ", ".join(f'"{day}": ["07:00", "19:00"]'
                          for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))  # fmt: skip
    w = raw_window(
        d,
        sites=[site("LDN", "Europe/London", "{" + every_day + "}", "GB")],
        charge_points=[cp("CPL", "LDN")],
        connectors=[conn("CPL", 1)],
    )
    closed = closed_intervals(w.sites, w.day_start, w.day_end)
    assert closed.select("start_ts", "end_ts").rows() == [(ts(d, 0), ts(d, 6)),
                                                          (ts(d, 18), ts(d, 24))]  # fmt: skip
    st = states(
        timeline("CPL", 1, 1, [(ts(d, 0), "unavailable"),  # overnight, carried in
                               (ts(d, 6, 30), "available"), (ts(d, 18, 30), "faulted"),
                               (ts(d, 19, 30), "available"), (ts(d, 20), "unavailable")],
                 ts(d, 24))
    )  # fmt: skip
    out = outages(st, w)
    # Without DST the site would open at 07:00 UTC and the 06:00-06:30 piece would be excluded,
    # and 18:30-19:00 counted; with it, only 06:00-06:30 (30 min, 07:00-07:30 BST) counts.
    assert pieces(out) == [
        (1, "00:00", "06:00", "unavailable", True, "outside_operating_hours"),
        (1, "06:00", "06:30", "unavailable", False, None),
        (1, "18:30", "19:30", "faulted", True, "outside_operating_hours"),
        (1, "20:00", "00:00", "unavailable", True, "outside_operating_hours"),
    ]
    up = uptime_daily(out, w)
    # outage 360 + 30 + 60 + 240 = 690 min, excluded 660: 100 * (1440 - 30) / 1440
    assert up.select("outage_minutes", "excluded_minutes").row(0) == (690.0, 660.0)
    assert up["uptime_pct"][0] == 100 * (1440 - 30) / 1440


def test_operating_hours_los_angeles_fall_back_and_missing_days() -> None:
    # 2024-11-03: Los Angeles falls back at 09:00 UTC (02:00 PDT -> 01:00 PST).
    # Sat 2 Nov 06:00-22:00 PDT = 13:00 Nov 2 - 05:00 Nov 3 UTC; Sun 3 Nov 06:00-22:00 PST =
    # 14:00 Nov 3 - 06:00 Nov 4 UTC; Friday is missing (closed). Closed: 05:00-14:00 UTC, nine
    # real hours for eight wall-clock ones.
    d = date(2024, 11, 3)
    la = site("LA", "America/Los_Angeles", '{"sat": ["06:00", "22:00"], "sun": ["06:00", "22:00"]}')
    w = raw_window(d, sites=[la, site("NEVER", hours="{}"), site("ALWAYS"),
                             site("NIGHT", hours='{"sun": ["22:00", "06:00"]}')])  # fmt: skip
    closed = closed_intervals(w.sites, w.day_start, w.day_end).sort("site_id", "start_ts")
    assert closed.rows() == [
        ("LA", ts(d, 5), ts(d, 14)),
        ("NEVER", ts(d, 0), ts(d, 24)),  # {} = closed every day
        # overnight range: Sat is missing so closed until Sun 22:00 (UTC site)
        ("NIGHT", ts(d, 0), ts(d, 22)),
    ]
    with pytest.raises(ValueError, match="site BAD"):
        closed_intervals(frame(F.SITES, [site("BAD", hours='{"sun": ["7am", "7pm"]}')]),
                         w.day_start, w.day_end)  # fmt: skip


def test_uk_rapid_charge_point_operational_while_one_connector_is_up() -> None:
    d = DAY
    w = raw_window(
        d,
        sites=[site("S1", country="GB")],
        charge_points=[cp("R1", "S1", 150_000.0), cp("R2", "S1", 50_000.0), cp("AC", "S1")],
        connectors=[conn("R1", 1), conn("R1", 2), conn("R2", 1), conn("AC", 1)],
        exclusions=[
            excl("R1", ts(d, 11, 15), ts(d, 11, 45), "scheduled_maintenance"),  # whole CP
            excl("R1", ts(d, 10), ts(d, 10, 30), "vehicle_fault", evse=2, connector=1),
        ],
    )
    st = states(
        # connector 1 down 08:00-12:00; connector 2 down 10:00-11:30 (faulted, then offline)
        timeline("R1", 1, 1, [(ts(d, 0), "available"), (ts(d, 8), "faulted"),
                              (ts(d, 12), "available")], ts(d, 24)),
        timeline("R1", 2, 1, [(ts(d, 0), "charging"), (ts(d, 10), "faulted"),
                              (ts(d, 11), "offline"), (ts(d, 11, 30), "available")], ts(d, 24)),
        timeline("AC", 1, 1, [(ts(d, 0), "faulted")], ts(d, 24)),  # not rapid: no row
    )  # fmt: skip
    uk = uk_reliability_daily(st, w)
    assert uk.schema == pl.Schema(F.UK_RELIABILITY)
    # R1: 08:00-10:00 only connector 1 is down: operational. Inoperative 10:00-11:30 = 90 min.
    # 10:00-10:30 connector 2's outage is excluded (vehicle_fault) but connector 1's is not: it
    # counts. 11:15-11:30 both are under the whole-CP maintenance window: 15 min excluded.
    # (1440 - (90 - 15)) / 1440 * 100.  R2 (exactly 50 kW) has no states: 100%.
    assert uk.select("charge_point_id", "minutes_in_period", "inoperative_minutes",
                     "excluded_minutes").rows() == [("R1", 1440.0, 90.0, 15.0),
                                                    ("R2", 1440.0, 0.0, 0.0)]  # fmt: skip
    assert uk["reliability_pct"].to_list() == [100 * (1440 - 75) / 1440, 100.0]
    # offline: connector 2 offline 11:00-11:30 while connector 1 is faulted; 11:15-11:30 is
    # excluded (maintenance), so 15 counted minutes. S1 is open 24/7: nothing closed.
    assert uk.select("offline_minutes", "closed_minutes").rows() == [(15.0, 0.0), (0.0, 0.0)]


def test_uk_closed_and_offline_minutes_for_the_report() -> None:
    d = DAY  # a Wednesday; the UTC site is open 08:00-20:00: closed 8 + 4 h = 720 min
    w = raw_window(
        d,
        sites=[site("GB1", hours='{"wed": ["08:00", "20:00"]}', country="GB")],
        charge_points=[cp("R", "GB1", 150_000.0)],
        connectors=[conn("R", 1), conn("R", 2)],
        exclusions=[excl("R", ts(d, 15), ts(d, 15, 30), "vehicle_fault", evse=2, connector=1)],
    )
    st = states(
        # both offline 07:00-09:00; connector 1 offline alone 12:00-12:30 (connector 2 works);
        # 15:00-15:30 connector 1 faulted while connector 2 is offline under its own exclusion
        timeline("R", 1, 1, [(ts(d, 0), "available"), (ts(d, 7), "offline"),
                             (ts(d, 9), "available"), (ts(d, 12), "offline"),
                             (ts(d, 12, 30), "available"), (ts(d, 15), "faulted"),
                             (ts(d, 15, 30), "available")], ts(d, 24)),
        timeline("R", 2, 1, [(ts(d, 0), "available"), (ts(d, 7), "offline"),
                             (ts(d, 9), "available"), (ts(d, 15), "offline"),
                             (ts(d, 15, 30), "available")], ts(d, 24)),
    )  # fmt: skip
    uk = uk_reliability_daily(st, w)
    # inoperative 07:00-09:00 (120) + 15:00-15:30 (30) = 150; excluded 07:00-08:00 (closed) = 60.
    # offline: 08:00-09:00 (counted, both offline) + 15:00-15:30 (counted through connector 1,
    # connector 2 offline) = 90; 07:00-08:00 is excluded and 12:00-12:30 is not inoperative.
    assert uk.select("inoperative_minutes", "excluded_minutes", "closed_minutes",
                     "offline_minutes").rows() == [(150.0, 60.0, 720.0, 90.0)]  # fmt: skip
    # only accessible hours count: 100 * ((1440 - 720) - (150 - 60)) / (1440 - 720) = 87.5
    assert uk["reliability_pct"].to_list() == [87.5]


def test_uptime_quarter_rollup_is_recomputed_from_sums() -> None:
    def row(day: date, period: float, outage: float, excluded: float) -> dict:
        return {"day": day, "charge_point_id": "CP1", "evse_id": 1, "connector_id": 1,
                "site_id": "S1", "minutes_in_period": period, "outage_minutes": outage,
                "excluded_minutes": excluded,
                "uptime_pct": 100 * (period - (outage - excluded)) / period}  # fmt: skip

    daily = frame(F.UPTIME, [
        row(date(2024, 6, 29), 1440.0, 720.0, 0.0),  # 50%
        row(date(2024, 6, 30), 480.0, 0.0, 0.0),  # 100% over a shorter period
        row(date(2024, 7, 1), 1440.0, 180.0, 90.0),  # next quarter
    ])  # fmt: skip
    q = uptime_rollup(daily, "quarter")
    # Q2: (1920 - 720) / 1920 * 100 = 62.5 (an average of percentages would say 75)
    # Q3: (1440 - 90) / 1440 * 100 = 93.75
    assert q.select("period_start", "days", "minutes_in_period", "outage_minutes",
                    "excluded_minutes", "uptime_pct", "meets_target").rows() == [
        (date(2024, 4, 1), 2, 1920.0, 720.0, 0.0, 62.5, False),
        (date(2024, 7, 1), 1, 1440.0, 180.0, 90.0, 93.75, False),
    ]  # fmt: skip
    y = uptime_rollup(daily, "year")
    # 100 * (3360 - 810) / 3360
    assert y["uptime_pct"].to_list() == [100 * (3360 - 810) / 3360]
    with pytest.raises(ValueError, match="period"):
        uptime_rollup(daily, "week")


def test_uk_network_reliability_is_the_mean_of_charge_points() -> None:
    def row(cp_id: str, day: date, inoperative: float) -> dict:
        return {"day": day, "charge_point_id": cp_id, "site_id": "S1",
                "minutes_in_period": 1440.0, "inoperative_minutes": inoperative,
                "excluded_minutes": 0.0, "reliability_pct": None}  # fmt: skip

    daily = frame(F.UK_RELIABILITY, [
        row("A", date(2024, 1, 1), 360.0), row("A", date(2024, 1, 2), 0.0),  # 87.5%
        row("B", date(2024, 1, 1), 0.0), row("B", date(2024, 1, 2), 0.0),  # 100%
    ])  # fmt: skip
    net = uk_network_reliability(daily, "year")
    # A: 100 * (2880 - 360) / 2880 = 87.5, B: 100; the network mean 93.75 misses 99%
    assert net.select("period_start", "charge_points", "reliability_pct", "min_reliability_pct",
                      "meets_target").rows() == [(date(2024, 1, 1), 2, 93.75, 87.5,
                                                  False)]  # fmt: skip


# -- energy ---------------------------------------------------------------------------------------
def _energy_rows() -> dict:
    d, prev = DAY, DAY - timedelta(days=1)
    return {
        "sites": [site("S1"), site("EMPTY")],  # EMPTY has no charge point: no load curve rows
        "charge_points": [cp("E1", "S1")],
        "connectors": [conn("E1", 1), conn("E1", 2), conn("E1", 3)],
        "meter": [
            # T1 on EVSE 1: 10:10 -> 10:20 +1000 Wh spans 10:15: 500 Wh each side;
            # 10:20 -> 10:30 +500 Wh in the 10:15 interval. Duplicate 10:20 sample counts once.
            meter("E1", 1, "T1", ts(d, 10, 10), 1000.0, context="Transaction.Begin"),
            meter("E1", 1, "T1", ts(d, 10, 20), 2000.0),
            meter("E1", 1, "T1", ts(d, 10, 20), 2000.0, context="Trigger"),
            meter("E1", 1, "T1", ts(d, 10, 30), 2500.0, context="Transaction.End"),
            meter("E1", 1, "T1", ts(d, 10, 25), 9999.0, measurand="Power.Active.Import"),
            # T2 on EVSE 2, meter reset: +500, -5400 (counted 0), +250 = 750 Wh, all 11:00-11:15
            meter("E1", 2, "T2", ts(d, 11, 0), 5000.0),
            meter("E1", 2, "T2", ts(d, 11, 5), 5500.0),
            meter("E1", 2, "T2", ts(d, 11, 10), 100.0),
            meter("E1", 2, "T2", ts(d, 11, 15), 350.0),
            # T0 on EVSE 2 crosses midnight: 23:50 -> 00:10 +2000 Wh, half on each day;
            # 00:10 -> 00:20 +1000 Wh, 500 in 00:00-00:15 and 500 in 00:15-00:30
            meter("E1", 2, "T0", ts(prev, 23, 50), 0.0),
            meter("E1", 2, "T0", ts(d, 0, 10), 2000.0),
            meter("E1", 2, "T0", ts(d, 0, 20), 3000.0),
            meter("E1", 2, None, ts(d, 5), 123456.0),  # no transaction: ignored
        ],
    }


def _sessions() -> pl.DataFrame:
    d, prev = DAY, DAY - timedelta(days=1)
    return frame(F.SESSIONS, [
        session("E1", 2, "T0", ts(prev, 23, 50), ts(d, 0, 20)),
        session("E1", 1, "T1", ts(d, 10, 10), ts(d, 10, 30)),
        session("E1", 2, "T2", ts(d, 11, 0), ts(d, 11, 15)),
    ])  # fmt: skip


def test_load_curve_splits_pairs_pro_rata_and_ignores_resets() -> None:
    w = raw_window(DAY, **_energy_rows())
    lc = load_curve(w)
    assert lc.schema == pl.Schema(F.LOAD_CURVE)
    assert lc.height == 96 and lc["site_id"].unique().to_list() == ["S1"]
    nonzero = lc.filter(pl.col("energy_kwh") > 0).select(
        pl.col("interval_start").dt.strftime("%H:%M"), "energy_kwh", "mean_kw"
    )
    assert nonzero.rows() == [
        ("00:00", 1.5, 6.0),  # T0: 1000 + 500 Wh
        ("00:15", 0.5, 2.0),  # T0
        ("10:00", 0.5, 2.0),  # T1: half of the pair spanning 10:15
        ("10:15", 1.0, 4.0),  # T1: the other half + 500 Wh
        ("11:00", 0.75, 3.0),  # T2: 500 + 0 (reset) + 250 Wh
    ]


def test_energy_per_connector_and_site_splits_midnight_session() -> None:
    w = raw_window(DAY, **_energy_rows())
    cd = energy_connector_day(w, _sessions())
    assert cd.schema == pl.Schema(F.ENERGY_CONNECTOR_DAY)
    # EVSE 1: T1 1.5 kWh, 1 session. EVSE 2: T0's 2000 Wh after midnight + T2's 750 Wh; T0
    # started the day before, so only T2 counts as a session. EVSE 3: nothing, still a row.
    assert cd.select("evse_id", "site_id", "energy_kwh", "sessions").rows() == [
        (1, "S1", 1.5, 1), (2, "S1", 2.75, 1), (3, "S1", 0.0, 0),
    ]  # fmt: skip

    prev = DAY - timedelta(days=1)
    cd_prev = energy_connector_day(raw_window(prev, **_energy_rows()), _sessions())
    # the day before: T0's first 1000 Wh (23:50-00:00) and its session
    assert cd_prev.select("evse_id", "energy_kwh", "sessions").rows() == [
        (1, 0.0, 0), (2, 1.0, 1), (3, 0.0, 0),
    ]  # fmt: skip

    sd = energy_site_day(load_curve(w), cd)
    assert sd.schema == pl.Schema(F.ENERGY_SITE_DAY)
    assert sd.rows() == [(DAY, "S1", 4.25, 2, 6.0, ts(DAY, 0))]


def test_empty_window_gives_empty_frames_with_contract_schemas() -> None:
    w = raw_window(DAY)
    empty_states = frame(F.STATES)
    assert outages(empty_states, w).schema == pl.Schema(F.OUTAGES)
    assert uptime_daily(outages(empty_states, w), w).schema == pl.Schema(F.UPTIME)
    assert uk_reliability_daily(empty_states, w).schema == pl.Schema(F.UK_RELIABILITY)
    lc = load_curve(w)
    cd = energy_connector_day(w, frame(F.SESSIONS))
    assert (lc.schema, cd.schema) == (pl.Schema(F.LOAD_CURVE), pl.Schema(F.ENERGY_CONNECTOR_DAY))
    assert energy_site_day(lc, cd).schema == pl.Schema(F.ENERGY_SITE_DAY)
    pk = peak_usage(frame(F.UTILISATION), lc, frame(F.SESSIONS), w)
    assert pk.schema == pl.Schema(F.PEAK_USAGE) and pk.is_empty()


# -- peak usage -----------------------------------------------------------------------------------
def test_peak_usage_local_hours_across_dst_and_half_hour_zone() -> None:
    # 2024-03-10: Los Angeles springs forward at 10:00 UTC (02:00 PST -> 03:00 PDT).
    # UTC 09:00 = Sun 01:00 PST; UTC 10:00 = Sun 03:00 PDT (no local 02:00 row);
    # UTC 00:00 = Sat 9 March 16:00 PST. Kolkata (+05:30): UTC 10:00 = Sun 15:30 -> hour 15.
    d = date(2024, 3, 10)
    w = raw_window(
        d,
        sites=[site("LA", "America/Los_Angeles"), site("IN", "Asia/Kolkata", country="IN")],
        charge_points=[cp("L1", "LA"), cp("K1", "IN")],
        connectors=[conn("L1", 1), conn("L1", 2), conn("K1", 1)],
    )

    def util(cp_id, evse, hour, charging=0.0, suspended=0.0, other=0.0) -> dict:
        site_id = "LA" if cp_id == "L1" else "IN"
        return {"day": d, "hour_ts": ts(d, hour), "charge_point_id": cp_id, "evse_id": evse,
                "connector_id": 1, "site_id": site_id, "minutes_charging": charging,
                "minutes_suspended": suspended, "minutes_occupied_other": other,
                "minutes_available": 60.0 - charging - suspended - other}  # fmt: skip

    utilisation = frame(F.UTILISATION, [
        util("L1", 1, 9, charging=30.0, other=15.0), util("L1", 2, 9, charging=60.0),
        util("L1", 1, 10, suspended=30.0), util("L1", 2, 10),
        util("L1", 1, 0), util("L1", 2, 0),
        util("K1", 1, 10, charging=60.0),
    ])  # fmt: skip
    lc = frame(F.LOAD_CURVE, [
        {"day": d, "site_id": "LA", "interval_start": ts(d, 9, m), "energy_kwh": kwh,
         "mean_kw": kwh * 4} for m, kwh in ((0, 1.0), (15, 2.0), (30, 3.0), (45, 4.0))
    ] + [{"day": d, "site_id": "IN", "interval_start": ts(d, 10, 45), "energy_kwh": 5.0,
          "mean_kw": 20.0}])  # fmt: skip
    sessions = frame(F.SESSIONS, [
        session("L1", 1, "a", ts(d, 9, 20), ts(d, 9, 50), "LA"),
        session("L1", 2, "b", ts(d, 10, 5), ts(d, 11), "LA"),
        session("K1", 1, "c", ts(d, 10, 40), ts(d, 11), "IN"),  # 16:10 IST, in UTC hour 10
        session("K1", 1, "old", ts(d - timedelta(days=1), 23), ts(d, 1), "IN"),  # not today
    ])  # fmt: skip
    pk = peak_usage(utilisation, lc, sessions, w)
    assert pk.schema == pl.Schema(F.PEAK_USAGE)
    # LA 01:00: 2 connector-hours, occupied (30 + 15 + 60) / 60 = 1.75 h, charging 90 / 60 = 1.5
    # h, 1 + 2 + 3 + 4 = 10 kWh, one session. LA 03:00: suspended 30 min = 0.5 h occupied.
    assert pk.drop("day").rows() == [
        ("IN", 7, 15, 1.0, 1.0, 1.0, 5.0, 1),
        ("LA", 6, 16, 2.0, 0.0, 0.0, 0.0, 0),
        ("LA", 7, 1, 2.0, 1.75, 1.5, 10.0, 1),
        ("LA", 7, 3, 2.0, 0.5, 0.0, 0.0, 1),
    ]
    top = busiest(pk, n=1)
    # IN: 1.0 / 1.0 = 1.0 beats LA: (1.75 + 0.5) / 6 = 0.375; LA's busiest slot: Sun 01:00, 0.875
    assert top.select("site_id", "days", "occupancy_ratio", "busiest_weekday", "busiest_hour",
                      "busiest_occupancy_ratio").rows() == [("IN", 1, 1.0, 7, 15, 1.0)]  # fmt: skip
    la = busiest(pk.filter(pl.col("site_id") == "LA"))
    assert la.select("occupancy_ratio", "busiest_weekday", "busiest_hour",
                     "busiest_occupancy_ratio").rows() == [(0.375, 7, 1, 0.875)]  # fmt: skip
