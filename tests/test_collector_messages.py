"""Issue 16 rows 10, 17, 18 and 19 (a, b): what the charger declares, every message a charger may
send, units by measurand, the context default and conflicting seqNos. Real collector, real
websockets, real PostgreSQL; answers are validated with the `ocpp` library's response schemas.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import fastjsonschema
import ocpp
import pytest
from websockets.asyncio.client import connect as ws_connect

from ingest.messages import CHARGER_INITIATED, CSMS_INITIATED
from pipelines.raw import read_window

SCHEMAS = Path(ocpp.__file__).resolve().parent
T = lambda s: datetime.fromisoformat(s).astimezone(UTC)  # noqa: E731


# -- a bare charger: raw frames in, raw answers out ------------------------------------------------
class Raw:
    def __init__(self, ws) -> None:
        self.ws, self.n = ws, 0

    async def call(self, action: str, payload: dict) -> list:
        self.n += 1
        uid = f"m{self.n}"
        await self.ws.send(json.dumps([2, uid, action, payload]))
        answer = json.loads(await self.ws.recv())
        assert answer[1] == uid
        return answer

    async def ok(self, action: str, payload: dict) -> dict:
        answer = await self.call(action, payload)
        assert answer[0] == 3, answer
        return answer[2]


async def raw_cp(collector, cp_id: str, version: str):
    ws = await ws_connect(f"{collector.url()}/{cp_id}", subprotocols=[f"ocpp{version}"])
    return ws, Raw(ws)


async def close(collector, ws) -> None:
    await ws.close()
    await collector.writer.flush()


def schema_of(version: str, action: str, response: bool) -> dict:
    if version == "1.6":
        name = f"{action}Response.json" if response else f"{action}.json"
        path = SCHEMAS / "v16" / "schemas" / name
    else:
        path = (
            SCHEMAS / "v201" / "schemas" / f"{action}{'Response' if response else 'Request'}.json"
        )
    return json.loads(path.read_text(encoding="utf-8-sig"))


def minimal(schema: dict, node: dict | None = None) -> object:
    """The smallest payload a schema accepts: required properties only, first enum values."""
    node = schema if node is None else node
    if "$ref" in node:
        return minimal(schema, schema["definitions"][node["$ref"].rsplit("/", 1)[1]])
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        return {k: minimal(schema, props[k]) for k in node.get("required", [])}
    if kind == "array":
        return [minimal(schema, node["items"]) for _ in range(node.get("minItems", 0))]
    if kind == "string":
        return "2025-05-01T10:00:00Z" if node.get("format") == "date-time" else "x"
    if kind in ("integer", "number"):
        return node.get("minimum", 1)
    if kind == "boolean":
        return False
    raise AssertionError(f"no minimal value for {node}")


# -- row 17: every charger-initiated message is accepted, stored and answered by the schema --------
def test_the_v201_schemas_are_all_classified():
    """A library upgrade that adds a message fails here until it is classified."""
    actions = {
        p.name.removesuffix("Request.json") for p in SCHEMAS.glob("v201/schemas/*Request.json")
    }
    assert CHARGER_INITIATED["2.0.1"] | CSMS_INITIATED["2.0.1"] == actions
    assert not CHARGER_INITIATED["2.0.1"] & CSMS_INITIATED["2.0.1"]
    v16 = {p.name.removesuffix(".json") for p in SCHEMAS.glob("v16/schemas/*.json")} - {
        p.name.removesuffix("Response.json") + "Response"
        for p in SCHEMAS.glob("v16/schemas/*Response.json")
    }
    assert CHARGER_INITIATED["1.6"] | CSMS_INITIATED["1.6"] == v16


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_every_charger_initiated_message_is_answered_by_the_schema(collector, db, version):
    ws, cp = await raw_cp(collector, f"ALL-{version}", version)
    answers = {}
    for action in sorted(CHARGER_INITIATED[version]):
        request = minimal(schema_of(version, action, response=False))
        answer = await cp.call(action, request)
        assert answer[0] == 3, (action, answer)
        fastjsonschema.validate(schema_of(version, action, response=True), answer[2])
        answers[action] = answer[2]
    await close(collector, ws)
    assert answers["SignCertificate"]["status"] == "Rejected"  # no CA to sign with
    if version == "2.0.1":
        assert answers["Get15118EVCertificate"]["status"] == "Failed"
        assert answers["GetCertificateStatus"]["status"] == "Failed"
        assert answers["NotifyEVChargingNeeds"]["status"] == "Rejected"  # we send no schedule
    stored = {a for (a,) in db.execute("SELECT DISTINCT action FROM charger_message").fetchall()}
    # stored in tables of their own (charge_point, connection_event, status, meter, transaction)
    typed = {"BootNotification", "Heartbeat", "MeterValues", "StartTransaction", "StopTransaction",
             "StatusNotification", "TransactionEvent", "FirmwareStatusNotification",
             "DiagnosticsStatusNotification", "NotifyEvent"}  # fmt: skip
    if version == "2.0.1":
        typed.add("SecurityEventNotification")
    assert stored >= CHARGER_INITIATED[version] - typed


async def test_security_log_and_firmware_messages_feed_connection_events(collector, db):
    ws, cp = await raw_cp(collector, "SEC16", "1.6")
    await cp.ok(
        "SecurityEventNotification",
        {"type": "InvalidCentralSystemCertificate", "timestamp": "2025-05-01T10:00:00Z"},
    )
    await cp.ok("LogStatusNotification", {"status": "Uploaded", "requestId": 7})
    await cp.ok("SignedFirmwareStatusNotification", {"status": "InvalidSignature", "requestId": 3})
    await close(collector, ws)
    rows = db.execute(
        "SELECT event, event_key, detail FROM connection_event WHERE charge_point_id = 'SEC16' "
        "AND event NOT IN ('connect', 'disconnect') ORDER BY event"
    ).fetchall()
    assert [(e, k) for e, k, _ in rows] == [
        ("firmware_status", "3"),
        ("log_status", "7"),
        ("security_event", "InvalidCentralSystemCertificate"),
    ]
    assert rows[0][2]["status"] == "InvalidSignature" and rows[0][2]["signed"] is True


# -- row 10: connectors come from what the charger declared --------------------------------------
async def test_v16_status_and_meter_for_a_phantom_connector_are_flagged(
    collector, db, database_url
):
    ws, cp = await raw_cp(collector, "PH16", "1.6")
    sn = {"errorCode": "NoError", "status": "Available", "timestamp": "2025-05-01T10:00:00Z"}
    await cp.ok("StatusNotification", {**sn, "connectorId": 0})
    await cp.ok("StatusNotification", {**sn, "connectorId": 2})  # first use, within 8: accepted
    await cp.ok("StatusNotification", {**sn, "connectorId": 99})
    mv = [{"timestamp": "2025-05-01T10:05:00Z", "sampledValue": [{"value": "5"}]}]
    await cp.ok("MeterValues", {"connectorId": 99, "meterValue": mv})
    start = {"connectorId": 99, "idTag": "T", "meterStart": 0, "timestamp": "2025-05-01T10:06:00Z"}
    tx = (await cp.ok("StartTransaction", start))["transactionId"]  # answered: it needs an id
    stop = {"transactionId": tx, "meterStop": 10, "timestamp": "2025-05-01T10:09:00Z"}
    await cp.ok("StopTransaction", stop)
    await close(collector, ws)
    assert db.execute("SELECT count(*) FROM transaction").fetchone() == (0,)
    assert db.execute(
        "SELECT evse_id, connector_id FROM connector WHERE charge_point_id = 'PH16' ORDER BY 1"
    ).fetchall() == [(0, 0), (2, 1)]
    assert db.execute("SELECT count(*) FROM evse WHERE evse_id = 99").fetchone() == (0,)
    assert db.execute("SELECT DISTINCT evse_id FROM status_event ORDER BY 1").fetchall() == [
        (0,),
        (2,),
    ]
    assert db.execute("SELECT count(*) FROM meter_value").fetchone() == (0,)
    flagged = db.execute(
        "SELECT kind, evse_id, connector_id, reason FROM quarantine ORDER BY kind"
    ).fetchall()
    assert [f[:3] for f in flagged] == [
        ("meter_value", 99, 1),
        ("status_event", 99, 1),
        ("transaction", 99, 1),
        ("transaction", 99, 1),
    ]
    assert "not declared" in flagged[0][3]
    assert collector.ctx.counters["undeclared_connector"] == 4
    # the analytics' window (energy tables, report ports) does not see it
    window = read_window(database_url, T("2025-05-01T00:00:00Z").date())
    assert window.connectors["evse_id"].to_list() == [2]
    assert window.status["evse_id"].unique().sort().to_list() == [0, 2]


async def test_v201_meter_values_use_the_evses_known_connector(collector, db):
    ws, cp = await raw_cp(collector, "KC201", "2.0.1")
    await cp.ok(
        "StatusNotification",
        {"timestamp": "2025-05-01T10:00:00Z", "connectorStatus": "Available", "evseId": 1,
         "connectorId": 2},
    )  # fmt: skip
    mv = [{"timestamp": "2025-05-01T10:05:00Z", "sampledValue": [{"value": 5.0}]}]
    await cp.ok("MeterValues", {"evseId": 1, "meterValue": mv})
    await close(collector, ws)
    assert db.execute(
        "SELECT evse_id, connector_id FROM connector WHERE charge_point_id = 'KC201'"
    ).fetchall() == [(1, 2)]
    assert db.execute("SELECT evse_id, connector_id FROM meter_value").fetchall() == [(1, 2)]


async def test_notify_report_declares_inventory_and_stores_variables(collector, db):
    ws, cp = await raw_cp(collector, "NR201", "2.0.1")

    def var(component, variable, value, evse=None, **attr):
        comp = {"name": component, **({"evse": evse} if evse else {})}
        return {"component": comp, "variable": {"name": variable},
                "variableAttribute": [{"value": value, **attr}]}  # fmt: skip

    report = [
        var("EVSE", "Available", "true", {"id": 1}),
        var("Connector", "ConnectorType", "cType2", {"id": 1, "connectorId": 1}),
        var("EVSE", "Available", "true", {"id": 2}),
        var("Connector", "ConnectorType", "cCCS2", {"id": 2, "connectorId": 1}),
        var("OCPPCommCtrlr", "HeartbeatInterval", "300", mutability="ReadWrite"),
    ]
    await cp.ok(
        "NotifyReport",
        {"requestId": 1, "generatedAt": "2025-05-01T09:00:00Z", "seqNo": 0, "reportData": report},
    )
    sn = {"timestamp": "2025-05-01T10:00:00Z", "connectorStatus": "Available", "connectorId": 1}
    await cp.ok("StatusNotification", {**sn, "evseId": 2})
    await cp.ok("StatusNotification", {**sn, "evseId": 3})  # beyond the 2 EVSEs declared
    await close(collector, ws)
    assert db.execute(
        "SELECT evse_id, connector_id, connector_type, declared_by FROM connector "
        "WHERE charge_point_id = 'NR201' ORDER BY 1, 2"
    ).fetchall() == [(1, 1, "cType2", "NotifyReport"), (2, 1, "cCCS2", "NotifyReport")]
    assert db.execute("SELECT evse_id FROM status_event").fetchall() == [(2,)]
    assert db.execute("SELECT kind, evse_id FROM quarantine").fetchall() == [("status_event", 3)]
    assert db.execute(
        "SELECT component, evse_id, variable, value FROM charger_variable "
        "WHERE variable = 'HeartbeatInterval'"
    ).fetchall() == [("OCPPCommCtrlr", None, "HeartbeatInterval", "300")]


# -- row 18: units by measurand --------------------------------------------------------------------
async def test_v201_units_default_by_measurand(collector, db):
    ws, cp = await raw_cp(collector, "U201", "2.0.1")
    await cp.ok(
        "StatusNotification",
        {"timestamp": "2025-05-01T10:00:00Z", "connectorStatus": "Available", "evseId": 1,
         "connectorId": 1},
    )  # fmt: skip
    values = [
        {"value": 16000, "measurand": "Current.Import", "unitOfMeasure": {"multiplier": -3}},
        {"value": 7, "measurand": "Power.Active.Import", "unitOfMeasure": {"multiplier": 3}},
        {"value": 2, "measurand": "Energy.Reactive.Import.Register", "unitOfMeasure": {}},
        {"value": 12, "unitOfMeasure": {"multiplier": 3}},
    ]
    mv = [{"timestamp": "2025-05-01T10:05:00Z", "sampledValue": values}]
    await cp.ok("MeterValues", {"evseId": 1, "meterValue": mv})
    await close(collector, ws)
    assert db.execute(
        "SELECT measurand, value, unit, raw_unit, multiplier FROM meter_value ORDER BY measurand"
    ).fetchall() == [
        ("Current.Import", 16.0, "A", None, -3),
        ("Energy.Active.Import.Register", 12000.0, "Wh", None, 3),
        ("Energy.Reactive.Import.Register", 2.0, "varh", None, 0),
        ("Power.Active.Import", 7000.0, "W", None, 3),
    ]


# -- row 19: the context default and conflicting seqNos --------------------------------------------
def _tx_event(event_type, seq_no, ts, values, **extra):
    return {
        "eventType": event_type, "timestamp": ts, "triggerReason": "MeterValuePeriodic",
        "seqNo": seq_no, "transactionInfo": {"transactionId": "TX-19"},
        "meterValue": [{"timestamp": ts, "sampledValue": values}], **extra,
    }  # fmt: skip


async def test_a_value_without_context_is_sample_periodic_and_still_starts_the_session(
    collector, db
):
    ws, cp = await raw_cp(collector, "CTX201", "2.0.1")
    evse = {"evse": {"id": 1, "connectorId": 1}}
    await cp.ok(
        "TransactionEvent",
        _tx_event("Started", 0, "2025-05-01T10:00:00Z", [{"value": 1000}], **evse),
    )
    await cp.ok(
        "TransactionEvent", _tx_event("Ended", 1, "2025-05-01T11:00:00Z", [{"value": 5000}])
    )
    await close(collector, ws)
    assert db.execute("SELECT context, value FROM meter_value ORDER BY ts").fetchall() == [
        ("Sample.Periodic", 1000.0),
        ("Sample.Periodic", 5000.0),
    ]
    assert db.execute("SELECT meter_start_wh, meter_stop_wh FROM transaction").fetchone() == (
        1000.0,
        5000.0,
    )


async def test_a_conflicting_seq_no_is_flagged_and_a_retry_is_silent(collector, db):
    ws, cp = await raw_cp(collector, "SEQ201", "2.0.1")
    evse = {"evse": {"id": 1, "connectorId": 1}}
    first = _tx_event("Started", 0, "2025-05-01T10:00:00Z", [{"value": 1000}], **evse)
    await cp.ok("TransactionEvent", first)
    await cp.ok("TransactionEvent", first)  # a retry: silent
    await cp.ok(
        "TransactionEvent", _tx_event("Updated", 0, "2025-05-01T10:30:00Z", [{"value": 3000}])
    )  # same seqNo, other content
    await close(collector, ws)
    assert db.execute("SELECT seq_no, event_type FROM transaction_event").fetchall() == [
        (0, "Started")
    ]
    assert db.execute("SELECT value FROM meter_value").fetchall() == [(1000.0,)]
    [(kind, what, reason)] = db.execute("SELECT kind, what, reason FROM quarantine").fetchall()
    assert kind == "transaction_event" and "seqNo 0" in what and "different content" in reason
    assert collector.ctx.counters["conflicting_seq_no"] == 1
