"""A full OCPP 1.6J session from a real charge-point client, stored values asserted exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from ocpp.v16 import call

from tests.conftest import charge_point

T = lambda s: datetime.fromisoformat(s).astimezone(UTC)  # noqa: E731


def _meter_rows(db, cp_id):
    return db.execute(
        """SELECT ts, evse_id, connector_id, transaction_id, measurand, phase, location, context,
                  value, unit, raw_value, raw_unit
           FROM meter_value WHERE charge_point_id = %s
           ORDER BY ts, measurand, phase, context""",
        (cp_id,),
    ).fetchall()


async def test_full_session_v16(collector, db):
    async with charge_point(collector, "CP16-A") as cp:
        boot = await cp.call(
            call.BootNotification(
                charge_point_model="AC22", charge_point_vendor="Acme", firmware_version="1.2.3"
            )
        )
        assert boot.status == "Accepted" and boot.interval == 300
        await cp.call(
            call.StatusNotification(
                connector_id=1,
                error_code="NoError",
                status="Available",
                timestamp="2025-03-01T09:59:00Z",
            )
        )
        await cp.call(
            call.StatusNotification(
                connector_id=1,
                error_code="NoError",
                status="Preparing",
                timestamp="2025-03-01T09:59:30Z",
            )
        )
        auth = await cp.call(call.Authorize(id_tag="TAG1"))
        assert auth.id_tag_info["status"] == "Accepted"
        start = call.StartTransaction(
            connector_id=1, id_tag="TAG1", meter_start=1000, timestamp="2025-03-01T10:00:00Z"
        )
        started = await cp.call(start)
        tx = started.transaction_id
        assert isinstance(tx, int)
        # a charger that lost the answer retries: it must get the same id back
        assert (await cp.call(start)).transaction_id == tx
        await cp.call(
            call.StatusNotification(
                connector_id=1,
                error_code="NoError",
                status="Charging",
                timestamp="2025-03-01T10:00:05Z",
            )
        )
        meter = call.MeterValues(
            connector_id=1,
            transaction_id=tx,
            meter_value=[
                {
                    "timestamp": "2025-03-01T10:15:00Z",
                    "sampled_value": [
                        {
                            "value": "2.5",
                            "unit": "kWh",
                        },  # measurand defaults to the import register
                        {"value": "2500", "context": "Sample.Clock"},  # unit defaults to Wh
                        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                        {
                            "value": "16.1",
                            "measurand": "Current.Import",
                            "phase": "L1",
                            "unit": "A",
                        },
                        {"value": "230.5", "measurand": "Voltage", "phase": "L1-N"},  # no unit: V
                    ],
                }
            ],
        )
        await cp.call(meter)
        await cp.call(meter)  # a retried frame is stored once
        stop = call.StopTransaction(
            meter_stop=4000,
            timestamp="2025-03-01T12:00:00+01:00",  # non-UTC offset
            transaction_id=tx,
            reason="EVDisconnected",
            transaction_data=[
                {
                    "timestamp": "2025-03-01T11:00:00Z",
                    "sampled_value": [{"value": "4000", "context": "Transaction.End"}],
                }
            ],
        )
        await cp.call(stop)
        await cp.call(stop)  # duplicate StopTransaction: counted once

    assert db.execute(
        "SELECT vendor, model, firmware_version, ocpp_version FROM charge_point WHERE charge_point_id = 'CP16-A'"
    ).fetchone() == ("Acme", "AC22", "1.2.3", "1.6")
    assert db.execute(
        """SELECT transaction_id, ocpp_version, evse_id, connector_id, id_token, start_ts,
                  meter_start_wh, stop_ts, meter_stop_wh, stop_reason FROM transaction"""
    ).fetchall() == [
        (
            str(tx),
            "1.6",
            1,
            1,
            "TAG1",
            T("2025-03-01T10:00:00Z"),
            1000.0,
            T("2025-03-01T11:00:00Z"),
            4000.0,
            "EVDisconnected",
        )
    ]
    t1 = T("2025-03-01T10:15:00Z")
    assert _meter_rows(db, "CP16-A") == [
        (
            t1,
            1,
            1,
            str(tx),
            "Current.Import",
            "L1",
            "Outlet",
            "Sample.Periodic",
            16.1,
            "A",
            "16.1",
            "A",
        ),
        (
            t1,
            1,
            1,
            str(tx),
            "Energy.Active.Import.Register",
            "",
            "Outlet",
            "Sample.Clock",
            2500.0,
            "Wh",
            "2500",
            None,
        ),
        (
            t1,
            1,
            1,
            str(tx),
            "Energy.Active.Import.Register",
            "",
            "Outlet",
            "Sample.Periodic",
            2500.0,
            "Wh",
            "2.5",
            "kWh",
        ),
        (
            t1,
            1,
            1,
            str(tx),
            "Power.Active.Import",
            "",
            "Outlet",
            "Sample.Periodic",
            7200.0,
            "W",
            "7.2",
            "kW",
        ),
        (
            t1,
            1,
            1,
            str(tx),
            "Voltage",
            "L1-N",
            "Outlet",
            "Sample.Periodic",
            230.5,
            "V",
            "230.5",
            None,
        ),
        (
            T("2025-03-01T11:00:00Z"),
            1,
            1,
            str(tx),
            "Energy.Active.Import.Register",
            "",
            "Outlet",
            "Transaction.End",
            4000.0,
            "Wh",
            "4000",
            None,
        ),
    ]
    assert db.execute(
        "SELECT ts, evse_id, connector_id, status, error_code FROM status_event ORDER BY ts"
    ).fetchall() == [
        (T("2025-03-01T09:59:00Z"), 1, 1, "Available", "NoError"),
        (T("2025-03-01T09:59:30Z"), 1, 1, "Preparing", "NoError"),
        (T("2025-03-01T10:00:05Z"), 1, 1, "Charging", "NoError"),
    ]
    assert db.execute(
        "SELECT charge_point_id, evse_id, connector_id FROM connector"
    ).fetchall() == [("CP16-A", 1, 1)]
    # every frame in and out is in the audit log: 11 calls, 11 answers
    counts = dict(db.execute("SELECT direction, count(*) FROM ocpp_message GROUP BY 1").fetchall())
    assert counts == {"in": 11, "out": 11}
    actions = [
        r[0]
        for r in db.execute(
            "SELECT action FROM ocpp_message WHERE direction = 'in' ORDER BY message_seq"
        ).fetchall()
    ]
    assert actions == [
        "BootNotification",
        "StatusNotification",
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "StartTransaction",
        "StatusNotification",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
        "StopTransaction",
    ]
    events = [
        r[0]
        for r in db.execute(
            "SELECT event FROM connection_event WHERE charge_point_id = 'CP16-A' ORDER BY ts, event"
        ).fetchall()
    ]
    assert "connect" in events and "boot" in events


async def test_stop_for_unknown_transaction_gets_normal_answer(collector, db):
    async with charge_point(collector, "CP16-B") as cp:
        res = await cp.call(
            call.StopTransaction(
                meter_stop=500,
                timestamp="2025-03-02T08:00:00Z",
                transaction_id=987654,
                transaction_data=[
                    {"timestamp": "2025-03-02T08:00:00Z", "sampled_value": [{"value": "500"}]}
                ],
            )
        )
        assert res is not None  # a CALLRESULT, not a CALLERROR (which call() would turn into None)
        # the id space stays usable: a new transaction still gets an id
        started = await cp.call(
            call.StartTransaction(
                connector_id=2, id_tag="T", meter_start=0, timestamp="2025-03-02T09:00:00Z"
            )
        )
        assert started.transaction_id != 987654
    rows = db.execute(
        "SELECT transaction_id, start_ts, stop_ts, meter_stop_wh, evse_id FROM transaction ORDER BY created_at"
    ).fetchall()
    assert rows[0] == ("987654", None, T("2025-03-02T08:00:00Z"), 500.0, None)
    # transactionData values without a measurand are the import register, on the unknown connector 0
    assert db.execute(
        "SELECT evse_id, connector_id, measurand, value FROM meter_value WHERE transaction_id = '987654'"
    ).fetchall() == [(0, 0, "Energy.Active.Import.Register", 500.0)]


async def test_meter_values_edge_cases_never_fail_the_frame(collector, db):
    """meterStop 0, meterStart above the first sample, a reset register, a garbage value."""
    async with charge_point(collector, "CP16-C") as cp:
        tx = (
            await cp.call(
                call.StartTransaction(
                    connector_id=1, id_tag="T", meter_start=90000, timestamp="2025-03-03T10:00:00Z"
                )
            )
        ).transaction_id
        res = await cp.call(
            call.MeterValues(
                connector_id=1,
                transaction_id=tx,
                meter_value=[
                    {
                        "timestamp": "2025-03-03T10:05:00Z",
                        "sampled_value": [{"value": "50"}, {"value": "n/a", "measurand": "SoC"}],
                    },
                    {"timestamp": "2025-03-03T10:10:00Z", "sampled_value": [{"value": "10"}]},
                ],
            )
        )
        assert res is not None
        assert (
            await cp.call(
                call.StopTransaction(
                    meter_stop=0, timestamp="2025-03-03T11:00:00Z", transaction_id=tx
                )
            )
            is not None
        )
    assert db.execute(
        "SELECT ts, value FROM meter_value WHERE charge_point_id = 'CP16-C' ORDER BY ts"
    ).fetchall() == [(T("2025-03-03T10:05:00Z"), 50.0), (T("2025-03-03T10:10:00Z"), 10.0)]
    assert db.execute("SELECT meter_start_wh, meter_stop_wh FROM transaction").fetchone() == (
        90000.0,
        0.0,
    )
