"""Pure tests of sessions, connector states and utilisation: small hand-built frames, expected
values computed by hand (see the comments) and asserted exactly. No database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from pipelines.analytics.frames import (
    CHARGE_POINTS,
    CONNECTION,
    CONNECTORS,
    EXCLUSIONS,
    METER,
    SESSIONS,
    SITES,
    STATES,
    STATUS,
    TRANSACTIONS,
    UTILISATION,
    RawWindow,
)
from pipelines.analytics.sessions import build_sessions, orphan_stops
from pipelines.analytics.states import connector_states
from pipelines.analytics.utilisation import (
    UTILISATION_SITE_DAY,
    utilisation_hourly,
    utilisation_site_day,
)

DAY = date(2024, 5, 1)
D0 = datetime(2024, 5, 1, tzinfo=UTC)
REG, PWR = "Energy.Active.Import.Register", "Power.Active.Import"


def t(hhmm: str, day: int = 0) -> datetime:
    """'HH:MM' or 'HH:MM:SS' on the partition day (day=-1: the day before, 1: the day after)."""
    parts = [int(p) for p in hhmm.split(":")]
    h, m, s = (parts + [0])[:3]
    return D0 + timedelta(days=day, hours=h, minutes=m, seconds=s)


# -- helper: a RawWindow from literal rows (tuples in the contract's column order) ---------------
def frame(schema: dict[str, pl.DataType], rows: Iterable[Sequence]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=schema, orient="row")


def make_window(
    *,
    transactions: Iterable[Sequence] = (),
    meter: Iterable[Sequence] = (),
    status: Iterable[Sequence] = (),
    connection: Iterable[Sequence] = (),
    charge_points: Iterable[Sequence] = (),
    connectors: Iterable[Sequence] = (),
    sites: Iterable[Sequence] = (),
    exclusions: Iterable[Sequence] = (),
) -> RawWindow:
    return RawWindow(
        day_start=D0,
        day_end=D0 + timedelta(days=1),
        transactions=frame(TRANSACTIONS, transactions),
        meter=frame(METER, meter),
        status=frame(STATUS, status),
        connection=frame(CONNECTION, connection),
        charge_points=frame(CHARGE_POINTS, charge_points),
        connectors=frame(CONNECTORS, connectors),
        sites=frame(SITES, sites),
        exclusions=frame(EXCLUSIONS, exclusions),
    )


def tx(cp, txid, evse, start, m_start, stop=None, m_stop=None, version="1.6", conn=1):
    return (cp, txid, version, evse, conn, "TOKEN", start, m_start, stop, m_stop, None)


def mv(cp, txid, ts, measurand, value, evse=1, conn=1, context="Sample.Periodic"):
    return (ts, cp, evse, conn, txid, measurand, context, value)


def st(cp, ts, status, evse=1, conn=1, error="NoError"):
    return (ts, cp, evse, conn, status, error)


def cp_row(cp, site):
    return (cp, site, 22000.0, "AC", t("00:00", -30))


def heartbeats(cp, start="00:00", end="24:00", skip=None, every_min=20):
    """Heartbeats every `every_min` minutes in [start, end), none strictly inside `skip`, plus
    the carried-in one at 23:50 the day before."""
    rows = [(t("23:50", -1), cp, "heartbeat")]
    h0, m0 = map(int, start.split(":"))
    h1, m1 = map(int, end.split(":"))
    for minute in range(h0 * 60 + m0, h1 * 60 + m1, every_min):
        ts = D0 + timedelta(minutes=minute)
        if skip and t(skip[0]) < ts < t(skip[1]):
            continue
        rows.append((ts, cp, "heartbeat"))
    return rows


# -- sessions ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def session_window() -> RawWindow:
    return make_window(
        charge_points=[cp_row("A", "S1"), cp_row("B", "S1"), cp_row("C", "S2")],
        connectors=[("A", 1, 1), ("B", 1, 1), ("B", 2, 1), ("C", 1, 1)],
        transactions=[
            # A: tx 0 started the day before (not this day's), tx 1 crosses midnight
            tx("A", "0", 1, t("23:30", -1), 0.0, t("00:30"), 5000.0),
            tx("A", "1", 1, t("23:00"), 1000.0, t("01:00", 1), 16000.0),
            # B: tx 10 never stopped, tx 11 later on the same connector; tx 12 still open;
            # tx 99 a stop for a transaction never seen
            tx("B", "10", 1, t("08:00"), 5000.0),
            tx("B", "11", 1, t("12:00"), 9000.0, t("13:00"), 12000.0),
            tx("B", "12", 2, t("22:00"), 0.0),
            ("B", "99", "1.6", 1, 1, None, None, None, t("15:00"), 100.0, "Local"),
            # C: tx 20 with a meter reset mid-session, tx 21 whose samples miss the end
            tx("C", "20", 1, t("10:00"), 50000.0, t("11:00"), 2500.0),
            tx("C", "21", 1, t("12:00"), 2500.0, t("13:00"), 10000.0),
        ],
        meter=[
            mv("A", "1", t("23:00"), REG, 1000.0, context="Transaction.Begin"),
            mv("A", "1", t("00:00", 1), REG, 11000.0),
            mv("A", "1", t("00:40", 1), REG, 16000.0),
            mv("A", "1", t("01:00", 1), REG, 16000.0, context="Transaction.End"),
            mv("A", "1", t("23:00"), PWR, 12000.0, context="Transaction.Begin"),
            mv("A", "1", t("23:30"), PWR, 10000.0),
            mv("A", "1", t("00:20", 1), PWR, 6000.0),
            mv("A", "1", t("00:40", 1), PWR, 0.0),
            mv("A", "1", t("01:00", 1), PWR, 0.0, context="Transaction.End"),
            mv("B", "10", t("08:00"), REG, 5000.0, context="Transaction.Begin"),
            mv("B", "10", t("08:30"), REG, 8000.0),
            mv("B", "10", t("09:00"), REG, 9000.0),
            mv("B", "10", t("08:00"), PWR, 7200.0, context="Transaction.Begin"),
            mv("B", "10", t("08:30"), PWR, 2400.0),
            mv("B", "10", t("09:00"), PWR, 0.0),
            mv("B", "12", t("22:00"), REG, 0.0, evse=2, context="Transaction.Begin"),
            mv("B", "12", t("23:00"), REG, 3000.0, evse=2),
            mv("B", "12", t("23:50"), REG, 4000.0, evse=2),
            mv("B", "12", t("22:00"), PWR, 3600.0, evse=2, context="Transaction.Begin"),
            mv("B", "12", t("23:00"), PWR, 3600.0, evse=2),
            mv("B", "12", t("23:50"), PWR, 1200.0, evse=2),
            mv("C", "20", t("10:00"), REG, 50000.0, context="Transaction.Begin"),
            mv("C", "20", t("10:20"), REG, 52000.0),
            mv("C", "20", t("10:30"), REG, 500.0),
            mv("C", "20", t("10:40"), REG, 1500.0),
            mv("C", "20", t("11:00"), REG, 2500.0, context="Transaction.End"),
            mv("C", "21", t("12:00"), REG, 2500.0, context="Transaction.Begin"),
            mv("C", "21", t("12:30"), REG, 5000.0),
        ],
        status=[
            st("A", t("22:58"), "Preparing"),
            st("A", t("23:01"), "Charging"),
            st("A", t("00:40", 1), "SuspendedEV"),
            st("A", t("01:00", 1), "Finishing"),
            st("A", t("01:10", 1), "Available"),
            st("B", t("18:00", -1), "Available"),  # carried in
            st("B", t("07:59"), "Preparing"),
            st("B", t("08:00"), "Charging"),
            st("B", t("08:45"), "SuspendedEV"),
            st("B", t("10:00"), "Available"),
            st("B", t("11:55"), "Preparing"),
            st("B", t("11:56"), "Preparing"),  # a repeat is not a change
            st("B", t("12:00"), "Charging"),
            st("B", t("13:00"), "Finishing"),
            st("B", t("13:05"), "Available"),
            st("B", t("21:58"), "Preparing", evse=2),
        ],
    )


@pytest.fixture(scope="module")
def sessions(session_window: RawWindow) -> dict[str, dict]:
    df = build_sessions(session_window)
    assert df.schema == pl.Schema(SESSIONS)
    return {r["session_id"]: r for r in df.iter_rows(named=True)}


def test_sessions_are_the_day_s_starts(sessions: dict[str, dict]) -> None:
    # A:0 started the day before; B:99 has no start
    assert sorted(sessions) == ["A:1", "B:10", "B:11", "B:12", "C:20", "C:21"]
    assert {k: r["site_id"] for k, r in sessions.items()} == {
        "A:1": "S1", "B:10": "S1", "B:11": "S1", "B:12": "S1", "C:20": "S2", "C:21": "S2",
    }  # fmt: skip
    assert all(r["day"] == DAY for r in sessions.values())


def test_session_crossing_midnight(sessions: dict[str, dict]) -> None:
    r = sessions["A:1"]
    assert (r["start_ts"], r["end_ts"]) == (t("23:00"), t("01:00", 1))
    assert r["duration_min"] == 120.0
    assert (r["energy_wh"], r["energy_source"]) == (15000.0, "meter")  # 16000 - 1000, whole
    assert not (r["missing_stop"] or r["meter_reset"] or r["energy_mismatch"])
    assert r["peak_power_w"] == 12000.0
    assert r["mean_power_w"] == 5600.0  # (12000 + 10000 + 6000 + 0 + 0) / 5
    assert r["charging_end_ts"] == t("00:20", 1)  # last power sample > 0
    assert (r["plug_in_ts"], r["plug_out_ts"]) == (t("22:58"), t("01:10", 1))
    assert r["idle_min"] == 50.0  # 00:20 -> 01:10


def test_missing_stop_ended_by_the_connector_leaving_its_statuses(
    sessions: dict[str, dict],
) -> None:
    # no stop; the connector shows Available at 10:00 (before the next transaction at 12:00)
    r = sessions["B:10"]
    assert r["missing_stop"] and not r["meter_reset"] and not r["energy_mismatch"]
    assert (r["start_ts"], r["end_ts"], r["end_source"]) == (t("08:00"), t("10:00"), "status")
    assert (r["energy_wh"], r["energy_source"]) == (4000.0, "samples")  # 9000 - 5000
    assert (r["peak_power_w"], r["mean_power_w"]) == (7200.0, 3200.0)  # (7200+2400+0)/3
    assert r["charging_end_ts"] == t("08:30")
    assert (r["plug_in_ts"], r["plug_out_ts"]) == (t("07:59"), t("10:00"))
    assert (r["duration_min"], r["idle_min"]) == (120.0, 90.0)  # 08:30 -> 10:00
    assert not r["failed_attempt"]
    r = sessions["B:11"]  # no samples at all: meter energy, mean over the session
    assert (r["energy_wh"], r["energy_source"], r["peak_power_w"]) == (3000.0, "meter", None)
    assert (r["mean_power_w"], r["charging_end_ts"]) == (3000.0, t("13:00"))
    assert (r["plug_in_ts"], r["plug_out_ts"], r["idle_min"]) == (t("11:55"), t("13:05"), 5.0)


def test_missing_stop_still_open(sessions: dict[str, dict]) -> None:
    # last sample 23:50, data reach 01:10 the next day (80 min < 2 h), no later transaction
    r = sessions["B:12"]
    assert r["missing_stop"] and r["end_ts"] is None
    assert (r["duration_min"], r["idle_min"], r["plug_out_ts"]) == (None, None, None)
    assert (r["energy_wh"], r["energy_source"]) == (4000.0, "samples")
    assert (r["peak_power_w"], r["mean_power_w"]) == (3600.0, 2800.0)
    assert (r["plug_in_ts"], r["charging_end_ts"]) == (t("21:58"), t("23:50"))
    assert r["connector_id"] == 1 and r["evse_id"] == 2


def test_meter_reset_mid_session(sessions: dict[str, dict]) -> None:
    # chain 50000 | 50000 52000 500 1500 2500 | 2500: rises 2000 + 1000 + 1000
    r = sessions["C:20"]
    assert r["meter_reset"] and not r["missing_stop"] and not r["energy_mismatch"]
    assert (r["energy_wh"], r["energy_source"]) == (4000.0, "samples")
    assert r["charging_end_ts"] == t("11:00")  # last register increase
    assert (r["peak_power_w"], r["mean_power_w"]) == (None, 4000.0)  # 4000 Wh over 1 h
    assert (r["plug_in_ts"], r["plug_out_ts"], r["idle_min"]) == (None, None, 0.0)


def test_energy_mismatch(sessions: dict[str, dict]) -> None:
    # meter 10000 - 2500 = 7500; samples reach only 5000 (2500 Wh): off by 5000 > max(75, 50)
    r = sessions["C:21"]
    assert (r["energy_wh"], r["energy_source"], r["energy_mismatch"]) == (7500.0, "meter", True)
    assert r["charging_end_ts"] == t("13:00")  # meter_stop is the last increase


def test_orphan_stops(session_window: RawWindow) -> None:
    df = orphan_stops(session_window)
    assert df.schema == pl.Schema(TRANSACTIONS)
    assert df.select("charge_point_id", "transaction_id", "stop_ts").rows() == [
        ("B", "99", t("15:00"))
    ]


# -- states -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def state_window() -> RawWindow:
    return make_window(
        charge_points=[
            cp_row("H", "S-H"),
            cp_row("D", "S-X"),
            cp_row("E", "S-X"),
            cp_row("F", "S-X"),
            cp_row("G", "S-G"),
        ],  # fmt: skip
        # G's EVSE 2 is known only from a status row
        connectors=[
            ("H", 1, 1),
            ("D", 1, 1),
            ("D", 2, 1),
            ("E", 1, 1),
            ("F", 1, 1),
            ("F", 2, 1),
            ("F", 0, 0),
            ("G", 1, 1),
        ],  # fmt: skip
        connection=[
            # H: silent from 01:00 to 03:00
            *heartbeats("H", skip=("01:00", "03:00")),
            # D: disconnected 10:00-10:45
            *heartbeats("D", skip=("09:40", "11:00")),
            (t("10:00"), "D", "disconnect"),
            (t("10:45"), "D", "connect"),
            # E: disconnected since the day before (carried in), connects at 02:00
            (t("22:00", -1), "E", "disconnect"),
            (t("02:00"), "E", "connect"),
            *heartbeats("E", start="02:20")[1:],
            *heartbeats("F"),
            *heartbeats("G"),
        ],
        status=[
            st("H", t("20:00", -1), "Available"),  # carried in
            st("D", t("12:00", -1), "Available"),
            st("D", t("12:00", -1), "Available", evse=2),
            st("D", t("10:30"), "Charging"),  # sent late: falls in the offline period
            st("D", t("12:00"), "Available"),
            st("E", t("21:00", -1), "Faulted", error="PowerMeterFailure"),
            st("F", t("12:00", -1), "Available"),
            st("F", t("12:00", -1), "Available", evse=2),
            st("F", t("14:00"), "Faulted", evse=0, conn=0, error="GroundFailure"),
            st("F", t("15:00"), "Charging", evse=2),
            st("F", t("15:30"), "Available", evse=0, conn=0),
            st("F", t("16:00"), "Faulted", error="HighTemperature"),
            st("F", t("16:30"), "Available"),
            st("G", t("08:00", -1), "Available"),
            st("G", t("09:00"), "Occupied"),
            st("G", t("11:00"), "Available"),
            st("G", t("13:00"), "Occupied"),
            st("G", t("14:00"), "Available"),
            st("G", t("12:00"), "Unavailable", evse=2),
        ],
        transactions=[
            tx("G", "g1", 1, t("09:05"), 0.0, t("10:45"), 17000.0, version="2.0.1"),
            tx("G", "g2", 1, t("13:00"), 17000.0, t("14:00"), 20000.0, version="2.0.1"),
        ],
        meter=[
            # g1 sends power: > 0 from 09:10 to 10:10
            mv("G", "g1", t("09:05"), PWR, 0.0, context="Transaction.Begin"),
            mv("G", "g1", t("09:10"), PWR, 11000.0),
            mv("G", "g1", t("09:40"), PWR, 11000.0),
            mv("G", "g1", t("10:10"), PWR, 0.0),
            mv("G", "g1", t("10:45"), PWR, 0.0, context="Transaction.End"),
            # g2 sends only its register: rises from 13:00 to 13:15
            mv("G", "g2", t("13:00"), REG, 17000.0, context="Transaction.Begin"),
            mv("G", "g2", t("13:15"), REG, 20000.0),
            mv("G", "g2", t("13:30"), REG, 20000.0),
        ],
    )


@pytest.fixture(scope="module")
def states(state_window: RawWindow) -> pl.DataFrame:
    return connector_states(state_window)


def intervals(states: pl.DataFrame, cp: str, evse: int = 1) -> list[tuple]:
    rows = states.filter((pl.col("charge_point_id") == cp) & (pl.col("evse_id") == evse)).sort(
        "start_ts"
    )
    return [
        (
            s.strftime("%H:%M"),
            e.strftime("%H:%M") if e < D0 + timedelta(days=1) else "24:00",
            st,
            ec,
        )
        for s, e, st, ec in rows.select("start_ts", "end_ts", "state", "error_code").rows()
    ]


def test_states_cover_the_day_exactly(states: pl.DataFrame) -> None:
    assert states.schema == pl.Schema(STATES)
    keys = states.select("charge_point_id", "evse_id", "connector_id").unique().sort(pl.all())
    assert keys.rows() == [
        ("D", 1, 1), ("D", 2, 1), ("E", 1, 1), ("F", 1, 1), ("F", 2, 1), ("G", 1, 1), ("G", 2, 1),
        ("H", 1, 1),
    ]  # fmt: skip
    for key, g in states.sort("start_ts").group_by(["charge_point_id", "evse_id"]):
        starts, ends = g["start_ts"].to_list(), g["end_ts"].to_list()
        assert starts[0] == D0 and ends[-1] == D0 + timedelta(days=1), key
        assert starts[1:] == ends[:-1], key  # contiguous, no overlap
        assert all(s < e for s, e in zip(starts, ends, strict=True)), key


def test_offline_after_heartbeat_timeout_and_carried_in_state(states: pl.DataFrame) -> None:
    # last heartbeat 01:00, next 03:00: offline from 01:00 + 30 min; Available carried in
    assert intervals(states, "H") == [
        ("00:00", "01:30", "available", None),
        ("01:30", "03:00", "offline", None),
        ("03:00", "24:00", "available", None),
    ]


def test_disconnect_connect(states: pl.DataFrame) -> None:
    # the late Charging status at 10:30 takes effect when the charger is back
    assert intervals(states, "D", 1) == [
        ("00:00", "10:00", "available", None),
        ("10:00", "10:45", "offline", None),
        ("10:45", "12:00", "charging", None),
        ("12:00", "24:00", "available", None),
    ]
    assert intervals(states, "D", 2) == [
        ("00:00", "10:00", "available", None),
        ("10:00", "10:45", "offline", None),
        ("10:45", "24:00", "available", None),
    ]


def test_carried_in_disconnect_and_fault(states: pl.DataFrame) -> None:
    assert intervals(states, "E") == [
        ("00:00", "02:00", "offline", None),
        ("02:00", "24:00", "faulted", "PowerMeterFailure"),
    ]


def test_connector_zero_fault_overrides_connectors(states: pl.DataFrame) -> None:
    assert intervals(states, "F", 1) == [
        ("00:00", "14:00", "available", None),
        ("14:00", "15:30", "faulted", "GroundFailure"),
        ("15:30", "16:00", "available", None),
        ("16:00", "16:30", "faulted", "HighTemperature"),
        ("16:30", "24:00", "available", None),
    ]
    assert intervals(states, "F", 2) == [
        ("00:00", "14:00", "available", None),
        ("14:00", "15:30", "faulted", "GroundFailure"),
        ("15:30", "24:00", "charging", None),
    ]


def test_occupied_split_by_power_and_register(states: pl.DataFrame) -> None:
    assert intervals(states, "G", 1) == [
        ("00:00", "09:00", "available", None),
        ("09:00", "09:10", "occupied_other", None),
        ("09:10", "10:10", "charging", None),  # power > 0
        ("10:10", "11:00", "occupied_other", None),
        ("11:00", "13:00", "available", None),
        ("13:00", "13:15", "charging", None),  # no power samples: register rising
        ("13:15", "14:00", "occupied_other", None),
        ("14:00", "24:00", "available", None),
    ]
    # known only from a status row: unknown before its first status
    assert intervals(states, "G", 2) == [
        ("00:00", "12:00", "unknown", None),
        ("12:00", "24:00", "unavailable", None),
    ]


# -- utilisation ------------------------------------------------------------------------------
MINUTES = [c for c in UTILISATION if c.startswith("minutes_")]


@pytest.fixture(scope="module")
def hourly(states: pl.DataFrame, state_window: RawWindow) -> pl.DataFrame:
    return utilisation_hourly(states, state_window)


def hour(hourly: pl.DataFrame, cp: str, h: int, evse: int = 1) -> dict:
    row = hourly.filter(
        (pl.col("charge_point_id") == cp)
        & (pl.col("evse_id") == evse)
        & (pl.col("hour_ts") == D0 + timedelta(hours=h))
    )
    return {k: v for k, v in row.row(0, named=True).items() if not k.startswith("minutes_") or v}


def test_utilisation_hourly(hourly: pl.DataFrame) -> None:
    assert hourly.schema == pl.Schema(UTILISATION)
    assert hourly.height == 8 * 24
    assert hourly.group_by("charge_point_id", "evse_id").len()["len"].to_list() == [24] * 8
    assert (hourly.select(s=pl.sum_horizontal(MINUTES))["s"] == 60.0).all()
    assert hour(hourly, "H", 1) == {
        "day": DAY, "hour_ts": t("01:00"), "charge_point_id": "H", "evse_id": 1,
        "connector_id": 1, "site_id": "S-H", "minutes_available": 30.0, "minutes_offline": 30.0,
        "occupancy_ratio": 0.0, "charging_ratio": 0.0,
    }  # fmt: skip
    g9 = hour(hourly, "G", 9)
    assert (g9["minutes_occupied_other"], g9["minutes_charging"]) == (10.0, 50.0)
    assert (g9["occupancy_ratio"], g9["charging_ratio"]) == (1.0, 50.0 / 60.0)
    g13 = hour(hourly, "G", 13)
    assert (g13["minutes_charging"], g13["minutes_occupied_other"]) == (15.0, 45.0)
    assert hour(hourly, "G", 11, evse=2)["minutes_unknown"] == 60.0


def test_utilisation_minutes_sum_to_60_with_odd_boundaries() -> None:
    cuts = [D0, t("00:00:17"), t("00:00:17") + timedelta(microseconds=123457), t("00:13:59"),
            t("00:41:07") + timedelta(microseconds=999), t("01:59:59"), t("03:00")]  # fmt: skip
    names = ["available", "charging", "suspended", "faulted", "offline", "charging"]
    states = frame(
        STATES,
        [("Z", 1, 1, a, b, s, None) for a, b, s in zip(cuts[:-1], cuts[1:], names, strict=True)],
    )
    window = make_window(charge_points=[cp_row("Z", "S-Z")], connectors=[("Z", 1, 1)])
    out = utilisation_hourly(states, window)
    assert out.height == 24
    sums = out.select(s=pl.sum_horizontal(MINUTES))["s"]
    assert (sums == 60.0).all()
    # also in another order of addition
    assert (out.select(s=pl.sum_horizontal(reversed(MINUTES)))["s"] == 60.0).all()
    # hours 3.. are not covered by the states: unknown
    assert out["minutes_unknown"].to_list() == [0.0, 0.0, 0.0] + [60.0] * 21
    # 01:00:00 -> 01:59:59, on the 2^-30 minute grid
    assert abs(out["minutes_offline"][1] - (59.0 + 59.0 / 60)) <= 2**-30
    expected_hour0 = {  # seconds
        "minutes_available": 17.0,
        "minutes_charging": 0.123457,
        "minutes_suspended": 13 * 60 + 59 - 17.123457,
        "minutes_faulted": 41 * 60 + 7.000999 - (13 * 60 + 59),
        "minutes_offline": 3600 - (41 * 60 + 7.000999),
    }
    for col, seconds in expected_hour0.items():
        assert abs(out[col][0] - seconds / 60) <= 2**-30, col


def test_utilisation_site_day(hourly: pl.DataFrame) -> None:
    df = utilisation_site_day(hourly)
    assert df.schema == pl.Schema(UTILISATION_SITE_DAY)
    rows = {r["site_id"]: r for r in df.iter_rows(named=True)}
    assert rows["S-H"] == {
        "day": DAY, "site_id": "S-H", "connectors": 1, "connector_hours": 24.0,
        "available_hours": 22.5, "charging_hours": 0.0, "suspended_hours": 0.0,
        "occupied_other_hours": 0.0, "faulted_hours": 0.0, "unavailable_hours": 0.0,
        "offline_hours": 1.5, "unknown_hours": 0.0, "occupied_hours": 0.0,
        "occupancy_ratio": 0.0, "charging_ratio": 0.0,
    }  # fmt: skip
    # G: EVSE 1 charging 60 + 15 min, occupied_other 10 + 50 + 45 min, available the rest;
    # EVSE 2 unknown 12 h, unavailable 12 h
    assert rows["S-G"] == {
        "day": DAY, "site_id": "S-G", "connectors": 2, "connector_hours": 48.0,
        "available_hours": 21.0, "charging_hours": 1.25, "suspended_hours": 0.0,
        "occupied_other_hours": 1.75, "faulted_hours": 0.0, "unavailable_hours": 12.0,
        "offline_hours": 0.0, "unknown_hours": 12.0, "occupied_hours": 3.0,
        "occupancy_ratio": 3.0 / 48.0, "charging_ratio": 1.25 / 48.0,
    }  # fmt: skip


def test_empty_window_gives_empty_frames_with_the_contract_schemas() -> None:
    window = make_window()
    states = connector_states(window)
    assert states.schema == pl.Schema(STATES) and states.is_empty()
    assert build_sessions(window).schema == pl.Schema(SESSIONS)
    assert orphan_stops(window).schema == pl.Schema(TRANSACTIONS)
    hourly = utilisation_hourly(states, window)
    assert hourly.schema == pl.Schema(UTILISATION) and hourly.is_empty()
    assert utilisation_site_day(hourly).schema == pl.Schema(UTILISATION_SITE_DAY)
