"""The central-system side of one charge point connection, for OCPP 1.6J and 2.0.1.

Built on the `ocpp` library's ChargePoint classes (its routing, `@on` handlers, payload classes and
case conversion). We route frames ourselves so that every malformed frame gets the CALLERROR the
spec prescribes (the library only logs those), every frame in and out reaches the audit log, and
validation uses validators compiled once (see `ingest.validation`).

A handler that stores rows calls `persist`, which returns only after the rows (and the audit row
of the frame being answered) are committed: nothing is acknowledged before it is durable.
"""

from __future__ import annotations

import json
import logging
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

from ingest import store
from ingest.clock import Clock
from ingest.normalise import meter_rows, register_wh, v16_ids
from ingest.store import Op, Writer, is_connection_error
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
    max_frame_bytes: int = 65536
    heartbeat_interval: int = 300
    counters: dict[str, int] = field(default_factory=dict)

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n


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
            await self.ctx.writer.write_nowait([op])

    async def _send(self, message: str) -> None:
        """Frames the library sends (CALLs to the charger): audited like ours."""
        await self._send_frame(json.loads(message), message)

    async def _send_frame(self, data: list, message: str | None = None) -> None:
        if message is None:
            message = json.dumps(data, separators=(",", ":"), default=str)
        code = data[2] if data[0] == CALLERROR else None
        await self.ctx.writer.write_nowait([self._audit("out", message, data, error_code=code)])
        await self._connection.send(message)

    # -- routing -------------------------------------------------------------------------------
    async def route_message(self, raw: str | bytes) -> None:
        self.ctx.count("frames_in")
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                raw = raw.decode("utf-8", errors="replace")
                self._audit_in = self._audit("in", raw, None)
                await self._reply_error(
                    "-1", CallError("FormatViolation", "frame is not UTF-8 text")
                )
                return
        if len(raw.encode("utf-8")) > self.ctx.max_frame_bytes:
            data = raw[:200]
            self._audit_in = self._audit("in", raw[: self.ctx.max_frame_bytes], None)
            uid = "-1"
            try:
                head = json.loads(raw)
                uid = _unique_id_of(head)
            except ValueError:
                pass
            await self._reply_error(
                uid,
                CallError(
                    "FormatViolation",
                    f"frame of {len(raw)} bytes exceeds the limit of {self.ctx.max_frame_bytes}",
                    {"head": data},
                ),
            )
            return
        try:
            data = json.loads(raw)
        except ValueError:
            self._audit_in = self._audit("in", raw, None)
            await self._reply_error("-1", CallError("FormatViolation", "frame is not valid JSON"))
            return
        self._audit_in = self._audit("in", raw, data)
        if not isinstance(data, list) or not data:
            await self._reply_error(
                "-1", CallError("RpcFrameworkError", "frame is not an OCPP-J message array")
            )
            return
        msg_type = data[0]
        if msg_type in (CALLRESULT, CALLERROR):
            await self._flush_audit()
            await super().route_message(raw)  # the library hands it to the waiting call()
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
        try:
            async with self.ctx.writer.pool.connection() as conn:
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
        await self.ctx.writer.write_nowait([self.event_op(self.now(), "heartbeat")])
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
        await self.persist([*self.connector_ops(evse_id, conn_id), store.status_op(row)])
        return result16.StatusNotification()

    @on(Action16.authorize, skip_schema_validation=True)
    async def on_authorize(self, id_tag: str, **kw: Any) -> result16.Authorize:
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action16.start_transaction, skip_schema_validation=True)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kw: Any
    ) -> result16.StartTransaction:
        evse_id, conn_id = v16_ids(connector_id)
        ts = parse_timestamp(timestamp)
        transaction_id, ops = await self.ctx.transaction_ids.assign(
            self.id, evse_id, conn_id, id_tag, ts, float(meter_start), kw.get("reservation_id")
        )
        self._tx_connectors[str(transaction_id)] = (evse_id, conn_id)
        await self.persist([*self.connector_ops(evse_id, conn_id), *ops])
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
        ops = [
            store.tx_op(
                charge_point_id=self.id,
                transaction_id=tx,
                ocpp_version=self.ocpp_version,
                evse_id=ids[0] if ids else None,
                connector_id=ids[1] if ids else None,
                id_token=kw.get("id_tag"),
                stop_ts=parse_timestamp(timestamp),
                meter_stop_wh=float(meter_stop),
                stop_reason=kw.get("reason") or "Local",
            )  # fmt: skip
        ]
        ops += store.meter_ops(
            meter_rows(
                kw.get("transaction_data") or [],
                charge_point_id=self.id,
                evse_id=evse_id,
                connector_id=conn_id,
                transaction_id=tx,
                received_at=self.now(),
            )  # fmt: skip
        )
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
        await self.persist([*self.connector_ops(evse_id, conn_id), *store.meter_ops(rows)])
        return result16.MeterValues()

    @on(Action16.data_transfer, skip_schema_validation=True)
    async def on_data_transfer(self, vendor_id: str, **kw: Any) -> result16.DataTransfer:
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


_CONTEXT_BY_EVENT = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}


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
        await self.ctx.writer.write_nowait([self.event_op(self.now(), "heartbeat")])
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
        await self.persist(
            [
                *self.connector_ops(evse_id, connector_id),
                store.status_op(row),
            ]
        )
        return result201.StatusNotification()

    @on(Action201.authorize, skip_schema_validation=True)
    async def on_authorize(self, id_token: dict, **kw: Any) -> result201.Authorize:
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
        evse = kw.get("evse")
        if evse is not None:
            ids: tuple[int, int] | None = (evse["id"], evse.get("connector_id", 1))
            self._tx_connectors[tx] = ids
        else:
            ids = await self.tx_connector(tx)
        evse_id, conn_id = ids if ids is not None else (0, 0)
        offline = bool(kw.get("offline", False))
        rows = meter_rows(
            kw.get("meter_value") or [], charge_point_id=self.id, evse_id=evse_id,
            connector_id=conn_id, transaction_id=tx, received_at=self.now(),
            default_context=_CONTEXT_BY_EVENT.get(event_type, "Sample.Periodic"),
        )  # fmt: skip
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
            tx_values["meter_start_wh"] = register_wh(rows, "Transaction.Begin")
        elif event_type == "Ended":
            tx_values["stop_ts"] = ts
            tx_values["meter_stop_wh"] = register_wh(rows, "Transaction.End")
            tx_values["stop_reason"] = transaction_info.get("stopped_reason") or "Local"
        event_row = (
            ts, self.id, tx, seq_no, event_type, trigger_reason,
            transaction_info.get("charging_state"), ids[0] if ids else None,
            ids[1] if ids else None, offline, self.now(),
        )  # fmt: skip
        ops = [
            *(self.connector_ops(*ids) if ids else []),
            store.tx_op(**tx_values),
            Op("transaction_event", event_row, ts),
            *store.meter_ops(rows),
        ]
        await self.persist(ops)
        if id_token:
            return result201.TransactionEvent(id_token_info={"status": "Accepted"})
        return result201.TransactionEvent()

    @on(Action201.meter_values, skip_schema_validation=True)
    async def on_meter_values(
        self, evse_id: int, meter_value: list[dict], **kw: Any
    ) -> result201.MeterValues:
        conn_id = 0 if evse_id == 0 else 1
        rows = meter_rows(
            meter_value, charge_point_id=self.id, evse_id=evse_id, connector_id=conn_id,
            transaction_id=None, received_at=self.now(),
        )  # fmt: skip
        await self.persist([*self.connector_ops(evse_id, conn_id), *store.meter_ops(rows)])
        return result201.MeterValues()

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
        return result201.DataTransfer(status="UnknownVendorId")

    @on(Action201.firmware_status_notification, skip_schema_validation=True)
    async def on_firmware_status(
        self, status: str, **kw: Any
    ) -> result201.FirmwareStatusNotification:
        await self.persist([self.event_op(self.now(), "firmware_status", {"status": status})])
        return result201.FirmwareStatusNotification()
