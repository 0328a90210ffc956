"""A hypothesis fuzz of the collector (the small one; bench/fuzz.py runs 100,000 frames): 0
crashes (no ERROR record logged), every frame answered or refused as OCPP-J says, and the
connection kept open except where the spec closes it (a frame over the websocket's limit)."""

from __future__ import annotations

import gc
import json

import pytest
from websockets.asyncio.client import connect as ws_connect

from ingest.handlers import ChargePoint16
from ingest.server import Collector
from tests.fuzzing import ErrorRecords, Frame, draw_frames, fuzz, merge

FRAMES_PER_VERSION = 750


@pytest.fixture(scope="module")
def frames() -> dict[str, list[Frame]]:
    return {v: draw_frames(v, FRAMES_PER_VERSION, rng_seed=16) for v in ("1.6", "2.0.1")}


@pytest.mark.once
async def test_fuzzed_frames_answered_and_nothing_crashes(
    collector: Collector, frames: dict[str, list[Frame]]
) -> None:
    with ErrorRecords() as errors:
        result = merge(await fuzz(collector.url(), frames, chargers=3))
        await collector.writer.flush()
    assert result.frames == 2 * FRAMES_PER_VERSION
    assert result.failures == [], f"{result.failure_count} frames: " + "\n".join(result.failures)
    assert errors.summary() == []
    assert result.answered == result.frames
    assert result.reconnects_policy == result.kinds["giant"]


async def test_stray_responses_are_not_kept(collector: Collector) -> None:
    """Found by the fuzz: the `ocpp` library queued every CALLRESULT for a call() the collector
    never made, for the connection's lifetime."""
    async with ws_connect(f"{collector.url()}/STRAY", subprotocols=["ocpp1.6"]) as ws:
        for i in range(500):
            await ws.send(json.dumps([3, f"stray-{i}", {"pad": "A" * 1000}]))
        await ws.send('[2, "alive", "Heartbeat", {}]')
        assert json.loads(await ws.recv())[:2] == [3, "alive"]
        queued = [
            cp._response_queue.qsize()
            for cp in gc.get_objects()
            if type(cp) is ChargePoint16 and cp.id == "STRAY"
        ]
        assert queued and max(queued) < 10, queued


async def test_meter_value_multiplier_past_float_range_is_not_a_crash(
    collector: Collector, db
) -> None:
    """Found by the fuzz: a 2.0.1 unitOfMeasure.multiplier of 400 overflowed 10.0**400 and the
    MeterValues was answered InternalError with a traceback logged. Schema-valid (multiplier is
    any integer), so it is answered, and the non-finite value is quarantined, not stored."""
    frame = [
        2, "ovf", "MeterValues",
        {"evseId": 1, "meterValue": [{"timestamp": "2026-11-30T10:00:00Z", "sampledValue": [
            {"value": 5, "unitOfMeasure": {"unit": "Wh", "multiplier": 400}},
            {"value": 7, "measurand": "Power.Active.Import"},
        ]}]},
    ]  # fmt: skip
    with ErrorRecords() as errors:
        async with ws_connect(f"{collector.url()}/OVF", subprotocols=["ocpp2.0.1"]) as ws:
            await ws.send(json.dumps(frame))
            assert json.loads(await ws.recv()) == [3, "ovf", {}]
        await collector.writer.flush()
    assert errors.summary() == []
    stored = db.execute("SELECT measurand FROM meter_value WHERE charge_point_id = 'OVF'")
    assert stored.fetchall() == [("Power.Active.Import",)]


async def test_numbers_past_float_range_and_nul_in_ids_are_answered_not_crashes(
    collector: Collector, db
) -> None:
    """Found by the fuzz: a 401-digit meterStart (float() overflow) and a TransactionEvent whose
    transactionId holds NUL (the lookup refused it) were InternalErrors with a traceback."""
    huge = int("1" + "0" * 400)
    with ErrorRecords() as errors:
        async with ws_connect(f"{collector.url()}/BIG16", subprotocols=["ocpp1.6"]) as ws:
            start = {"connectorId": 1, "idTag": "T", "meterStart": huge,
                     "timestamp": "2026-11-30T10:00:00Z"}  # fmt: skip
            await ws.send(json.dumps([2, "big", "StartTransaction", start]))
            reply = json.loads(await ws.recv())
            assert reply[:3] == [4, "big", "PropertyConstraintViolation"]
            mv = {"connectorId": 1, "meterValue": [{"timestamp": "2026-11-30T10:00:00Z",
                                                    "sampledValue": [{"value": str(huge)}]}]}  # fmt: skip
            await ws.send(json.dumps([2, "mv", "MeterValues", mv]))
            assert json.loads(await ws.recv()) == [3, "mv", {}]
        async with ws_connect(f"{collector.url()}/NUL201", subprotocols=["ocpp2.0.1"]) as ws:
            event = {"eventType": "Updated", "timestamp": "2026-11-30T10:00:00Z",
                     "triggerReason": "MeterValuePeriodic", "seqNo": 1,
                     "transactionInfo": {"transactionId": "a\u0000b"}}  # fmt: skip
            await ws.send(json.dumps([2, "nul", "TransactionEvent", event]))
            assert json.loads(await ws.recv())[:2] == [3, "nul"]
        await collector.writer.flush()
    assert errors.summary() == []
