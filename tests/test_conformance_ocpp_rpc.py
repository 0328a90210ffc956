"""Conformance against an OCPP implementation that is not the `ocpp` library: ocpp-rpc (npm) as
the charge point, in strict mode, so each CALL it sends and each answer of the collector is
checked against the official OCPP 1.6 / 2.0.1 JSON schemas that ocpp-rpc ships.

The node project is tests/conformance/ (installed by `make setup` with `npm ci`). Without node
the tests skip locally, and fail in CI (CI=true), where node is part of the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import psycopg
import pytest

from ingest.server import Collector

HERE = Path(__file__).resolve().parent / "conformance"
SCRIPT = HERE / "charger.mjs"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def node() -> str:
    """The node binary, checked before the collector starts."""
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node is not installed (the ocpp-rpc conformance charger runs on node >= 18)"
    elif not (HERE / "node_modules" / "ocpp-rpc").is_dir():
        missing = "tests/conformance/node_modules is missing: run `make setup` (npm ci)"
    if missing:
        if IN_CI:
            pytest.fail(f"{missing}; CI must run the conformance tests")
        pytest.skip(missing)
    return node


async def run_charger(node: str, collector: Collector, version: str, group: str) -> list[dict]:
    """Run the ocpp-rpc charger against `collector`; its JSON lines, the summary last."""
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        collector.url(),
        version,
        group,
        cwd=HERE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert proc.returncode == 0, (proc.returncode, lines, err.decode()[-2000:])
    await collector.writer.flush()
    return lines


def assert_all_ok(lines: list[dict], expected: list[str]) -> None:
    calls = [line for line in lines if "action" in line]
    assert [c["action"] for c in calls] == expected
    failed = [c for c in calls if not c["ok"]]
    assert failed == [], failed
    summary = lines[-1]["summary"]
    # strict mode checked our CALLs, the collector's answers and any CALL the collector sent us
    # (it sends none today: callsReceived stays empty)
    assert summary["strictFailures"] == []


CORE_16 = [
    "BootNotification", "Heartbeat", "StatusNotification", "Authorize", "StatusNotification",
    "StartTransaction", "MeterValues", "StopTransaction", "DataTransfer",
    "FirmwareStatusNotification", "DiagnosticsStatusNotification",
]  # fmt: skip
CORE_201 = [
    "BootNotification", "Heartbeat", "StatusNotification", "Authorize", "TransactionEvent",
    "StatusNotification", "TransactionEvent", "MeterValues", "TransactionEvent", "NotifyEvent",
    "SecurityEventNotification", "DataTransfer", "FirmwareStatusNotification",
]  # fmt: skip
EXTRA = {
    "1.6": [
        "SecurityEventNotification", "LogStatusNotification",
        "SignedFirmwareStatusNotification", "SignCertificate",
    ],
    "2.0.1": [
        "NotifyReport", "LogStatusNotification", "ClearedChargingLimit",
        "ReservationStatusUpdate", "NotifyEVChargingNeeds",
    ],
}  # fmt: skip


async def test_ocpp16_strict_charger(
    node: str, collector: Collector, db: psycopg.Connection
) -> None:
    lines = await run_charger(node, collector, "1.6", "core")
    assert_all_ok(lines, CORE_16)
    assert lines[-1]["summary"]["protocol"] == "ocpp1.6"
    cp = "RPC-1.6-core"
    tx = db.execute(
        "SELECT transaction_id, meter_start_wh, meter_stop_wh, stop_reason, id_token"
        " FROM transaction WHERE charge_point_id = %s",
        (cp,),
    ).fetchall()
    assert len(tx) == 1
    assert tx[0][1:] == (1000.0, 2000.0, "EVDisconnected", "TAG16")
    meter = db.execute(
        "SELECT context, measurand, value, transaction_id FROM meter_value"
        " WHERE charge_point_id = %s ORDER BY value",
        (cp,),
    ).fetchall()
    # MeterValues and StopTransaction's transactionData, each an energy and a power value
    assert len(meter) == 4
    assert {(m[0], m[1], m[2]) for m in meter if m[1].startswith("Energy")} == {
        ("Sample.Periodic", "Energy.Active.Import.Register", 1500.0),
        ("Transaction.End", "Energy.Active.Import.Register", 2000.0),
    }
    assert {m[3] for m in meter} == {tx[0][0]}
    status = db.execute(
        "SELECT status FROM status_event WHERE charge_point_id = %s ORDER BY ts", (cp,)
    ).fetchall()
    assert status == [("Available",), ("Preparing",)]


async def test_ocpp201_strict_charger(
    node: str, collector: Collector, db: psycopg.Connection
) -> None:
    lines = await run_charger(node, collector, "2.0.1", "core")
    assert_all_ok(lines, CORE_201)
    assert lines[-1]["summary"]["protocol"] == "ocpp2.0.1"
    cp = "RPC-2.0.1-core"
    tx = db.execute(
        "SELECT transaction_id, meter_start_wh, meter_stop_wh, stop_reason, evse_id"
        " FROM transaction WHERE charge_point_id = %s",
        (cp,),
    ).fetchall()
    assert tx == [("RPC-TX-1", 1000.0, 2000.0, "EVDisconnected", 1)]
    events = db.execute(
        "SELECT event_type FROM transaction_event WHERE charge_point_id = %s ORDER BY seq_no",
        (cp,),
    ).fetchall()
    assert events == [("Started",), ("Updated",), ("Ended",)]
    energy = db.execute(
        "SELECT context, value FROM meter_value WHERE charge_point_id = %s"
        " AND measurand = 'Energy.Active.Import.Register' ORDER BY value",
        (cp,),
    ).fetchall()
    assert energy == [
        ("Transaction.Begin", 1000.0),
        ("Sample.Periodic", 1500.0),
        ("Sample.Periodic", 1600.0),
        ("Transaction.End", 2000.0),
    ]
    status = db.execute(
        "SELECT status FROM status_event WHERE charge_point_id = %s ORDER BY ts", (cp,)
    ).fetchall()
    assert status == [("Available",), ("Occupied",)]
    kinds = {
        k
        for (k,) in db.execute(
            "SELECT event FROM connection_event WHERE charge_point_id = %s", (cp,)
        ).fetchall()
    }
    assert {"boot", "notify_event", "security_event"} <= kinds


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_charger_initiated_notifications_strict(
    node: str, collector: Collector, db: psycopg.Connection, version: str
) -> None:
    """The charger-initiated messages beyond the core (2.0.1 NotifyReport, LogStatusNotification,
    ClearedChargingLimit, ReservationStatusUpdate, NotifyEVChargingNeeds; the 1.6 security
    extension), each answered with a schema-valid CALLRESULT."""
    lines = await run_charger(node, collector, version, "extra")
    assert_all_ok(lines, EXTRA[version])
    audit = db.execute(
        "SELECT direction, action, message_type, error_code FROM ocpp_message"
        " WHERE charge_point_id = %s ORDER BY ts, message_seq",
        (f"RPC-{version}-extra",),
    ).fetchall()
    assert sorted(a for d, a, _, _ in audit if d == "in") == sorted(EXTRA[version])
    assert [(t, e) for d, _, t, e in audit if d == "out"] == [(3, None)] * len(EXTRA[version])
