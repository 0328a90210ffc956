"""The central-system side of one charge point connection, for OCPP 1.6J and 2.0.1.

Built on the `ocpp` library's ChargePoint classes (its routing, `@on` handlers, payload classes and
case conversion). We route frames ourselves so that every malformed frame gets the CALLERROR the
spec prescribes (the library only logs those), every frame in and out reaches the audit log, and
validation uses validators compiled once (see `ingest.validation`).

A handler that stores rows calls `persist`, which returns only after the rows (and the audit row
of the frame being answered) are committed: nothing is acknowledged before it is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16Base
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201Base
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.exceptions import ConnectionClosed

from ingest import frames, messages, pgsafe, store
from ingest.clock import Clock
from ingest.inventory import LOAD_SQL, Inventory, read_report
from ingest.normalise import MeterRow, meter_rows, register_wh, v16_ids
from ingest.store import Op, Writer, is_connection_error, quarantine_op
from ingest.timestamps import format_timestamp, parse_timestamp
from ingest.txids import TransactionIds
from ingest.validation import CallError, validate, wire_code

log = logging.getLogger(__name__)

CALL, CALLRESULT, CALLERROR = 2, 3, 4


@dataclass
class CollectorContext:
    """What every connection shares: the writer, the clock and a few settings."""

    writer: Writer
    clock: Clock
    transaction_ids: TransactionIds
    limits: frames.FrameLimits = field(default_factory=frames.FrameLimits)
    heartbeat_interval: int = 300
    counters: dict[str, int] = field(default_factory=dict)
    guards: dict[str, frames.FrameGuard] = field(default_factory=dict)

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def guard(self, charge_point_id: str) -> frames.FrameGuard:
        """A charge point's frame guard, kept across its connections: reconnecting neither
        refills its burst nor forgets its strikes."""
        if charge_point_id not in self.guards:
            self.guards[charge_point_id] = frames.FrameGuard(self.limits)
        return self.guards[charge_point_id]


def _unique_id_of(data: Any) -> str:
    if isinstance(data, list) and len(data) > 1 and isinstance(data[1], str) and data[1]:
        return data[1][:36]
    return "-1"  # what OCPP prescribes when the message id cannot be read


_SNAKE: dict[str, str] = {}


def _snake_key(key: str) -> str:
    """The library's camelCase -> snake_case for one key, remembered (keys repeat endlessly;
    the cache is bounded because keys come from the network)."""
    try:
        return _SNAKE[key]
    except KeyError:
        snake = next(iter(camel_to_snake_case({key: None})))
        if len(_SNAKE) < 4096:
            _SNAKE[key] = snake
        return snake


def snake_keys(data: Any) -> Any:
    """`camel_to_snake_case` with cached keys: the conversion was a quarter of the per-frame CPU."""
    if isinstance(data, dict):
        return {_snake_key(k): snake_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [snake_keys(v) for v in data]
    return data


def _jsonb_safe(raw: str) -> bool:
    return "\\u0000" not in raw


class CollectorMixin:
    """Frame routing, auditing and persistence shared by both OCPP versions."""

    ocpp_version: str
    known_actions: frozenset[str]

    def setup(self, ctx: CollectorContext) -> None:
        self.ctx = ctx
        self._audit_in: Op | None = None
        self._known_connectors: set[tuple[int, int]] = set()
        self._tx_connectors: dict[str, tuple[int, int]] = {}
        self._guard = ctx.guard(self.id)
        self._later: list[Op] = []  # this frame's audit and heartbeat rows: one writer request

    # -- audit ---------------------------------------------------------------------------------
    def _audit(self, direction: str, raw: str, data: Any, *, error_code: str | None = None) -> Op:
        """The audit row of a frame; valid JSON is stored as jsonb from its own text."""
        structured = isinstance(data, list) and _jsonb_safe(raw)
        msg_type = data[0] if structured and data and type(data[0]) is int else None
        unique_id = data[1] if structured and len(data) > 1 and isinstance(data[1], str) else None
        action = None
        if msg_type == CALL and len(data) > 2 and isinstance(data[2], str):
            action = data[2][:100]
        now = self.ctx.clock.now()
        return Op(
            "ocpp_message",
            (
                now,
                self.id,
                direction,
                self.ocpp_version,
                msg_type if msg_type is not None and -32768 <= msg_type < 32768 else None,
                unique_id[:255] if unique_id else None,
                action,
                raw if structured else None,
                None if structured else raw.replace("\x00", ""),
                error_code,
            ),
            now,
        )

    async def persist(self, ops: list[Op]) -> None:
        """Commit `ops` together with the audit row of the frame being answered."""
        if self._audit_in is not None:
            ops = [self._audit_in, *ops]
            self._audit_in = None
        await self.ctx.writer.write(ops)

    async def _flush_audit(self) -> None:
        if self._audit_in is not None:
            op, self._audit_in = self._audit_in, None
            self.write_later([op])

    def write_later(self, ops: list[Op]) -> None:
        """Rows that need not be durable before the answer (audit, heartbeats): queued with the
        rest of this frame's as one writer request, so a flooding socket takes one queue slot
        per frame, not three."""
        self._later.extend(ops)

    async def _write_later(self) -> None:
        if self._later:
            ops, self._later = self._later, []
            await self.ctx.writer.write_nowait(ops)

    async def _policy_close(self, code: int, reason: str) -> None:
        """Close a connection that keeps misbehaving (1008 flood, 1009 oversize), counted."""
        kind = "flood" if code == 1008 else "oversize"
        self.ctx.count(f"closed:{kind}")
        log.warning("%s: closing (%d %s)", self.id, code, reason)
        detail = {"code": code, "reason": reason, "oversize_frames": self._guard.oversize.total,
                  "flood_strikes": self._guard.flood.total}  # fmt: skip
        self.write_later([self.event_op(self.now(), "policy_close", detail)])
        await self._write_later()
        # what it pipelined is discarded unread, so its close frame is seen (websockets stops
        # reading a socket whose unread frames pile up); one that never answers gets 2 s
        self._connection.close_timeout = min(self._connection.close_timeout or 2.0, 2.0)
        closing = asyncio.create_task(self._connection.close(code=code, reason=reason))
        with contextlib.suppress(ConnectionClosed):
            while not closing.done():
                await self._connection.recv()
        await closing

    async def _send(self, message: str) -> None:
        """Frames the library sends (CALLs to the charger): audited like ours."""
        await self._send_frame(json.loads(message), message)
        await self._write_later()

    async def _send_frame(self, data: list, message: str | None = None) -> None:
        if message is None:
            message = json.dumps(data, separators=(",", ":"), default=str)
        code = data[2] if data[0] == CALLERROR else None
        self.write_later([self._audit("out", message, data, error_code=code)])
        await self._connection.send(message)

    # -- routing -------------------------------------------------------------------------------
    async def route_message(self, raw: str | bytes) -> None:
        """One frame: judged by the frame guard before it is parsed (`ingest.frames`), then
        routed; whatever goes wrong, the charger gets a CALLERROR, never a dropped connection."""
        self.ctx.count("frames_in")
        guard = self._guard
        size = frames.frame_size(raw)
        wait = guard.wait_for(size)
        if wait:  # over its rate: read its next frame later (TCP slows the sender down)
            self.ctx.count("throttled")
            if guard.flooding(frames.buffered_frames(self._connection)):
                await self._policy_close(1008, "policy violation: calls far over the rate")
                return
            await asyncio.sleep(wait)
        head = frames.read_head(raw) if isinstance(raw, str) else frames.Head(None, "-1", None)
        try:
            await self._route(raw, size, head)
        except ConnectionClosed:
            raise
        except Exception as e:
            log.exception("%s: frame failed", self.id)
            self._audit_in = self._audit_in or self._audit("in", self._head_text(raw), None)
            await self._reply_error(head.unique_id, CallError("InternalError", type(e).__name__))
        finally:
            await self._write_later()

    def _head_text(self, raw: str | bytes) -> str:
        """The bounded head of a frame that is not parsed, for the audit."""
        head = raw[: self.ctx.limits.audit_head_bytes]
        return head.decode("utf-8", errors="replace") if isinstance(head, bytes) else head

    async def _route(self, raw: str | bytes, size: int, head: frames.Head) -> None:
        limits = self.ctx.limits
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                self._audit_in = self._audit("in", self._head_text(raw), None)
                await self._reply_error(
                    "-1", CallError("FormatViolation", "frame is not UTF-8 text")
                )
                return
            head = frames.read_head(raw)
        limit = frames.size_limit(limits, head, raw)
        answer = head.message_type not in (CALLRESULT, CALLERROR)  # those are never answered
        if size > limit:  # refused unparsed: only its head is read and audited
            self.ctx.count("oversize_frames")
            self._audit_in = self._audit("in", self._head_text(raw), None)
            await self._refuse(
                answer,
                head.unique_id,
                CallError(
                    "FormatViolation",
                    f"frame of {size} bytes exceeds the limit of {limit}",
                    {"size": size, "limit": limit},
                ),
            )
            if self._guard.oversize_frame():
                await self._policy_close(1009, "message too big, repeatedly")
            return
        try:
            data = json.loads(raw)
            deep = frames.too_deep(raw, limits.max_depth)
        except RecursionError:
            deep = True
        except ValueError:
            self._audit_in = self._audit("in", self._head_text(raw), None)
            await self._reply_error("-1", CallError("FormatViolation", "frame is not valid JSON"))
            return
        if deep:
            self._audit_in = self._audit("in", self._head_text(raw), None)
            await self._refuse(
                answer,
                head.unique_id,
                CallError("FormatViolation", f"JSON nested deeper than {limits.max_depth} levels"),
            )
            return
        self._audit_in = self._audit("in", raw, data)
        if not isinstance(data, list) or not data:
            await self._reply_error(
                "-1", CallError("RpcFrameworkError", "frame is not an OCPP-J message array")
            )
            return
        msg_type = data[0]
        if msg_type in (CALLRESULT, CALLERROR):  # never answered
            await self._flush_audit()
            shaped = len(data) == (3 if msg_type == CALLRESULT else 5) and type(msg_type) is int
            if not (shaped and isinstance(data[1], str)):
                self.ctx.count("malformed_responses")
            elif self._call_lock.locked():  # a call() of ours is waiting for its answer
                await super().route_message(raw)
            else:  # nobody asked: the library would queue it for the connection's lifetime
                self.ctx.count("unexpected_responses")
            return
        if msg_type != CALL:
            await self._reply_error(
                _unique_id_of(data),
                CallError(
                    "MessageTypeNotSupported", f"MessageTypeId {msg_type!r} is not supported"
                ),
            )
            return
        if len(data) != 4 or not isinstance(data[1], str) or not isinstance(data[2], str):
            await self._reply_error(
                _unique_id_of(data),
                CallError("RpcFrameworkError", "a CALL is [2, messageId, action, payload]"),
            )
            return
        _, unique_id, action, payload = data
        self.ctx.count(f"calls:{action}")
        try:
            response = await self._dispatch(action, payload)
        except CallError as e:
            await self._reply_error(unique_id, e)
            return
        except Exception as e:  # the frame was fine; we failed to store it
            log.exception("%s: %s failed", self.id, action)
            await self._reply_error(unique_id, CallError("InternalError", type(e).__name__))
            return
        await self._flush_audit()
        await self._send_frame([CALLRESULT, unique_id, response])

    async def _dispatch(self, action: str, payload: Any) -> dict:
        handler = self.route_map.get(action, {}).get("_on_action")
        if handler is None:
            if action in self.known_actions:
                raise CallError("NotSupported", f"{action} is not supported by this central system")
            raise CallError("NotImplemented", f"unknown action {action!r}")
        validate(self.ocpp_version, action, payload)
        result = await handler(**snake_keys(payload))
        return snake_to_camel_case(remove_nones(serialize_as_dict(result)))

    async def _refuse(self, answer: bool, unique_id: str, error: CallError) -> None:
        """A CALLERROR, or for a refused CALLRESULT/CALLERROR only the audit row and a count."""
        if answer:
            await self._reply_error(unique_id, error)
        else:
            self.ctx.count(f"refused_responses:{error.code}")
            await self._flush_audit()

    async def _reply_error(self, unique_id: str, error: CallError) -> None:
        self.ctx.count(f"errors:{error.code}")
        await self._flush_audit()
        code = wire_code(error.code, self.ocpp_version)
        frame = [CALLERROR, unique_id, code, error.description[:500], error.details]
        await self._send_frame(frame)

    # -- shared row builders -------------------------------------------------------------------
    def now(self) -> datetime:
        return self.ctx.clock.now()

    def connector_ops(self, evse_id: int, connector_id: int) -> list[Op]:
        """evse/connector rows the first time this connection mentions them."""
        if (evse_id, connector_id) in self._known_connectors:
            return []
        self._known_connectors.add((evse_id, connector_id))
        return [
            Op("evse", (self.id, evse_id)),
            Op("connector", (self.id, evse_id, connector_id)),
        ]

    async def lookup(self, sql: str, params: tuple) -> list[tuple] | None:
        """Rows of a lookup; None when the database cannot be reached now."""
        if not self.ctx.writer.online:
            return None
        params, _ = pgsafe.clean_params("lookup", params)  # charger-given text: no NUL
        try:
            async with self.ctx.writer.lookup() as conn:
                return await (await conn.execute(sql, params)).fetchall()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            return None

    async def inventory(self) -> Inventory:
        """The charge point's known and declared connectors (`ingest.inventory`), read once per
        connection; while the database is away, only what this connection saw."""
        inv: Inventory | None = getattr(self, "_inventory", None)
        if inv is None:
            rows = await self.lookup(LOAD_SQL, (self.id, self.id))
            if rows is None:
                return Inventory(known=set(self._known_connectors))
            inv = self._inventory = Inventory.from_rows(rows)
        return inv

    async def place(self, evse_id: int, connector_id: int) -> tuple[list[Op], str | None]:
        """(evse/connector rows, None) for a known or plausible connector, or ([], the reason)
        for one the charger never declared: its rows are then `flag`ged, not stored as data."""
        inv = await self.inventory()
        reason = inv.why_not(evse_id, connector_id)
        if reason is not None:
            self.ctx.count("undeclared_connector")
            if (evse_id, connector_id) not in inv.flagged:  # said once per connection
                inv.flagged.add((evse_id, connector_id))
                log.warning("%s: %s; its rows go to quarantine", self.id, reason)
            return [], reason
        inv.known.add((evse_id, connector_id))
        return self.connector_ops(evse_id, connector_id), None

    def flag(self, kind: str, ts: datetime, evse_id: int, connector_id: int, reason: str,
             what: str = "", raw_value: Any = "", transaction_id: str | None = None) -> Op:  # fmt: skip
        """A row the collector acknowledges but keeps out of the data (table `quarantine`)."""
        return quarantine_op(
            received_at=self.now(),
            charge_point_id=self.id,
            kind=kind,
            ts=ts,
            evse_id=evse_id,
            connector_id=connector_id,
            transaction_id=transaction_id,
            what=what,
            raw_value=raw_value,
            reason=reason,
        )

    def flag_meter(self, rows: list[MeterRow], reason: str) -> list[Op]:
        return [
            self.flag(
                "meter_value",
                r.ts,
                r.evse_id,
                r.connector_id,
                reason,
                r.measurand,
                r.raw_value,
                r.transaction_id,
            )  # fmt: skip
            for r in rows
        ]

    async def seq_digests(self, transaction_id: str) -> dict[int, str]:
        """seqNo -> digest of the TransactionEvents stored for a transaction (row 19b), read once
        per transaction and connection; at most 1000 transactions are remembered."""
        cache: dict[str, dict[int, str]] = self.__dict__.setdefault("_seq_digests", {})
        if transaction_id not in cache:
            rows = await self.lookup(
                "SELECT seq_no, digest FROM transaction_event_digest "
                "WHERE charge_point_id = %s AND transaction_id = %s",
                (self.id, transaction_id),
            )
            if len(cache) >= 1000:
                cache.pop(next(iter(cache)))
            cache[transaction_id] = dict(rows or ())
        return cache[transaction_id]

    def message_ops(self, action: str, payload: dict) -> list[Op]:
        """A charger message with no table of its own: its payload in `charger_message`, and a
        connection event for those serviceability reads (security, log, firmware status)."""
        now = self.now()
        text = pgsafe.clean_jsonb(json.dumps(payload, default=str))  # NaN, NUL, lone surrogates
        unique_id = self._audit_in.params[5] if self._audit_in is not None else None
        ops = [Op("charger_message", (now, self.id, action, unique_id or "", text), now)]
        if action in messages.EVENTS:
            event, key = messages.EVENTS[action]
            ts = parse_timestamp(payload["timestamp"]) if payload.get("timestamp") else now
            detail = {**payload, "signed": True} if action.startswith("Signed") else payload
            ops.append(self.event_op(ts, event, detail, str(payload.get(key) or "") if key else ""))
        return ops

    def event_op(self, ts: datetime, event: str, detail: dict | None = None, key: str = "") -> Op:
        payload = json.dumps(detail, default=str) if detail is not None else None
        return Op("connection_event", (ts, self.id, event, key, payload), ts)

    def boot_op(self, vendor: str, model: str, serial: str | None, firmware: str | None) -> Op:
        return Op(
            "boot",
            (vendor, model, serial, firmware, self.ocpp_version, self.now(), self.now(), self.id),
        )

    async def tx_connector(self, transaction_id: str) -> tuple[int, int] | None:
        """(evse, connector) of a transaction this system has seen, from memory or the database."""
        if transaction_id in self._tx_connectors:
            return self._tx_connectors[transaction_id]
        if not self.ctx.writer.online:
            return None
        transaction_id = pgsafe.clean_text(transaction_id)
        try:
            async with self.ctx.writer.lookup() as conn:
                row = await (
                    await conn.execute(
                        "SELECT evse_id, connector_id FROM transaction "
                        "WHERE charge_point_id = %s AND transaction_id = %s",
                        (self.id, transaction_id),
                    )
                ).fetchone()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            return None
        if row is None or row[0] is None:
            return None
        self._tx_connectors[transaction_id] = (row[0], row[1])
        return self._tx_connectors[transaction_id]


class ChargePoint16(CollectorMixin, ChargePoint16Base):
    ocpp_version = "1.6"
    known_actions = frozenset(a.value for a in Action16)

    @on(Action16.boot_notification, skip_schema_validation=True)
    async def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kw: Any
    ) -> result16.BootNotification:
        detail = {k: v for k, v in kw.items() if v is not None}
        await self.persist(
            [
                self.boot_op(
                    charge_point_vendor,
                    charge_point_model,
                    kw.get("charge_point_serial_number"),
                    kw.get("firmware_version"),
                ),
                self.event_op(self.now(), "boot", {"vendor": charge_point_vendor, **detail}),
            ]
        )
        return result16.BootNotification(
            current_time=format_timestamp(self.now()),
            interval=self.ctx.heartbeat_interval,
            status="Accepted",
        )

    @on(Action16.heartbeat, skip_schema_validation=True)
    async def on_heartbeat(self, **kw: Any) -> result16.Heartbeat:
        self.write_later([self.event_op(self.now(), "heartbeat")])
        return result16.Heartbeat(current_time=format_timestamp(self.now()))

    @on(Action16.status_notification, skip_schema_validation=True)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kw: Any
    ) -> result16.StatusNotification:
        evse_id, conn_id = v16_ids(connector_id)
        ts = parse_timestamp(kw["timestamp"]) if kw.get("timestamp") else self.now()
        row = (
            ts, self.id, evse_id, conn_id, status, error_code, kw.get("info"), kw.get("vendor_id"),
            kw.get("vendor_error_code"), self.ocpp_version, self.now(),
        )  # fmt: skip
        placed, reason = await self.place(evse_id, conn_id)
        if reason is not None:
            await self.persist([self.flag("status_event", ts, evse_id, conn_id, reason, status)])
        else:
            await self.persist([*placed, store.status_op(row)])
        return result16.StatusNotification()

    @on(Action16.authorize, skip_schema_validation=True)
    async def on_authorize(self, id_tag: str, **kw: Any) -> result16.Authorize:
        await self.persist(self.message_ops("Authorize", {"id_tag": id_tag, **kw}))
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action16.start_transaction, skip_schema_validation=True)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kw: Any
    ) -> result16.StartTransaction:
        evse_id, conn_id = v16_ids(connector_id)
        ts = parse_timestamp(timestamp)
        placed, reason = await self.place(evse_id, conn_id)
        if reason is not None:  # answered (the charger needs an id), kept out of the data
            seq = await self.lookup("SELECT nextval('transaction_id_seq')", ())
            transaction_id = int(seq[0][0]) if seq else self.ctx.transaction_ids._without_database()
            self._tx_connectors[str(transaction_id)] = (evse_id, conn_id)
            what = f"StartTransaction {transaction_id}"
            await self.persist([self.flag("transaction", ts, evse_id, conn_id, reason, what,
                                          meter_start, transaction_id)])  # fmt: skip
            return result16.StartTransaction(
                transaction_id=transaction_id, id_tag_info={"status": "Accepted"}
            )
        transaction_id, ops = await self.ctx.transaction_ids.assign(
            self.id,
            evse_id,
            conn_id,
            id_tag,
            ts,
            pgsafe.as_float(meter_start, "meterStart"),
            kw.get("reservation_id"),
        )
        self._tx_connectors[str(transaction_id)] = (evse_id, conn_id)
        await self.persist([*placed, *ops])
        return result16.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": "Accepted"}
        )

    @on(Action16.stop_transaction, skip_schema_validation=True)
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kw: Any
    ) -> result16.StopTransaction:
        tx = str(transaction_id)
        ids = await self.tx_connector(tx)
        evse_id, conn_id = ids if ids is not None else (0, 0)
        rows = meter_rows(
            kw.get("transaction_data") or [], charge_point_id=self.id, evse_id=evse_id,
            connector_id=conn_id, transaction_id=tx, received_at=self.now(),
        )  # fmt: skip
        stop_ts = parse_timestamp(timestamp)
        reason = (await self.inventory()).why_not(evse_id, conn_id)
        if reason is not None:  # the transaction of a connector never declared: flagged too
            self.ctx.count("undeclared_connector")
            stop = self.flag("transaction", stop_ts, evse_id, conn_id, reason,
                             f"StopTransaction {tx}", meter_stop, tx)  # fmt: skip
            ops = [stop, *self.flag_meter(rows, reason)]
        else:
            ops = [
                store.tx_op(
                    charge_point_id=self.id,
                    transaction_id=tx,
                    ocpp_version=self.ocpp_version,
                    evse_id=ids[0] if ids else None,
                    connector_id=ids[1] if ids else None,
                    id_token=kw.get("id_tag"),
                    stop_ts=stop_ts,
                    meter_stop_wh=pgsafe.as_float(meter_stop, "meterStop"),
                    stop_reason=kw.get("reason") or "Local",
                ),  # fmt: skip
                *store.meter_ops(rows),
            ]
        await self.persist(ops)
        if kw.get("id_tag"):
            return result16.StopTransaction(id_tag_info={"status": "Accepted"})
        return result16.StopTransaction()

    @on(Action16.meter_values, skip_schema_validation=True)
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict], **kw: Any
    ) -> result16.MeterValues:
        evse_id, conn_id = v16_ids(connector_id)
        tx = kw.get("transaction_id")
        rows = meter_rows(
            meter_value, charge_point_id=self.id, evse_id=evse_id, connector_id=conn_id,
            transaction_id=str(tx) if tx is not None else None, received_at=self.now(),
        )  # fmt: skip
        placed, reason = await self.place(evse_id, conn_id)
        if reason is not None:
            await self.persist(self.flag_meter(rows, reason))
        else:
            await self.persist([*placed, *store.meter_ops(rows)])
        return result16.MeterValues()

    @on(Action16.data_transfer, skip_schema_validation=True)
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> result16.DataTransfer:
        await self.persist(self.message_ops("DataTransfer", {"vendor_id": vendor_id, **kw}))
        return result16.DataTransfer(status="UnknownVendorId")

    @on(Action16.firmware_status_notification, skip_schema_validation=True)
    async def on_firmware_status(
        self, status: str, **kw: Any
    ) -> result16.FirmwareStatusNotification:
        await self.persist([self.event_op(self.now(), "firmware_status", {"status": status})])
        return result16.FirmwareStatusNotification()

    @on(Action16.diagnostics_status_notification, skip_schema_validation=True)
    async def on_diagnostics_status(
        self, status: str, **kw: Any
    ) -> result16.DiagnosticsStatusNotification:
        await self.persist([self.event_op(self.now(), "diagnostics_status", {"status": status})])
        return result16.DiagnosticsStatusNotification()


class ChargePoint201(CollectorMixin, ChargePoint201Base):
    ocpp_version = "2.0.1"
    known_actions = frozenset(a.value for a in Action201)

    @on(Action201.boot_notification, skip_schema_validation=True)
    async def on_boot_notification(
        self, charging_station: dict, reason: str, **kw: Any
    ) -> result201.BootNotification:
        await self.persist(
            [
                self.boot_op(
                    charging_station.get("vendor_name", ""),
                    charging_station.get("model", ""),
                    charging_station.get("serial_number"),
                    charging_station.get("firmware_version"),
                ),
                self.event_op(self.now(), "boot", {"reason": reason, **charging_station}),
            ]
        )
        return result201.BootNotification(
            current_time=format_timestamp(self.now()),
            interval=self.ctx.heartbeat_interval,
            status="Accepted",
        )

    @on(Action201.heartbeat, skip_schema_validation=True)
    async def on_heartbeat(self, **kw: Any) -> result201.Heartbeat:
        self.write_later([self.event_op(self.now(), "heartbeat")])
        return result201.Heartbeat(current_time=format_timestamp(self.now()))

    @on(Action201.status_notification, skip_schema_validation=True)
    async def on_status_notification(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **kw: Any
    ) -> result201.StatusNotification:
        ts = parse_timestamp(timestamp)
        row = (
            ts, self.id, evse_id, connector_id, connector_status, "NoError", None, None, None,
            self.ocpp_version, self.now(),
        )  # fmt: skip
        placed, reason = await self.place(evse_id, connector_id)
        if reason is not None:
            flagged = self.flag("status_event", ts, evse_id, connector_id, reason, connector_status)
            await self.persist([flagged])
        else:
            await self.persist([*placed, store.status_op(row)])
        return result201.StatusNotification()

    @on(Action201.authorize, skip_schema_validation=True)
    async def on_authorize(self, id_token: dict, **kw: Any) -> result201.Authorize:
        await self.persist(self.message_ops("Authorize", {"id_token": id_token, **kw}))
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on(Action201.transaction_event, skip_schema_validation=True)
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict,
        **kw: Any,
    ) -> result201.TransactionEvent:
        ts = parse_timestamp(timestamp)
        tx = transaction_info["transaction_id"]
        content = messages.digest(
            {"event_type": event_type, "timestamp": timestamp, "trigger_reason": trigger_reason,
             "seq_no": seq_no, "transaction_info": transaction_info, **kw}
        )  # fmt: skip
        digests = await self.seq_digests(tx)
        first = digests.get(seq_no)
        evse = kw.get("evse")
        if evse is not None:
            connector = evse.get("connector_id")
            if connector is None:
                connector = (await self.inventory()).connector_of(evse["id"])
            ids: tuple[int, int] | None = (evse["id"], connector)
            if first is None:
                self._tx_connectors[tx] = ids
        else:
            ids = await self.tx_connector(tx)
        evse_id, conn_id = ids if ids is not None else (0, 0)
        offline = bool(kw.get("offline", False))
        # a value without context is Sample.Periodic (the spec's default), even in Started/Ended
        rows = meter_rows(
            kw.get("meter_value") or [], charge_point_id=self.id, evse_id=evse_id,
            connector_id=conn_id, transaction_id=tx, received_at=self.now(),
        )  # fmt: skip
        answer = (
            result201.TransactionEvent(id_token_info={"status": "Accepted"})
            if kw.get("id_token")
            else result201.TransactionEvent()
        )
        what = f"seqNo {seq_no} {event_type}"
        if first is not None and first != content:  # the first is kept; a retry is silent
            self.ctx.count("conflicting_seq_no")
            log.warning("%s: transaction %s %s with other content; quarantined", self.id, tx, what)
            reason = f"seqNo {seq_no} of transaction {tx} already stored with different content"
            await self.persist([self.flag("transaction_event", ts, evse_id, conn_id, reason, what,
                                          trigger_reason, tx)])  # fmt: skip
            return answer
        placed, reason = await self.place(*ids) if ids else ([], None)
        if reason is not None:
            flagged = self.flag("transaction_event", ts, evse_id, conn_id, reason, what,
                                trigger_reason, tx)  # fmt: skip
            await self.persist([flagged, *self.flag_meter(rows, reason)])
            return answer
        id_token = kw.get("id_token") or {}
        tx_values: dict[str, Any] = dict(
            charge_point_id=self.id, transaction_id=tx, ocpp_version=self.ocpp_version,
            evse_id=ids[0] if ids else None, connector_id=ids[1] if ids else None,
            id_token=id_token.get("id_token"), id_token_type=id_token.get("type"),
            reservation_id=kw.get("reservation_id"),
            remote_start_id=transaction_info.get("remote_start_id"),
            charging_state=transaction_info.get("charging_state"), last_seq_no=seq_no,
            offline_seen=offline,
        )  # fmt: skip
        if event_type == "Started":
            tx_values["start_ts"] = ts
            tx_values["meter_start_wh"] = register_wh(rows, "Transaction.Begin", fallback="first")
        elif event_type == "Ended":
            tx_values["stop_ts"] = ts
            tx_values["meter_stop_wh"] = register_wh(rows, "Transaction.End", fallback="last")
            tx_values["stop_reason"] = transaction_info.get("stopped_reason") or "Local"
        event_row = (
            ts, self.id, tx, seq_no, event_type, trigger_reason,
            transaction_info.get("charging_state"), ids[0] if ids else None,
            ids[1] if ids else None, offline, self.now(),
        )  # fmt: skip
        ops = [
            *placed,
            store.tx_op(**tx_values),
            Op("transaction_event", event_row, ts),
            *store.meter_ops(rows),
        ]
        if first is None:
            ops.append(Op("transaction_event_digest", (self.id, tx, seq_no, content)))
        await self.persist(ops)
        digests[seq_no] = content
        if event_type == "Ended":  # a retry after this reads the digests again
            self._seq_digests.pop(tx, None)
        return answer

    @on(Action201.meter_values, skip_schema_validation=True)
    async def on_meter_values(
        self, evse_id: int, meter_value: list[dict], **kw: Any
    ) -> result201.MeterValues:
        conn_id = (await self.inventory()).connector_of(evse_id)  # the EVSE's known connector
        rows = meter_rows(
            meter_value, charge_point_id=self.id, evse_id=evse_id, connector_id=conn_id,
            transaction_id=None, received_at=self.now(),
        )  # fmt: skip
        placed, reason = await self.place(evse_id, conn_id)
        if reason is not None:
            await self.persist(self.flag_meter(rows, reason))
        else:
            await self.persist([*placed, *store.meter_ops(rows)])
        return result201.MeterValues()

    @on(Action201.notify_report, skip_schema_validation=True)
    async def on_notify_report(
        self, request_id: int, generated_at: str, seq_no: int, **kw: Any
    ) -> result201.NotifyReport:
        """The charger's device model: its variables to `charger_variable`, and the EVSEs and
        connectors they are located at declared (`ingest.inventory`)."""
        report = read_report(
            self.id, kw.get("report_data") or [], parse_timestamp(generated_at), self.now()
        )
        evses = report.evses | {e for e, _ in report.connectors}
        payload = {"request_id": request_id, "generated_at": generated_at, "seq_no": seq_no, **kw}
        ops = [
            *self.message_ops("NotifyReport", payload),
            *(Op("evse_declared", (self.id, e, "NotifyReport")) for e in sorted(evses)),
            *(
                Op("connector_declared", (self.id, e, c, kind, "NotifyReport"))
                for (e, c), kind in sorted(report.connectors.items())
            ),
            *(Op("charger_variable", row) for row in report.variables),
        ]
        await self.persist(ops)
        (await self.inventory()).declare(evses, report.connectors)
        self._known_connectors |= set(report.connectors)
        return result201.NotifyReport()

    @on(Action201.notify_event, skip_schema_validation=True)
    async def on_notify_event(
        self, generated_at: str, seq_no: int, event_data: list[dict], **kw: Any
    ) -> result201.NotifyEvent:
        ops = [
            self.event_op(
                parse_timestamp(ev["timestamp"]), "notify_event", ev, key=str(ev["event_id"])
            )
            for ev in event_data
        ]
        await self.persist(ops)
        return result201.NotifyEvent()

    @on(Action201.security_event_notification, skip_schema_validation=True)
    async def on_security_event(
        self, type: str, timestamp: str, **kw: Any
    ) -> result201.SecurityEventNotification:
        detail = {"type": type, "tech_info": kw.get("tech_info")}
        await self.persist(
            [self.event_op(parse_timestamp(timestamp), "security_event", detail, type)]
        )
        return result201.SecurityEventNotification()

    @on(Action201.data_transfer, skip_schema_validation=True)
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> result201.DataTransfer:
        await self.persist(self.message_ops("DataTransfer", {"vendor_id": vendor_id, **kw}))
        return result201.DataTransfer(status="UnknownVendorId")

    @on(Action201.firmware_status_notification, skip_schema_validation=True)
    async def on_firmware_status(
        self, status: str, **kw: Any
    ) -> result201.FirmwareStatusNotification:
        await self.persist([self.event_op(self.now(), "firmware_status", {"status": status})])
        return result201.FirmwareStatusNotification()


def _stored(action: str, answer: Callable[[], Any]) -> Callable[..., Any]:
    """The handler of a charger message the collector only stores (`message_ops`) and answers
    with `answer()`. The library routes by method name, so the name is the attribute's."""

    async def handler(self: CollectorMixin, **kw: Any) -> Any:
        await self.persist(self.message_ops(action, kw))
        return answer()

    handler.__name__ = handler.__qualname__ = f"on_{_snake_key(action)}"
    return on(action, skip_schema_validation=True)(handler)


def _refused(reason: str) -> dict[str, str]:
    return {"reason_code": "NotSupported", "additional_info": reason}


_NO_CA = "this central system has no CA to sign certificates with"
_NO_PKI = "this central system has no ISO 15118 certificate service"

# Charger-initiated messages with no table of their own: stored, answered with what the spec
# requires. Rejected/Failed where we cannot do what is asked (sign a CSR, provide a schedule).
_STORED_16: dict[str, Callable[[], Any]] = {
    "LogStatusNotification": result16.LogStatusNotification,
    "SecurityEventNotification": result16.SecurityEventNotification,
    "SignCertificate": lambda: result16.SignCertificate(status="Rejected"),
    "SignedFirmwareStatusNotification": result16.SignedFirmwareStatusNotification,
}
_STORED_201: dict[str, Callable[[], Any]] = {
    "ClearedChargingLimit": result201.ClearedChargingLimit,
    "Get15118EVCertificate": lambda: result201.Get15118EVCertificate(
        status="Failed", exi_response="", status_info=_refused(_NO_PKI)
    ),
    "GetCertificateStatus": lambda: result201.GetCertificateStatus(
        status="Failed", status_info=_refused(_NO_PKI)
    ),
    "LogStatusNotification": result201.LogStatusNotification,
    "NotifyChargingLimit": result201.NotifyChargingLimit,
    "NotifyCustomerInformation": result201.NotifyCustomerInformation,
    "NotifyDisplayMessages": result201.NotifyDisplayMessages,
    # Accepted would promise a charging schedule; the collector sends none
    "NotifyEVChargingNeeds": lambda: result201.NotifyEVChargingNeeds(
        status="Rejected", status_info=_refused("no smart charging from this central system")
    ),
    "NotifyEVChargingSchedule": lambda: result201.NotifyEVChargingSchedule(status="Accepted"),
    "NotifyMonitoringReport": result201.NotifyMonitoringReport,
    "PublishFirmwareStatusNotification": result201.PublishFirmwareStatusNotification,
    "ReportChargingProfiles": result201.ReportChargingProfiles,
    "ReservationStatusUpdate": result201.ReservationStatusUpdate,
    "SignCertificate": lambda: result201.SignCertificate(
        status="Rejected", status_info=_refused(_NO_CA)
    ),
}
for _cls, _answers in ((ChargePoint16, _STORED_16), (ChargePoint201, _STORED_201)):
    for _action, _answer in _answers.items():
        _handler = _stored(_action, _answer)
        setattr(_cls, _handler.__name__, _handler)
