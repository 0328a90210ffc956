"""The per-connection frame guard (ingest/frames.py), against the real collector over real
websockets: a long session's stop is stored whatever its size, and a hostile socket (oversize
frames, a flood of calls, deeply nested JSON) is refused or closed while a probe charger on the
same collector keeps getting every answer.

Observed before: a 92,705-byte StopTransaction got FormationViolation and was never stored; 1 MB
frames were parsed whole and 64 KiB of each written to the audit; 181,500 pipelined Heartbeats
from one socket were all answered; JSON nested 1,000 deep closed the connection with 1011.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import websockets
from ocpp.v16 import call
from websockets.asyncio.client import connect as ws_connect

from ingest import frames
from tests.conftest import charge_point

T0 = datetime(2025, 6, 1, tzinfo=UTC)
MEASURANDS = (
    "Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage",
    "SoC", "Frequency", "Current.Offered", "Power.Offered",
)  # fmt: skip


def _z(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def meter_values(hours: int, per_sample: int, version: str) -> list[dict]:
    """A sample every 15 minutes for `hours`, `per_sample` sampled values each."""
    out = []
    for i in range(hours * 4):
        values = []
        for j in range(per_sample):
            v: dict = {"measurand": MEASURANDS[j % 8], "context": "Sample.Periodic"}
            if version == "1.6":
                v |= {"value": f"{1000 + 250 * i + j}", "unit": "Wh" if j == 0 else "W"}
            else:
                phase = ("L1-N", "L2-N", "L3-N")[j // 8]  # 8 measurands on up to 3 phases
                v |= {"value": 1000 + 250 * i + j, "phase": phase, "location": "Outlet"}
                v["unitOfMeasure"] = {"unit": "Wh" if j == 0 else "W", "multiplier": 0}
            values.append(v)
        out.append({"timestamp": _z(T0 + timedelta(minutes=15 * i)), "sampledValue": values})
    return out


async def _call(ws, frame: str) -> list:
    await ws.send(frame)
    return json.loads(await ws.recv())


async def test_long_session_stop_is_stored_with_its_meter_values(collector, db):
    url = collector.url()
    async with ws_connect(f"{url}/LONG-16", subprotocols=["ocpp1.6"]) as ws:
        start = {"connectorId": 1, "idTag": "TAG", "meterStart": 1000, "timestamp": _z(T0)}
        reply = await _call(ws, json.dumps([2, "s1", "StartTransaction", start]))
        tx = reply[2]["transactionId"]
        stop = {
            "transactionId": tx, "idTag": "TAG", "meterStop": 25000, "reason": "EVDisconnected",
            "timestamp": _z(T0 + timedelta(hours=24)), "transactionData": meter_values(24, 8, "1.6"),
        }  # fmt: skip
        frame = json.dumps([2, "s2", "StopTransaction", stop])
        assert len(frame) <= 92_705
        frame = frame[:-1] + " " * (92_705 - len(frame)) + "]"  # the size the charger sent
        assert len(frame.encode()) == 92_705
        reply = await _call(ws, frame)
        assert reply[:2] == [3, "s2"], reply
    # the largest realistic 2.0.1 stop: 48 h, 20 sampled values every 15 minutes (~680 KB)
    async with ws_connect(f"{url}/LONG-201", subprotocols=["ocpp2.0.1"]) as ws:
        ended = {
            "eventType": "Ended", "timestamp": _z(T0 + timedelta(hours=48)),
            "triggerReason": "EVDeparted", "seqNo": 1, "evse": {"id": 1, "connectorId": 1},
            "transactionInfo": {"transactionId": "T-48H", "stoppedReason": "EVDisconnected"},
            "meterValue": meter_values(48, 20, "2.0.1"),
        }  # fmt: skip
        frame = json.dumps([2, "e1", "TransactionEvent", ended])
        assert 600_000 < len(frame) < 2**20
        reply = await _call(ws, frame)
        assert reply[:2] == [3, "e1"], reply[:4]
        # other messages keep the smaller limit
        big = {"connectorId": 1, "meterValue": meter_values(24, 8, "1.6")}
        reply = await _call(ws, json.dumps([2, "m1", "DataTransfer", {"vendorId": "x", **big}]))
        assert reply[:3] == [4, "m1", "FormatViolation"]
    await collector.writer.flush()
    stored = dict(
        db.execute(
            "SELECT charge_point_id, count(*) FROM meter_value WHERE transaction_id IS NOT NULL "
            "GROUP BY 1"
        ).fetchall()
    )
    assert stored == {"LONG-16": 24 * 4 * 8, "LONG-201": 48 * 4 * 20}
    stops = db.execute(
        "SELECT charge_point_id, stop_ts, meter_stop_wh FROM transaction ORDER BY 1"
    ).fetchall()
    assert [(cp, ts) for cp, ts, _ in stops] == [
        ("LONG-16", T0 + timedelta(hours=24)),
        ("LONG-201", T0 + timedelta(hours=48)),
    ]
    assert stops[0][2] == 25000


async def _probe(collector, cp_id: str, n: int, started: asyncio.Event) -> int:
    """A well-behaved charger: MeterValues one after another, each answered."""
    await started.wait()
    answered = 0
    async with charge_point(collector, cp_id) as cp:
        for i in range(n):
            ts = _z(datetime.now(UTC) - timedelta(seconds=n - i))
            mv = [{"timestamp": ts, "sampledValue": [{"value": str(i)}]}]
            await cp.call(call.MeterValues(1, mv))
            answered += 1
    return answered


async def _read_until_closed(ws) -> tuple[list, int | None]:
    answers = []
    try:
        while True:
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    except websockets.ConnectionClosed:
        pass
    return answers, ws.close_code


async def test_oversize_frames_are_refused_unparsed_bounded_and_closed(collector, db):
    started = asyncio.Event()

    async def hostile() -> tuple[list, int | None]:
        answers = []
        async with ws_connect(f"{collector.url()}/HOSTILE-BIG", subprotocols=["ocpp1.6"]) as ws:
            started.set()
            for i in range(11):
                frame = json.dumps([2, f"o{i}", "DataTransfer", {"vendorId": "x", "data": ""}])
                frame = frame[:-3] + "A" * 1_000_000 + '"}]'  # 1 MB: over the frame limit only
                try:
                    await ws.send(frame)
                    answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
                except websockets.ConnectionClosed:
                    break
            return answers, ws.close_code

    (answers, code), answered = await asyncio.gather(
        hostile(), _probe(collector, "PROBE-BIG", 20, started)
    )
    assert answered == 20
    assert [a[:3] for a in answers] == [[4, f"o{i}", "FormationViolation"] for i in range(10)]
    assert code == 1009
    # coming back, the next oversize frame closes it: strikes are kept per charge point
    async with ws_connect(f"{collector.url()}/HOSTILE-BIG", subprotocols=["ocpp1.6"]) as ws:
        await ws.send('[2,"o10","DataTransfer",{"vendorId":"x","data":"' + "A" * 70_000 + '"}]')
        again, code = await _read_until_closed(ws)
    assert [a[:2] for a in again] == [[4, "o10"]] and code == 1009
    await collector.writer.flush()
    rows = db.execute(
        "SELECT direction, length(coalesce(raw, payload::text)) FROM ocpp_message "
        "WHERE charge_point_id = 'HOSTILE-BIG'"
    ).fetchall()
    assert sorted(d for d, _ in rows) == ["in"] * 11 + ["out"] * 11
    assert max(n for _, n in rows) <= 1024  # a bounded head, not the megabyte
    messages = collector.health()["messages"]
    assert messages["oversize_frames"] == 11 and messages["closed:oversize"] == 2


async def test_a_flood_of_pipelined_calls_is_throttled_then_closed(collector, db):
    started = asyncio.Event()

    async def hostile() -> tuple[list, int | None]:
        async with ws_connect(f"{collector.url()}/HOSTILE-FLOOD", subprotocols=["ocpp1.6"]) as ws:
            started.set()
            try:
                for i in range(2000):  # without reading a single answer
                    await ws.send(f'[2,"h{i}","Heartbeat",{{}}]')
            except websockets.ConnectionClosed:
                pass
            return await _read_until_closed(ws)

    (answers, code), answered = await asyncio.gather(
        hostile(), _probe(collector, "PROBE-FLOOD", 30, started)
    )
    assert answered == 30
    assert code == 1008
    assert 0 < len(answers) < 1000  # the burst was answered, the rest of the flood was not
    assert all(a[0] == 3 for a in answers)
    # coming back does not buy a new burst: the guard is the charge point's, not the socket's
    again, code = await hostile()
    assert code == 1008 and len(again) < 200
    messages = collector.health()["messages"]
    assert messages["closed:flood"] == 2 and messages["throttled"] > 0


async def test_deeply_nested_json_gets_a_callerror_and_the_connection_stays_up(
    collector, db, caplog
):
    for version, code in (("1.6", "FormationViolation"), ("2.0.1", "FormatViolation")):
        async with ws_connect(f"{collector.url()}/DEEP-{version}", subprotocols=[f"ocpp{version}"]) as ws:  # fmt: skip
            for uid, depth in (("d1", 1000), ("d2", 100), ("d3", 30_000)):
                nested = "[" * depth + "]" * depth
                frame = f'[2,"{uid}","DataTransfer",{{"vendorId":"x","data":{nested}}}]'
                reply = await _call(ws, frame)
                assert reply[:3] == [4, uid, code], (version, depth)
            await ws.send('[3,"r1",{"a":' + "[" * 100 + "]" * 100 + "}]")  # never answered
            await ws.send('[4,"r2"]')  # a malformed CALLERROR: audited, not an error of ours
            reply = await _call(ws, '[2,"ok","Heartbeat",{}]')
            assert reply[:2] == [3, "ok"]
    await collector.writer.flush()
    rows = db.execute(
        "SELECT direction, error_code, length(coalesce(raw, payload::text)) FROM ocpp_message "
        "WHERE charge_point_id LIKE 'DEEP-%%' AND unique_id IS DISTINCT FROM 'ok'"
    ).fetchall()
    assert len([r for r in rows if r[0] == "in"]) == 10
    assert len([r for r in rows if r[0] == "out"]) == 6
    assert {r[1] for r in rows if r[0] == "out"} == {"FormationViolation", "FormatViolation"}
    assert max(r[2] for r in rows) <= 1024
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("[" * 33 + "]" * 33, True),
        ("[" * 32 + "]" * 32, False),
        ('{"a":' * 16 + "[" * 17 + "]" * 17 + "}" * 16, True),
        ('{"a":' * 16 + "[" * 16 + "]" * 16 + "}" * 16, False),
        (json.dumps(["[" * 40, {"k": "{" * 40}]), False),  # brackets inside strings
        (json.dumps(['\\"' + "[" * 40, "\\" * 5 + '"]]]]']), False),  # escapes
        (json.dumps([["é[[[[", {"x": [1]}]] * 40, ensure_ascii=False), False),
        (
            json.dumps([2, "e1", "TransactionEvent", {"meterValue": meter_values(2, 20, "2.0.1")}]),
            False,
        ),
    ],
)
def test_depth_is_read_outside_strings(text, deep):
    json.loads(text)
    assert frames.too_deep(text, 32) is deep
