"""Bad frames get the CALLERROR the spec prescribes, change nothing but the audit log, and leave
the connection and the collector up."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.v16 import call
from websockets.asyncio.client import connect as ws_connect

from tests.conftest import charge_point

BIG = "A" * 70_000

# (frame, expected answer for 1.6, for 2.0.1); None: the same as 1.6
CASES = [
    ("not json at all", [4, "-1", "FormationViolation"], [4, "-1", "FormatViolation"]),
    ('{"an": "object"}', [4, "-1", "FormationViolation"], [4, "-1", "RpcFrameworkError"]),
    (
        '[5, "m1", "Heartbeat", {}]',
        [4, "m1", "ProtocolError"],
        [4, "m1", "MessageTypeNotSupported"],
    ),
    ('[2, "m2", "Heartbeat"]', [4, "m2", "FormationViolation"], [4, "m2", "RpcFrameworkError"]),
    ('[2, "m3", "FooBar", {}]', [4, "m3", "NotImplemented"], None),
    ('[2, "m4", "ReserveNow", {}]', [4, "m4", "NotSupported"], None),  # a CSMS-to-CP action
    (
        '[2, "m5", "MeterValues", {"connectorId": "one", "meterValue": []}]',
        [4, "m5", "TypeConstraintViolation"],
        None,
    ),
    (
        '[2, "m6", "StartTransaction", {"connectorId": 1, "meterStart": 0, "timestamp": "2025-01-01T00:00:00Z"}]',
        [4, "m6", "OccurenceConstraintViolation"],
        None,
    ),
    (
        '[2, "m7", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}]',
        [4, "m7", "PropertyConstraintViolation"],
        None,
    ),
    (
        json.dumps([2, "m8", "DataTransfer", {"vendorId": "x", "data": BIG}]),
        [4, "m8", "FormationViolation"],
        [4, "m8", "FormatViolation"],
    ),
]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_bad_frames_get_callerror_and_change_nothing(collector, db, version):
    url = f"{collector.url()}/BAD-{version}"
    async with ws_connect(url, subprotocols=[f"ocpp{version}"], max_size=None) as ws:
        for frame, answer16, answer201 in CASES:
            if version == "2.0.1" and "m5" in frame:
                continue  # 1.6-shaped payloads; 2.0.1 versions below
            expected = answer201 or answer16 if version == "2.0.1" else answer16
            if version == "2.0.1" and ("m6" in frame or "m7" in frame):
                continue
            await ws.send(frame)
            reply = json.loads(await ws.recv())
            assert reply[:3] == expected, frame[:80]
            assert isinstance(reply[3], str) and isinstance(reply[4], dict)
        # the connection is still up and answers a good frame
        await ws.send('[2, "ok", "Heartbeat", {}]')
        reply = json.loads(await ws.recv())
        assert reply[0] == 3 and reply[1] == "ok" and "currentTime" in reply[2]
    await collector.writer.flush()
    for table in ("meter_value", "transaction", "status_event", "transaction_event"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
    # ...but every frame is in the audit log, with the error code of each answer
    audit = db.execute(
        "SELECT direction, count(*), count(error_code) FROM ocpp_message GROUP BY 1 ORDER BY 1"
    ).fetchall()
    n = len(
        [c for c in CASES if version == "1.6" or not any(m in c[0] for m in ("m5", "m6", "m7"))]
    )
    assert audit == [("in", n + 1, 0), ("out", n + 1, n)]
    raw = db.execute("SELECT raw FROM ocpp_message WHERE raw IS NOT NULL").fetchall()
    assert ("not json at all",) in raw


async def test_schema_invalid_v201(collector, db):
    async with ws_connect(f"{collector.url()}/BAD-201", subprotocols=["ocpp2.0.1"]) as ws:
        await ws.send(
            json.dumps(
                [
                    2,
                    "x1",
                    "TransactionEvent",
                    {
                        "eventType": "Started",
                        "timestamp": "2025-01-01T00:00:00Z",
                        "triggerReason": "Authorized",
                        "seqNo": "zero",
                        "transactionInfo": {"transactionId": "T"},
                    },
                ]
            )
        )
        assert json.loads(await ws.recv())[:3] == [4, "x1", "TypeConstraintViolation"]
        await ws.send(
            json.dumps(
                [
                    2,
                    "x2",
                    "StatusNotification",
                    {
                        "timestamp": "yesterday",
                        "connectorStatus": "Available",
                        "evseId": 1,
                        "connectorId": 1,
                    },
                ]
            )
        )
        assert json.loads(await ws.recv())[:3] == [4, "x2", "PropertyConstraintViolation"]
        await ws.send(json.dumps([2, "x3", "BootNotification", {"reason": "PowerUp"}]))
        assert json.loads(await ws.recv())[:3] == [4, "x3", "OccurrenceConstraintViolation"]
    assert db.execute("SELECT count(*) FROM transaction").fetchone() == (0,)


async def test_other_chargers_unaffected(collector, db):
    async with (
        ws_connect(f"{collector.url()}/NOISY", subprotocols=["ocpp1.6"]) as noisy,
        charge_point(collector, "GOOD") as good,
    ):
        await noisy.send("\x00\x01 garbage")
        assert json.loads(await noisy.recv())[2] == "FormationViolation"
        res = await good.call(
            call.BootNotification(charge_point_model="m", charge_point_vendor="v")
        )
        assert res.status == "Accepted"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    frame=st.one_of(
        st.text(max_size=200),
        st.lists(
            st.one_of(
                st.integers(-5, 10),
                st.text(max_size=20),
                st.none(),
                st.dictionaries(st.text(max_size=10), st.integers()),
            ),
            max_size=5,
        ).map(json.dumps),
        st.tuples(
            st.sampled_from(
                [
                    "MeterValues",
                    "StartTransaction",
                    "StatusNotification",
                    "StopTransaction",
                    "BootNotification",
                ]
            ),
            st.dictionaries(
                st.sampled_from(
                    [
                        "connectorId",
                        "meterValue",
                        "timestamp",
                        "transactionId",
                        "idTag",
                        "meterStart",
                        "status",
                        "errorCode",
                    ]
                ),
                st.one_of(
                    st.integers(),
                    st.text(max_size=10),
                    st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=5)), max_size=2),
                ),
                max_size=6,
            ),
        ).map(lambda t: json.dumps([2, "fz", t[0], t[1]])),
    )
)
async def test_fuzzed_frames_never_take_the_connection_down(collector, frame):
    async with ws_connect(f"{collector.url()}/FUZZ", subprotocols=["ocpp1.6"]) as ws:
        await ws.send(frame)
        try:
            data = json.loads(frame)
        except ValueError:
            data = None
        is_response = isinstance(data, list) and data and data[0] in (3, 4)
        if not is_response:
            reply = json.loads(await ws.recv())
            assert reply[0] in (3, 4)
        await ws.send('[2, "alive", "Heartbeat", {}]')
        assert json.loads(await ws.recv())[:2] == [3, "alive"]
