"""Hostile frames for the collector, drawn with hypothesis, and a checker of what OCPP-J says the
answer to each must be. Shared by tests/test_fuzz_frames.py (a few thousand frames in CI) and
bench/fuzz.py (100,000 frames, with a probe charger's p99 latency beside them).

The mix: schema-shaped CALLs of real actions (payloads drawn from the `ocpp` library's JSON
schemas, one leaf sometimes swapped for a nasty value), CALLs of random JSON, wrong message types,
stray CALLRESULT/CALLERRORs, random JSON, text that is not JSON, binary frames, deep nesting, huge
numbers and NaN/Infinity literals, NUL and lone-surrogate escapes, frames over the collector's
frame limit and over the websocket's size limit.

What is expected (OCPP-J 1.6 section 4, 2.0.1 part 4 section 4): every frame that is not a
CALLRESULT/CALLERROR gets exactly one answer, in order; a readable CALL gets a CALLRESULT or a
CALLERROR with its own message id; a frame whose id cannot be read gets a CALLERROR with id "-1";
the error code is one the version defines; the connection stays open, except for a frame over
the websocket's size limit (closed 1009 by policy, counted as a reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import ocpp
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

SCHEMAS = Path(ocpp.__file__).resolve().parent
MAX_FRAME_BYTES = 65536  # Settings.max_frame_bytes' default
SOCKET_MAX_BYTES = 1 << 20  # the websocket's limit: larger frames are closed 1009 by policy

# charger-to-central-system actions, the ones a charge point really sends
ACTIONS = {
    "1.6": [
        "Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification",
        "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction",
        "StatusNotification", "StopTransaction", "SecurityEventNotification",
        "LogStatusNotification", "SignedFirmwareStatusNotification", "SignCertificate",
    ],
    "2.0.1": [
        "Authorize", "BootNotification", "ClearedChargingLimit", "DataTransfer",
        "FirmwareStatusNotification", "Heartbeat", "LogStatusNotification", "MeterValues",
        "NotifyChargingLimit", "NotifyEVChargingNeeds", "NotifyEvent", "NotifyReport",
        "ReservationStatusUpdate", "SecurityEventNotification", "SignCertificate",
        "StatusNotification", "TransactionEvent", "NotifyMonitoringReport",
        "NotifyCustomerInformation", "NotifyDisplayMessages", "ReportChargingProfiles",
        "PublishFirmwareStatusNotification", "Get15118EVCertificate", "GetCertificateStatus",
    ],
}  # fmt: skip
OTHER_ACTIONS = ["ReserveNow", "Reset", "RemoteStartTransaction", "GetVariables", "FooBar", ""]

ERROR_CODES = {
    "1.6": {
        "NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError",
        "FormationViolation", "PropertyConstraintViolation", "OccurenceConstraintViolation",
        "TypeConstraintViolation", "GenericError",
    },
    "2.0.1": {
        "FormatViolation", "GenericError", "InternalError", "MessageTypeNotSupported",
        "NotImplemented", "NotSupported", "OccurrenceConstraintViolation",
        "PropertyConstraintViolation", "ProtocolError", "RpcFrameworkError", "SecurityError",
        "TypeConstraintViolation",
    },
}  # fmt: skip
FORMAT = {"1.6": {"FormationViolation"}, "2.0.1": {"FormatViolation"}}


@dataclass(frozen=True)
class Frame:
    """One frame to send; `giant` frames are built on sending (not kept in memory)."""

    kind: str
    text: str | bytes
    repeat: int = 1  # the text is repeated this many times (giant frames)

    def wire(self) -> str | bytes:
        return self.text * self.repeat if self.repeat > 1 else self.text

    def size(self) -> int:
        n = len(self.text) if isinstance(self.text, bytes) else len(self.text.encode("utf-8"))
        return n * self.repeat

    def short(self, n: int = 240) -> str:
        head = self.text[:n]
        more = f" ...({self.size()} bytes)" if self.size() > n else ""
        return f"{self.kind}: {head!r}{more}"


# -- payloads from the library's schemas -----------------------------------------------------
def schema_path(version: str, action: str) -> Path:
    if version == "1.6":
        return SCHEMAS / "v16" / "schemas" / f"{action}.json"
    return SCHEMAS / "v201" / "schemas" / f"{action}Request.json"


TIMESTAMPS = st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2101, 1, 1)).map(
    lambda d: d.isoformat(timespec="milliseconds") + "Z"
) | st.sampled_from(
    ["2025-13-45T99:99:99Z", "yesterday", "", "2026-01-01T00:00:00+25:00", "0000-01-01T00:00:00Z"]
)
SHORT_TEXT = st.text(max_size=24)


def from_schema(node: dict, defs: dict) -> st.SearchStrategy:
    """A strategy for values of a JSON-schema node (the subset the OCPP schemas use)."""
    if "$ref" in node:
        return from_schema(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        required = set(node.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, defs) for k, v in props.items() if k in required},
            optional={k: from_schema(v, defs) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        lo = node.get("minItems", 0)
        return st.lists(from_schema(node.get("items", {}), defs), min_size=lo, max_size=lo + 2)
    if kind == "string":
        if node.get("format") == "date-time":
            return TIMESTAMPS
        limit = node.get("maxLength", 30)
        at_limit = st.tuples(st.text(min_size=1, max_size=3), st.integers(0, 1)).map(
            lambda t: (t[0] * limit)[:limit] + "x" * t[1]  # the longest allowed, or one more
        )  # drawing thousands of characters one by one is what hypothesis is slowest at
        return st.text(max_size=min(limit, 24)) | at_limit
    if kind == "integer":
        lo, hi = node.get("minimum"), node.get("maximum")
        return st.integers(0, 100) | st.integers(lo, hi) | st.sampled_from([2**31, -(2**63)])
    if kind == "number":
        return st.integers(0, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    return JSON


@cache
def payloads(version: str, action: str) -> st.SearchStrategy:
    path = schema_path(version, action)
    if not path.is_file():
        return st.dictionaries(SHORT_TEXT, SHORT_TEXT, max_size=3)
    schema = json.loads(path.read_text(encoding="utf-8-sig"))
    return from_schema(schema, schema.get("definitions", {}))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4)
    ),
    max_leaves=20,
)
NASTY_STRINGS = st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "x\udfff", "\ud83d", "\ufeff", "\u2028"]
)
NASTY = st.one_of(
    JSON,
    NASTY_STRINGS,
    st.text(min_size=1, max_size=8).map(lambda s: s + "\x00" + s),
    st.integers(min_value=2**31, max_value=2**70) | st.integers(max_value=-(2**31) - 1),
    st.sampled_from([10**400, -(10**309)]),  # past float range: float() raises OverflowError
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]),
    st.integers(1000, 5000).map(lambda n: "x" * n),
)


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    return [_replace(v, rest, new) if i == head else v for i, v in enumerate(value)]


@st.composite
def message_ids(draw: st.DrawFn) -> str:
    return draw(
        st.uuids().map(str) | st.text(min_size=1, max_size=36) | NASTY_STRINGS | st.just("-1")
    )


@st.composite
def schema_calls(draw: st.DrawFn, version: str) -> Frame:
    action = draw(st.sampled_from(ACTIONS[version]))
    payload = draw(payloads(version, action))
    kind = "schema-call"
    if draw(st.integers(0, 2)) == 0:  # a third are valid-shaped with one bad leaf
        paths = _paths(payload)
        where = paths[draw(st.integers(0, len(paths) - 1))]
        payload = _replace(payload, where, draw(NASTY))
        kind = "schema-call-mutated"
    return Frame(kind, json.dumps([2, draw(message_ids()), action, payload]))


@st.composite
def random_calls(draw: st.DrawFn, version: str) -> Frame:
    action = draw(st.sampled_from(ACTIONS[version] + OTHER_ACTIONS) | SHORT_TEXT)
    return Frame("random-call", json.dumps([2, draw(message_ids()), action, draw(JSON)]))


@st.composite
def bad_shapes(draw: st.DrawFn) -> Frame:
    mid = draw(message_ids() | JSON)
    shape = draw(
        st.sampled_from(
            [
                [
                    draw(st.integers(-5, 10).filter(lambda t: t not in (2, 3, 4))),
                    mid,
                    "Heartbeat",
                    {},
                ],
                [
                    draw(st.sampled_from(["2", 2.5, None, True, [2], {"2": 2}])),
                    mid,
                    "Heartbeat",
                    {},
                ],
                [2, mid],
                [2, mid, "Heartbeat"],
                [2, mid, "Heartbeat", {}, "extra"],
                [2, mid, draw(JSON), {}],
                [2],
                [],
            ]
        )
    )
    return Frame("bad-shape", json.dumps(shape))


@st.composite
def responses(draw: st.DrawFn) -> Frame:
    mid = draw(message_ids())
    shape = draw(
        st.sampled_from(
            [
                [3, mid, draw(JSON)],
                [4, mid, "GenericError", draw(SHORT_TEXT), draw(JSON)],
                [3, mid],
                [4, mid],
                [3],
            ]
        )
    )
    return Frame("stray-response", json.dumps(shape))


def _call_text(action: str, payload_text: str) -> str:
    return f'[2,"fz-raw","{action}",{payload_text}]'


@st.composite
def raw_texts(draw: st.DrawFn) -> Frame:
    """Text frames that json.dumps would never write: literals, escapes, nesting, digits."""
    depth = draw(st.sampled_from([100, 900, 1100, 5000, 30000]))
    digits = draw(st.integers(20, 6000))
    escape = draw(st.sampled_from(["\\u0000", "\\ud800", "\\udfff", "\\ud800\\u0000", "\\uDBFF"]))
    choice = draw(st.integers(0, 9))
    if choice == 0:
        text = _call_text(
            "DataTransfer", '{"vendorId":"x","data":' + "[" * depth + "]" * depth + "}"
        )
        return Frame("deep-nesting", text)
    if choice == 1:
        text = '[2,"fz-deep","Heartbeat",' + '{"a":' * depth + "{}" + "}" * depth + "]"
        return Frame("deep-nesting", text)
    if choice == 2:
        return Frame("deep-nesting", "[" * depth + "]" * depth)
    if choice == 3:
        value = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-0", "9" * digits]))
        mv = '{"connectorId":1,"meterValue":[{"timestamp":"2025-01-01T00:00:00Z","sampledValue":[{"value":"1"}]}],"transactionId":'
        if draw(st.booleans()):  # in a number field: the meter register itself
            start = '{"connectorId":1,"idTag":"t","timestamp":"2025-01-01T00:00:00Z","meterStart":'
            return Frame("numbers", _call_text("StartTransaction", start + value + "}"))
        return Frame("numbers", _call_text("MeterValues", mv + value + "}"))
    if choice == 4:
        value = draw(st.sampled_from(["NaN", "Infinity", "1e400", "9" * digits]))
        return Frame("numbers", f'[2,"fz-num","DataTransfer",{{"vendorId":"x","data":{value}}}]')
    if choice == 5:
        field_ = draw(st.sampled_from(["vendorId", "messageId", "data"]))
        body = {"vendorId": "v", "messageId": "m", "data": "d"}
        text = json.dumps([2, "fz-esc", "DataTransfer", body]).replace(
            f'"{field_}": "{body[field_]}"', f'"{field_}": "a{escape}b"'
        )
        return Frame("escapes", text)
    if choice == 6:
        boot = '{"chargePointVendor":"v' + escape + '","chargePointModel":"m"}'
        if draw(st.booleans()):
            boot = (
                '{"chargingStation":{"vendorName":"v'
                + escape
                + '","model":"m"},"reason":"PowerUp"}'
            )
        return Frame("escapes", _call_text("BootNotification", boot))
    if choice == 7:
        return Frame("escapes", f'[2,"id{escape}","Heartbeat",{{"k{escape}":1}}]')
    if choice == 8:
        return Frame("not-json", draw(st.text(max_size=200)))
    text = draw(st.sampled_from(["[2,", '[2,"a","Heartbeat",{}', "\x00", "[2,'a','b',{}]", "{"]))
    return Frame("not-json", text + draw(st.text(max_size=20)))


@st.composite
def binaries(draw: st.DrawFn) -> Frame:
    if draw(st.booleans()):
        return Frame("binary", draw(st.binary(max_size=200)))
    return Frame("binary", b'[2,"fz-bin","Heartbeat",{}]' + draw(st.binary(max_size=8)))


@st.composite
def oversize(draw: st.DrawFn) -> Frame:
    n = draw(st.integers(MAX_FRAME_BYTES - 100, 3 * MAX_FRAME_BYTES))
    action = draw(st.sampled_from(["DataTransfer", "StopTransaction", "TransactionEvent"]))
    return Frame("oversize", f'[2,"fz-big","{action}",{{"vendorId":"x","data":"{"A" * n}"}}]')


@st.composite
def giants(draw: st.DrawFn) -> Frame:
    """Over the websocket's size limit: the server closes with 1009 (policy), then we reconnect."""
    return Frame("giant", "A" * 4096, repeat=SOCKET_MAX_BYTES // 4096 + draw(st.integers(1, 64)))


# kinds and weights (per 1000 frames)
WEIGHTS = [
    ("schema", 380), ("random-call", 150), ("bad-shape", 90), ("stray-response", 40),
    ("json", 60), ("raw", 200), ("binary", 50), ("oversize", 10), ("giant", 2),
]  # fmt: skip


def _table(version: str) -> dict[str, st.SearchStrategy[Frame]]:
    return {
        "schema": schema_calls(version),
        "random-call": random_calls(version),
        "bad-shape": bad_shapes(),
        "stray-response": responses(),
        "json": JSON.map(lambda v: Frame("random-json", json.dumps(v))),
        "raw": raw_texts(),
        "binary": binaries(),
        "oversize": oversize(),
        "giant": giants(),
    }


def draw_frames(
    version: str,
    n: int,
    rng_seed: int = 0,
    per_example: int = 10,
    kinds: frozenset[str] | None = None,
) -> list[Frame]:
    """`n` frames drawn by hypothesis, `per_example` to a test case (the engine's own cost per
    case is most of the time otherwise); each frame's kind is chosen by WEIGHTS with a random
    seeded by hypothesis (its integers lean to small values: the weights would not hold).
    `kinds`: only these kinds of WEIGHTS (to tell which kind of frame hurts)."""
    table = _table(version)
    names = [name for name, _ in WEIGHTS if kinds is None or name in kinds]
    weights = [w for name, w in WEIGHTS if name in names]
    out: list[Frame] = []

    @seed(rng_seed)
    @settings(
        max_examples=max(1, -(-n // per_example)),
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.randoms(use_true_random=True), st.data())
    def collect(rnd: random.Random, data: st.DataObject) -> None:
        for kind in rnd.choices(names, weights, k=per_example):
            out.append(data.draw(table[kind]))

    while len(out) < n:  # the engine may stop early (a case that overran its choice budget)
        collect()
        collect = seed(rng_seed + len(out))(collect)
    return out[:n]


# -- what the answer must be -----------------------------------------------------------------
@dataclass(frozen=True)
class Expect:
    answer: str  # "one" answer, "none", "close" (1009), "any" (none or one)
    ids: frozenset[str] = frozenset()
    types: frozenset[int] = frozenset({3, 4})
    codes: frozenset[str] | None = None  # None: any code of the version


def _readable(data: Any) -> bool:
    return isinstance(data, list) and len(data) > 1 and isinstance(data[1], str) and bool(data[1])


def _readable_ids(data: Any) -> frozenset[str]:
    if _readable(data):
        return frozenset({data[1], data[1][:36]})
    return frozenset({"-1"})


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


_ID_HEAD = re.compile(r'^\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')


def expect(frame: Frame, version: str) -> Expect:
    """What OCPP-J says the collector must do with `frame`."""
    fmt = frozenset(FORMAT[version])
    if frame.size() > SOCKET_MAX_BYTES:
        return Expect("close")
    text = frame.text
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return Expect("one", frozenset({"-1"}), frozenset({4}), fmt)
    try:
        data = _strict_json(text)
    except RecursionError:  # valid JSON nested deeper than a parser need accept
        head = _ID_HEAD.match(text)
        ids = {"-1", head.group(1)} if head else {"-1"}
        return Expect("one", frozenset(ids))
    except ValueError:
        try:  # NaN, Infinity, over-long integers: not JSON, but a lenient parser reads them
            data = json.loads(text)
        except (ValueError, RecursionError):
            return Expect("one", frozenset({"-1"}), frozenset({4}), fmt)
        if isinstance(data, list) and data and type(data[0]) is int and data[0] in (3, 4):
            return Expect("any", frozenset({"-1"}))  # refused as not JSON, or read as a response
        return Expect("one", _readable_ids(data) | {"-1"})
    ids = _readable_ids(data)
    if frame.size() > MAX_FRAME_BYTES:
        return Expect("one", ids | {"-1"})  # refused (FormatViolation) or, for a transaction, read
    if not isinstance(data, list) or not data:
        return Expect("one", frozenset({"-1"}), frozenset({4}))
    kind = data[0]
    if type(kind) is int and kind in (3, 4):
        return Expect("none")
    if type(kind) is not int or kind != 2:
        if isinstance(kind, float) and kind in (2, 3, 4):
            return Expect("any", ids)  # a float type id: either reading is defensible
        codes = {"MessageTypeNotSupported"} if version == "2.0.1" else {"ProtocolError"}
        return Expect("one", ids, frozenset({4}), frozenset(codes | FORMAT[version]))
    if len(data) != 4 or not isinstance(data[2], str) or not _readable(data):
        return Expect("one", ids | {"-1"}, frozenset({4}))
    return Expect("one", ids)


# -- sending and checking --------------------------------------------------------------------
class ErrorRecords(logging.Handler):
    """Every ERROR record (with traceback) while installed: each is a crash to report."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> ErrorRecords:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)

    def summary(self, limit: int = 10) -> list[str]:
        """The distinct records (logger, message's first line, exception), with their counts."""
        seen: Counter = Counter()
        for r in self.records:
            exc = ""
            if r.exc_info and r.exc_info[1] is not None:
                first_line = (str(r.exc_info[1]).splitlines() or [""])[0]
                exc = f" [{type(r.exc_info[1]).__name__}: {first_line[:120]}]"
            first = r.getMessage().splitlines()[0] if r.getMessage() else ""
            seen[f"{r.name}: {first[:160]}{exc}"] += 1
        return [f"{n} x {line}" for line, n in seen.most_common(limit)]


@dataclass
class FuzzResult:
    version: str
    frames: int = 0
    answered: int = 0
    reconnects_policy: int = 0  # closes the spec allows (1009 for a frame over the size limit)
    kinds: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # the frame and what happened
    failure_count: int = 0
    seconds: float = 0.0

    def fail(self, frame: Frame, what: str) -> None:
        self.failure_count += 1
        if len(self.failures) < 40:
            self.failures.append(f"{frame.short()} -> {what}")


def _check(reply: list, exp: Expect, version: str) -> str | None:
    if not isinstance(reply, list) or len(reply) < 2 or reply[0] not in exp.types:
        return f"answer {str(reply)[:200]} is not one of message types {sorted(exp.types)}"
    if reply[1] not in exp.ids:
        return f"answer id {reply[1]!r} is not one of {sorted(exp.ids)[:3]}"
    if reply[0] == 4:
        if len(reply) != 5 or not isinstance(reply[3], str) or not isinstance(reply[4], dict):
            return f"CALLERROR {str(reply)[:200]} is not [4, id, code, description, details]"
        allowed = exp.codes or ERROR_CODES[version]
        if reply[2] not in allowed:
            return f"error code {reply[2]!r} is not one of {sorted(allowed)}"
    elif len(reply) != 3 or not isinstance(reply[2], dict):
        return f"CALLRESULT {str(reply)[:200]} is not [3, id, payload]"
    return None


POLICY_CLOSES = {1008, 1009}  # flood, too big: closes the collector may make by its policy


class FuzzCharger:
    """One hostile charger. Sends frames one at a time, as OCPP-J allows (the next CALL after
    the answer to the last), so each answer is matched to its frame; frames that get no answer
    (CALLRESULT/CALLERROR) are checked by the Heartbeat sentinel that closes every `batch`
    frames. After a close it reconnects: a policy close (1008, 1009) counts as a reconnect,
    any other close is a failure of the frame in flight."""

    def __init__(
        self, url: str, version: str, cp_id: str, batch: int = 20, timeout: float = 30
    ) -> None:
        self.url, self.version, self.cp_id, self.batch = url, version, cp_id, batch
        self.timeout = timeout
        self.result = FuzzResult(version)
        self._n = 0
        self._ws = None

    async def _connect(self):
        if self._ws is None:
            self._ws = await ws_connect(
                f"{self.url}/{self.cp_id}",
                subprotocols=[f"ocpp{self.version}"],
                max_size=None,
                open_timeout=self.timeout,
            )
        return self._ws

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def _recv(self) -> list:
        async with asyncio.timeout(self.timeout):
            return json.loads(await self._ws.recv())

    async def _sentinel(self) -> list[list]:
        """Send a Heartbeat; the answers that came before its own."""
        self._n += 1
        sentinel = f"sentinel-{self._n}"
        await self._ws.send(json.dumps([2, sentinel, "Heartbeat", {}]))
        before = []
        while True:
            reply = await self._recv()
            if isinstance(reply, list) and len(reply) > 1 and reply[1] == sentinel:
                return before
            before.append(reply)

    async def _one(self, f: Frame, retry: bool = True) -> None:
        """Send `f` and check what comes back; after a policy close, once more on a new
        connection (the close may have come before `f` was read), except for frames that are
        themselves over the limit."""
        res = self.result
        exp = expect(f, self.version)
        await self._connect()
        try:
            await self._ws.send(f.wire())
            if exp.answer == "one":
                reply = await self._recv()
                if isinstance(reply, list) and len(reply) > 2 and reply[0] == 4:
                    res.codes[reply[2]] += 1
                why = _check(reply, exp, self.version)
                if why:
                    res.fail(f, why)
                    return
            elif exp.answer == "any":
                extra = await self._sentinel()
                if len(extra) > 1 or any(_check(r, exp, self.version) for r in extra):
                    res.fail(f, f"answered {str(extra)[:200]}")
                    return
            elif exp.answer == "close":
                extra = await self._sentinel()
                res.fail(f, f"not closed (1009) but answered {str(extra)[:200]}")
                return
            res.answered += 1
        except ConnectionClosed as e:
            self._ws = None
            code = e.rcvd.code if e.rcvd else 1006
            if code in POLICY_CLOSES:
                res.reconnects_policy += 1
                if exp.answer == "close" or not retry:
                    res.answered += 1  # refused by policy, as the spec lets a server
                else:
                    await self._one(f, retry=False)
            else:
                res.fail(f, f"connection closed {code}" + (f" ({e.rcvd.reason})" if e.rcvd else ""))
        except TimeoutError:
            await self.close()
            res.fail(f, f"no answer in {self.timeout:.0f} s")

    async def _check_batch(self, last: Frame) -> None:
        """The sentinel: nothing may have been answered that should not have been."""
        if self._ws is None:
            return
        try:
            extra = await self._sentinel()
        except ConnectionClosed as e:
            self._ws = None
            code = e.rcvd.code if e.rcvd else 1006
            if code in POLICY_CLOSES:
                self.result.reconnects_policy += 1
            else:
                self.result.fail(last, f"connection closed {code} after it")
            return
        except TimeoutError:
            await self.close()
            self.result.fail(last, "no answer to the Heartbeat after it")
            return
        for reply in extra:
            self.result.fail(last, f"an answer no frame asked for: {str(reply)[:200]}")

    async def send(self, frames: list[Frame]) -> None:
        res = self.result
        t0 = time.perf_counter()
        for i, f in enumerate(frames, 1):
            res.frames += 1
            res.kinds[f.kind] += 1
            await self._one(f)
            if i % self.batch == 0 or i == len(frames):
                await self._check_batch(f)
        res.seconds += time.perf_counter() - t0


async def fuzz(
    url: str, frames_by_version: dict[str, list[Frame]], chargers: int = 2, batch: int = 20
) -> list[FuzzResult]:
    """Spread each version's frames over `chargers` hostile connections running side by side."""
    runners = []
    for version, frames in frames_by_version.items():
        for i in range(chargers):
            fc = FuzzCharger(url, version, f"FUZZ-{version}-{i}", batch=batch)
            runners.append((fc, frames[i::chargers]))
    try:
        await asyncio.gather(*(fc.send(fs) for fc, fs in runners))
    finally:
        for fc, _ in runners:
            with contextlib.suppress(Exception):
                await fc.close()
    return [fc.result for fc, _ in runners]


def merge(results: list[FuzzResult]) -> FuzzResult:
    out = FuzzResult("all")
    for r in results:
        out.frames += r.frames
        out.answered += r.answered
        out.reconnects_policy += r.reconnects_policy
        out.kinds += r.kinds
        out.codes += r.codes
        out.failure_count += r.failure_count
        out.failures += [f"[{r.version}] {f}" for f in r.failures]
        out.seconds = max(out.seconds, r.seconds)
    return out
