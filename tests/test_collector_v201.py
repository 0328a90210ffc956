"""A full OCPP 2.0.1 session from a real charge-point client, stored values asserted exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from ocpp.v201 import call

from tests.conftest import charge_point

T = lambda s: datetime.fromisoformat(s).astimezone(UTC)  # noqa: E731
EVSE = {"id": 1, "connector_id": 1}


def tx_event(event_type, seq_no, ts, trigger, state, values, **extra):
    return call.TransactionEvent(
        event_type=event_type,
        timestamp=ts,
        trigger_reason=trigger,
        seq_no=seq_no,
        transaction_info={
            "transaction_id": "TX-A",
            "charging_state": state,
            **extra.pop("info", {}),
        },
        meter_value=[{"timestamp": ts, "sampled_value": values}] if values else None,
        **extra,
    )


async def test_full_session_v201(collector, db):
    async with charge_point(collector, "CS201-A", "2.0.1") as cs:
        boot = await cs.call(
            call.BootNotification(
                charging_station={
                    "model": "DC150",
                    "vendor_name": "Volt",
                    "firmware_version": "4.0",
                },
                reason="PowerUp",
            )
        )
        assert boot.status == "Accepted"
        await cs.call(
            call.StatusNotification(
                timestamp="2025-04-01T10:00:00Z",
                connector_status="Occupied",
                evse_id=1,
                connector_id=1,
            )
        )
        started = tx_event(
            "Started",
            0,
            "2025-04-01T10:00:10Z",
            "CablePluggedIn",
            "EVConnected",
            [{"value": 12.345, "unit_of_measure": {"unit": "kWh"}, "context": "Transaction.Begin"}],
            evse=EVSE,
            id_token={"id_token": "TOKEN1", "type": "ISO14443"},
        )
        res = await cs.call(started)
        assert res.id_token_info["status"] == "Accepted"
        await cs.call(
            tx_event(
                "Updated",
                1,
                "2025-04-01T10:30:00Z",
                "MeterValuePeriodic",
                "Charging",
                [
                    {"value": 15, "unit_of_measure": {"unit": "Wh", "multiplier": 3}},
                    {
                        "value": 110,
                        "measurand": "Power.Active.Import",
                        "unit_of_measure": {"unit": "W", "multiplier": 3},
                    },
                    {"value": 55, "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}},
                    {
                        "value": 230.1,
                        "measurand": "Voltage",
                        "phase": "L1-N",
                        "unit_of_measure": {"unit": "V"},
                    },
                ],
            )
        )
        ended = tx_event(
            "Ended",
            3,
            "2025-04-01T11:00:00Z",
            "EVCommunicationLost",
            "Idle",
            [{"value": 20000, "context": "Transaction.End"}],  # unit defaults to Wh
            info={"stopped_reason": "EVDisconnected"},
        )
        await cs.call(ended)
        # an offline-queued event with an older seqNo and a +10:00 offset arrives after the end
        late = tx_event(
            "Updated",
            2,
            "2025-04-01T20:45:00+10:00",
            "ChargingStateChanged",
            "SuspendedEV",
            [{"value": 19.5, "unit_of_measure": {"unit": "kWh"}}],
            offline=True,
        )
        await cs.call(late)
        await cs.call(ended)  # duplicate
        await cs.call(late)  # duplicate
        await cs.call(
            call.MeterValues(
                evse_id=0,
                meter_value=[
                    {
                        "timestamp": "2025-04-01T11:05:00Z",
                        "sampled_value": [
                            {"value": 1.0, "unit_of_measure": {"unit": "kWh", "multiplier": 3}}
                        ],
                    }
                ],
            )
        )

    assert db.execute(
        """SELECT transaction_id, ocpp_version, evse_id, connector_id, id_token, id_token_type,
                  start_ts, meter_start_wh, stop_ts, meter_stop_wh, stop_reason, charging_state,
                  last_seq_no, offline_seen FROM transaction"""
    ).fetchall() == [
        ("TX-A", "2.0.1", 1, 1, "TOKEN1", "ISO14443", T("2025-04-01T10:00:10Z"), 12345.0,
         T("2025-04-01T11:00:00Z"), 20000.0, "EVDisconnected", "Idle", 3, True)
    ]  # fmt: skip
    # ordered and deduplicated by seqNo, the late event at its own (UTC) time
    assert db.execute(
        "SELECT seq_no, event_type, ts, offline FROM transaction_event ORDER BY seq_no"
    ).fetchall() == [
        (0, "Started", T("2025-04-01T10:00:10Z"), False),
        (1, "Updated", T("2025-04-01T10:30:00Z"), False),
        (2, "Updated", T("2025-04-01T10:45:00Z"), True),
        (3, "Ended", T("2025-04-01T11:00:00Z"), False),
    ]
    assert db.execute(
        """SELECT ts, evse_id, transaction_id, measurand, phase, context, value, unit, multiplier
           FROM meter_value ORDER BY ts, measurand"""
    ).fetchall() == [
        (T("2025-04-01T10:00:10Z"), 1, "TX-A", "Energy.Active.Import.Register", "", "Transaction.Begin", 12345.0, "Wh", 0),
        (T("2025-04-01T10:30:00Z"), 1, "TX-A", "Energy.Active.Import.Register", "", "Sample.Periodic", 15000.0, "Wh", 3),
        (T("2025-04-01T10:30:00Z"), 1, "TX-A", "Power.Active.Import", "", "Sample.Periodic", 110000.0, "W", 3),
        (T("2025-04-01T10:30:00Z"), 1, "TX-A", "SoC", "", "Sample.Periodic", 55.0, "Percent", 0),
        (T("2025-04-01T10:30:00Z"), 1, "TX-A", "Voltage", "L1-N", "Sample.Periodic", 230.1, "V", 0),
        (T("2025-04-01T10:45:00Z"), 1, "TX-A", "Energy.Active.Import.Register", "", "Sample.Periodic", 19500.0, "Wh", 0),
        (T("2025-04-01T11:00:00Z"), 1, "TX-A", "Energy.Active.Import.Register", "", "Transaction.End", 20000.0, "Wh", 0),
        (T("2025-04-01T11:05:00Z"), 0, None, "Energy.Active.Import.Register", "", "Sample.Periodic", 1000000.0, "Wh", 3),
    ]  # fmt: skip
    assert db.execute("SELECT status FROM status_event").fetchall() == [("Occupied",)]
    assert db.execute(
        "SELECT vendor, model, firmware_version, ocpp_version FROM charge_point"
    ).fetchone() == ("Volt", "DC150", "4.0", "2.0.1")


async def test_notify_and_security_events_v201(collector, db):
    async with charge_point(collector, "CS201-B", "2.0.1") as cs:
        await cs.call(
            call.NotifyEvent(
                generated_at="2025-04-02T00:00:00Z",
                seq_no=0,
                event_data=[
                    {
                        "event_id": 1,
                        "timestamp": "2025-04-02T00:00:00Z",
                        "trigger": "Alerting",
                        "actual_value": "true",
                        "event_notification_type": "HardWiredNotification",
                        "component": {"name": "Connector"},
                        "variable": {"name": "Problem"},
                    },
                    {
                        "event_id": 2,
                        "timestamp": "2025-04-02T00:00:00Z",
                        "trigger": "Alerting",
                        "actual_value": "false",
                        "event_notification_type": "HardWiredNotification",
                        "component": {"name": "Connector"},
                        "variable": {"name": "Problem"},
                    },
                ],
            )
        )
        await cs.call(
            call.SecurityEventNotification(type="FirmwareUpdated", timestamp="2025-04-02T01:00:00Z")
        )
    assert db.execute(
        "SELECT event, event_key FROM connection_event WHERE event IN ('notify_event', 'security_event') ORDER BY ts, event_key"
    ).fetchall() == [
        ("notify_event", "1"),
        ("notify_event", "2"),
        ("security_event", "FirmwareUpdated"),
    ]
