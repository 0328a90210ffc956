"""Sessions from the best evidence, and values that cannot be physical: pure tests on hand-built
windows (no database). The first one is the session that broke the demo on 2026-12-01."""

from __future__ import annotations

import dataclasses

import polars as pl

from pipelines.analytics.energy import energy_connector_day, load_curve
from pipelines.analytics.frames import QUARANTINE, TRANSACTION_EVENTS
from pipelines.analytics.sessions import build_sessions, reconstruct
from tests.test_analytics_sessions_states import (
    PWR,
    REG,
    cp_row,
    make_window,
    mv,
    st,
    t,
    tx,
)


def _one(window, session_id: str) -> dict:
    rows = {r["session_id"]: r for r in build_sessions(window).iter_rows(named=True)}
    return rows[session_id]


def test_201_session_without_ended_event_ends_when_the_connector_is_available() -> None:
    """TransactionEvent Started (Authorized, EVConnected), Updated Charging, Updated SuspendedEVSE,
    then StatusNotification Available and no Ended: the demo rebuilt it with end = start and 0 Wh
    and the blocking check failed the whole network's day."""
    w = make_window(
        charge_points=[cp_row("X", "S1")],
        connectors=[("X", 1, 1)],
        transactions=[tx("X", "t-1", 1, t("10:00"), 5000.0, version="2.0.1")],
        meter=[mv("X", "t-1", t("10:00"), REG, 5000.0, context="Transaction.Begin")],
        status=[
            st("X", t("09:59"), "Occupied"),
            st("X", t("10:00:40"), "Occupied"),
            st("X", t("10:01:30"), "Available"),
        ],
    )
    r = _one(w, "X:t-1")
    assert r["missing_stop"]
    assert (r["end_ts"], r["end_source"]) == (t("10:01:30"), "status")
    assert r["duration_min"] == 1.5
    assert r["end_ts"] > r["start_ts"]
    # it delivered nothing: a failed attempt, kept as data
    assert (r["energy_wh"], r["failed_attempt"]) == (0.0, True)


def test_ev_departed_ends_a_201_session_before_the_status_does() -> None:
    w = make_window(
        charge_points=[cp_row("X", "S1")],
        connectors=[("X", 1, 1)],
        transactions=[tx("X", "t-2", 1, t("10:00"), 0.0, version="2.0.1")],
        meter=[
            mv("X", "t-2", t("10:00"), REG, 0.0, context="Transaction.Begin"),
            mv("X", "t-2", t("10:30"), REG, 3000.0),
        ],
        status=[st("X", t("10:00"), "Occupied"), st("X", t("11:10"), "Available")],
    )
    events = pl.DataFrame(
        [(t("11:00"), "X", "t-2", "EVDeparted")], schema=TRANSACTION_EVENTS, orient="row"
    )
    r = _one(dataclasses.replace(w, transaction_events=events), "X:t-2")
    assert (r["end_ts"], r["end_source"], r["energy_wh"]) == (t("11:00"), "ev_departed", 3000.0)
    assert not r["failed_attempt"]


def test_next_transaction_then_last_sample_then_open() -> None:
    """No stop and no status: the next transaction on the connector says it was over (ended at
    its last sample); the last one stays open while its samples are recent and ends at the last
    sample once they are more than 2 h old."""
    w = make_window(
        charge_points=[cp_row("Y", "S1"), cp_row("Z", "S1")],
        connectors=[("Y", 1, 1), ("Z", 1, 1)],
        transactions=[
            tx("Y", "1", 1, t("08:00"), 0.0),
            tx("Y", "2", 1, t("12:00"), 5000.0),
            tx("Y", "3", 1, t("13:00"), 6000.0),  # no sample after its start
            tx("Y", "4", 1, t("20:00"), 6000.0),
            tx("Z", "9", 1, t("23:30"), 0.0),
        ],
        meter=[
            mv("Y", "1", t("08:00"), REG, 0.0),
            mv("Y", "1", t("09:00"), REG, 5000.0),
            mv("Y", "2", t("12:00"), REG, 5000.0),
            mv("Y", "2", t("12:30"), REG, 6000.0),
            mv("Y", "4", t("20:00"), REG, 6000.0),
            mv("Y", "4", t("21:00"), REG, 9000.0),
            mv("Z", "9", t("23:30"), REG, 0.0),
            mv("Z", "9", t("23:55"), REG, 1000.0),
        ],
    )
    got = {r["session_id"]: r for r in build_sessions(w).iter_rows(named=True)}
    assert (got["Y:1"]["end_ts"], got["Y:1"]["end_source"]) == (t("09:00"), "next_transaction")
    assert (got["Y:2"]["end_ts"], got["Y:2"]["end_source"]) == (t("12:30"), "next_transaction")
    # Y:3 has no sample after its start: it ended by the time Y:4 started
    assert (got["Y:3"]["end_ts"], got["Y:3"]["end_source"]) == (t("20:00"), "next_transaction")
    # Y:4: last sample 21:00, the data reach 23:55 (> 2 h later)
    assert (got["Y:4"]["end_ts"], got["Y:4"]["end_source"]) == (t("21:00"), "last_sample")
    assert (got["Z:9"]["end_ts"], got["Z:9"]["end_source"]) == (None, None)  # still open
    assert not got["Z:9"]["failed_attempt"]


def test_a_status_after_the_next_start_is_not_evidence_and_an_end_is_never_before_the_start() -> (
    None
):
    w = make_window(
        charge_points=[cp_row("Y", "S1")],
        connectors=[("Y", 1, 1)],
        transactions=[
            tx("Y", "1", 1, t("08:00"), 0.0),
            tx("Y", "2", 1, t("09:00"), 100.0, t("10:00"), 200.0),
            # a stop stamped before its start (a clock stepped back)
            tx("Y", "3", 1, t("11:00"), 200.0, t("10:59"), 200.0),
        ],
        status=[st("Y", t("09:30"), "Available")],
    )
    got = {r["session_id"]: r for r in build_sessions(w).iter_rows(named=True)}
    assert (got["Y:1"]["end_ts"], got["Y:1"]["end_source"]) == (t("09:00"), "next_transaction")
    assert got["Y:3"]["end_ts"] == got["Y:3"]["start_ts"] == t("11:00")
    assert got["Y:3"]["failed_attempt"] and got["Y:3"]["duration_min"] == 0.0


def _jump_window():
    """A 22 kW charger whose register jumps by 1 GWh in five minutes, then carries on; and a
    sample of Infinity (what '1e308' kWh becomes in Wh) on another charger."""
    return make_window(
        charge_points=[cp_row("J", "S1"), cp_row("K", "S1")],
        connectors=[("J", 1, 1), ("K", 1, 1)],
        sites=[("S1", "UTC", "GB", None)],
        transactions=[
            tx("J", "1", 1, t("10:00"), 1000.0, t("11:00"), 1e9 + 4000.0),
            tx("K", "2", 1, t("10:00"), 0.0, t("11:00"), 5000.0),
        ],
        meter=[
            mv("J", "1", t("10:00"), REG, 1000.0, context="Transaction.Begin"),
            mv("J", "1", t("10:05"), REG, 2000.0),
            mv("J", "1", t("10:10"), REG, 1e9 + 2000.0),
            mv("J", "1", t("10:30"), REG, 1e9 + 4000.0),
            mv("J", "1", t("11:00"), REG, 1e9 + 4000.0, context="Transaction.End"),
            mv("K", "2", t("10:00"), REG, 0.0, context="Transaction.Begin"),
            mv("K", "2", t("10:30"), REG, float("inf")),
            mv("K", "2", t("11:00"), REG, 5000.0, context="Transaction.End"),
            mv("K", "2", t("10:30"), PWR, 10000.0),
        ],
    )


def test_impossible_register_jump_and_non_finite_sample_are_quarantined_not_summed() -> None:
    built = reconstruct(_jump_window())
    got = {r["session_id"]: r for r in built.sessions.iter_rows(named=True)}
    j, k = got["J:1"], got["K:2"]
    # J: 1000 -> 2000 (+1000), the jump counts 0, then +2000: 3000 Wh from the samples
    assert (j["energy_wh"], j["energy_source"], j["quarantined_steps"]) == (3000.0, "samples", 1)
    # K: the Infinity sample is left out; the meter readings are good
    assert (k["energy_wh"], k["energy_source"]) == (5000.0, "meter")
    assert built.quarantine.schema == pl.Schema(QUARANTINE)
    reasons = {
        (r["charge_point_id"], r["reason"].split(" ")[0]) for r in built.quarantine.to_dicts()
    }
    assert reasons == {("J", "register"), ("K", "Energy.Active.Import.Register")}
    assert all(v is None or v < float("inf") for v in built.sessions["energy_wh"])


def test_the_load_curve_leaves_out_what_sessions_quarantine() -> None:
    w = _jump_window()
    per_connector = energy_connector_day(w, build_sessions(w))
    kwh = dict(zip(per_connector["charge_point_id"], per_connector["energy_kwh"], strict=True))
    assert kwh == {"J": 3.0, "K": 5.0}
    assert abs(load_curve(w)["energy_kwh"].sum() - 8.0) < 1e-9
