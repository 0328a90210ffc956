"""The charge-point side: replays a `behaviour` timeline as OCPP 1.6J or 2.0.1 over a websocket.

Built on the `ocpp` library's charge-point classes (`ocpp.v16.ChargePoint`,
`ocpp.v201.ChargePoint`), so every outgoing frame is built (and, unless disabled, JSON-schema
validated) by the library.

- 1.6: BootNotification, Heartbeat, StatusNotification, Authorize, StartTransaction (the central
  system assigns the integer transactionId), MeterValues (transactionId for samples inside a
  transaction), StopTransaction with transactionData (Transaction.Begin and Transaction.End).
  Values are strings; energy in "Wh" or "kWh" (some Wh chargers omit the unit: the spec
  default); per-phase chargers send Current.Import / Voltage rows for L1, L2, L3.
  connectorId N is EVSE N, connector 1.
- 2.0.1: BootNotification, Heartbeat, StatusNotification (evseId/connectorId, connector status
  Available/Occupied/Unavailable/Faulted), Authorize, TransactionEvent Started/Updated/Ended with
  seqNo per transaction and `offline: true` for messages held while offline, MeterValues outside
  transactions, NotifyEvent for faults. Values are numbers with unitOfMeasure (kWh chargers send
  unit "Wh" with multiplier 3).

A transaction message that gets no answer because the connection dropped is re-sent after
reconnecting, as a real charger does; other messages are dropped. CALLERRORs are counted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as CP16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as CP201
from ocpp.v201 import call as call201
from websockets.asyncio.client import connect

from .behaviour import Event
from .config import ChargePointConfig

LOG = logging.getLogger("ingest.simulator")
_OCPP_LOG = logging.getLogger("ingest.simulator.ocpp")
_OCPP_LOG.setLevel(logging.WARNING)

SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
STATUS_201 = {
    "Available": "Available",
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEV": "Occupied",
    "SuspendedEVSE": "Occupied",
    "Finishing": "Occupied",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}
CHARGING_STATE = {
    "Charging": "Charging",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
}
STOP_TRIGGER = {
    "Local": "StopAuthorized",
    "EVDisconnected": "EVCommunicationLost",
    "Reboot": "AbnormalCondition",
    "Other": "AbnormalCondition",
}


class CollectorUnavailable(ConnectionError):
    """The collector cannot be reached (refused, unreachable, handshake rejected)."""


@dataclass
class ClientStats:
    sent: Counter = field(default_factory=Counter)  # acknowledged or answered, by action
    errors: int = 0  # CALLERRORs and unanswered messages
    error_samples: list[str] = field(default_factory=list)
    late: int = 0  # queued while offline, sent on reconnect
    retries: int = 0
    dropped: int = 0

    def error(self, msg: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 50:
            self.error_samples.append(msg)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- incoming calls: answer what a simple charger would -----------------------------------------


class _CP16(CP16):
    @on("ChangeConfiguration")
    def _change_configuration(self, key, value, **_):
        return {"status": "Accepted"}

    @on("GetConfiguration")
    def _get_configuration(self, key=None, **_):
        return {"configurationKey": [], "unknownKey": list(key or [])}

    @on("TriggerMessage")
    def _trigger(self, requested_message, **_):
        return {"status": "NotImplemented"}

    @on("RemoteStartTransaction")
    def _remote_start(self, id_tag, **_):
        return {"status": "Rejected"}

    @on("RemoteStopTransaction")
    def _remote_stop(self, transaction_id, **_):
        return {"status": "Rejected"}

    @on("Reset")
    def _reset(self, type, **_):
        return {"status": "Rejected"}

    @on("ChangeAvailability")
    def _change_availability(self, connector_id, type, **_):
        return {"status": "Rejected"}

    @on("DataTransfer")
    def _data_transfer(self, vendor_id, **_):
        return {"status": "UnknownVendorId"}


class _CP201(CP201):
    @on("SetVariables")
    def _set_variables(self, set_variable_data, **_):
        return {
            "setVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "component": d["component"],
                    "variable": d["variable"],
                }
                for d in _camel(set_variable_data)
            ]
        }

    @on("GetVariables")
    def _get_variables(self, get_variable_data, **_):
        return {
            "getVariableResult": [
                {
                    "attributeStatus": "UnknownVariable",
                    "component": d["component"],
                    "variable": d["variable"],
                }
                for d in _camel(get_variable_data)
            ]
        }

    @on("TriggerMessage")
    def _trigger(self, requested_message, **_):
        return {"status": "NotImplemented"}

    @on("RequestStartTransaction")
    def _remote_start(self, id_token, remote_start_id, **_):
        return {"status": "Rejected"}

    @on("RequestStopTransaction")
    def _remote_stop(self, transaction_id, **_):
        return {"status": "Rejected"}

    @on("Reset")
    def _reset(self, type, **_):
        return {"status": "Rejected"}

    @on("ChangeAvailability")
    def _change_availability(self, operational_status, **_):
        return {"status": "Rejected"}


def _camel(data: Any) -> Any:
    from ocpp.charge_point import snake_to_camel_case

    return snake_to_camel_case(data)


# the library's call() needs the payload's class name to pick the action, and it converts
# snake_case keys; our nested dicts are already camelCase (which it leaves alone)


class SimChargePoint:
    """One simulated charge point: a websocket, an ocpp ChargePoint, and the replay state."""

    def __init__(
        self,
        cfg: ChargePointConfig,
        url: str,
        stats: ClientStats,
        *,
        validate: bool = True,
        response_timeout: float = 30.0,
        reconnect_wall_s: float = 30.0,
    ) -> None:
        self.cfg = cfg
        self.url = url.rstrip("/") + "/" + cfg.charge_point_id
        self.stats = stats
        self.validate = validate
        self.response_timeout = response_timeout
        self.reconnect_wall_s = reconnect_wall_s
        self.v16 = cfg.ocpp_version == "1.6"
        self.ws: Any = None
        self.cp: Any = None
        self._reader: asyncio.Task | None = None
        self.tx_ids: dict[str, int] = {}  # 1.6: our key -> the central system's transactionId
        self.seq_no: dict[str, int] = {}  # 2.0.1: seqNo per transaction
        self.status201: dict[tuple[int, int], str] = {}
        self.notify_seq = 0
        self.event_id = 0
        self.omit_wh_unit = zlib.crc32(cfg.charge_point_id.encode()) % 2 == 1
        self.ever_connected = False

    # ---- connection ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.ws is not None

    async def connect(self) -> None:
        headers = {}
        if self.cfg.password is not None:
            token = base64.b64encode(
                f"{self.cfg.charge_point_id}:{self.cfg.password}".encode()
            ).decode()
            headers["Authorization"] = f"Basic {token}"
        try:
            ws = await connect(
                self.url,
                subprotocols=[SUBPROTOCOL[self.cfg.ocpp_version]],
                additional_headers=headers,
                open_timeout=15,
                ping_interval=None,
                proxy=None,
                max_size=2**22,
            )
        except (TimeoutError, OSError, websockets.exceptions.InvalidHandshake) as e:
            raise CollectorUnavailable(
                f"charge point {self.cfg.charge_point_id}: cannot connect to the collector at "
                f"{self.url}: {type(e).__name__}: {e}"
            ) from e
        self.ws = ws
        self.ever_connected = True
        cls = _CP16 if self.v16 else _CP201
        self.cp = cls(
            self.cfg.charge_point_id, ws, response_timeout=self.response_timeout, logger=_OCPP_LOG
        )
        self._reader = asyncio.create_task(
            self._read(), name=f"ocpp-read-{self.cfg.charge_point_id}"
        )

    async def _read(self) -> None:
        with contextlib.suppress(websockets.exceptions.ConnectionClosed, asyncio.CancelledError):
            await self.cp.start()

    async def disconnect(self) -> None:
        ws, self.ws = self.ws, None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _reconnect(self) -> None:
        """Reconnect with back-off for up to reconnect_wall_s of wall time."""
        await self.disconnect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_wall_s
        delay = 0.1
        while True:
            try:
                await self.connect()
                return
            except CollectorUnavailable:
                if loop.time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    # ---- calls -----------------------------------------------------------------------------

    async def _call(self, payload: Any, *, retry: bool) -> Any:
        action = type(payload).__name__
        attempts = 0
        while True:
            if self.ws is None:
                await self._reconnect()
            try:
                resp = await self.cp.call(
                    payload, suppress=False, skip_schema_validation=not self.validate
                )
                self.stats.sent[action] += 1
                return resp
            except OCPPError as e:
                self.stats.sent[action] += 1
                cause = (e.details or {}).get("cause", "") if isinstance(e.details, dict) else ""
                self.stats.error(
                    f"{self.cfg.charge_point_id} {action}: CALLERROR {e.code}: {e.description} {cause}"[
                        -700:
                    ]
                )
                return None
            except (TimeoutError, websockets.exceptions.ConnectionClosed, OSError) as e:
                attempts += 1
                await self.disconnect()
                if not retry or attempts > 5:
                    self.stats.dropped += 1
                    self.stats.error(
                        f"{self.cfg.charge_point_id} {action}: no answer ({type(e).__name__})"
                    )
                    return None
                self.stats.retries += 1

    # ---- replay ----------------------------------------------------------------------------

    async def handle(self, ev: Event) -> None:
        k = ev.kind
        if k == "disconnect":
            await self.disconnect()
            return
        if k == "reconnect":
            if self.ws is None:
                await self._reconnect()
            return
        if k == "boot":
            if (
                self.ws is not None
                and self.ever_connected
                and ev.data
                and ev.data.get("reason") != "PowerUp"
            ):
                await self.disconnect()
            if self.ws is None:
                if self.ever_connected:
                    await self._reconnect()
                else:
                    await self.connect()  # first connect: refused is fatal
            await self._boot(ev)
            return
        if ev.queued:
            self.stats.late += 1
        if self.v16:
            await self._handle16(ev)
        else:
            await self._handle201(ev)

    async def _boot(self, ev: Event) -> None:
        c = self.cfg
        if self.v16:
            payload = call16.BootNotification(
                charge_point_model=c.model[:20],
                charge_point_vendor=c.vendor[:20],
                charge_point_serial_number=c.serial_number[:25],
                firmware_version=c.firmware_version[:50],
                meter_type=f"{c.current_type} meter"[:25],
            )
        else:
            reason = (ev.data or {}).get("reason", "PowerUp")
            payload = call201.BootNotification(
                charging_station={
                    "model": c.model[:20],
                    "vendorName": c.vendor[:50],
                    "serialNumber": c.serial_number[:25],
                    "firmwareVersion": c.firmware_version[:50],
                },
                reason=reason,
            )
        resp = await self._call(payload, retry=False)
        if resp is not None and resp.status != "Accepted":
            self.stats.error(f"{c.charge_point_id} BootNotification: status {resp.status}")

    # ---- 1.6 -------------------------------------------------------------------------------

    def _sv16(self, s: dict[str, Any], context: str) -> list[dict[str, Any]]:
        out = []
        wh = s["energy_wh"]
        e = {"context": context, "measurand": "Energy.Active.Import.Register", "location": "Outlet"}
        if self.cfg.energy_unit == "kWh":
            e["value"] = f"{wh / 1000:.3f}"
            e["unit"] = "kWh"
        else:
            e["value"] = str(int(wh))
            if not self.omit_wh_unit:
                e["unit"] = "Wh"
        out.append(e)
        if "power_w" not in s:
            return out
        out.append(
            {
                "value": f"{s['power_w']:.1f}",
                "context": context,
                "measurand": "Power.Active.Import",
                "location": "Outlet",
                "unit": "W",
            }
        )
        if self.cfg.per_phase:
            ph = s.get("phases", 1)
            for i, p in enumerate(("L1", "L2", "L3")):
                cur = s["current_a"] if i < ph else 0.0
                out.append(
                    {
                        "value": f"{cur:.2f}",
                        "context": context,
                        "measurand": "Current.Import",
                        "phase": p,
                        "location": "Outlet",
                        "unit": "A",
                    }
                )
            for p in ("L1", "L2", "L3"):
                out.append(
                    {
                        "value": f"{s['voltage_v']:.1f}",
                        "context": context,
                        "measurand": "Voltage",
                        "phase": p,
                        "location": "Outlet",
                        "unit": "V",
                    }
                )
        else:
            out.append(
                {
                    "value": f"{s['current_a']:.2f}",
                    "context": context,
                    "measurand": "Current.Import",
                    "location": "Outlet",
                    "unit": "A",
                }
            )
            out.append(
                {
                    "value": f"{s['voltage_v']:.1f}",
                    "context": context,
                    "measurand": "Voltage",
                    "location": "Outlet",
                    "unit": "V",
                }
            )
        if s.get("soc") is not None:
            out.append(
                {
                    "value": f"{s['soc']:.1f}",
                    "context": context,
                    "measurand": "SoC",
                    "location": "EV",
                    "unit": "Percent",
                }
            )
        if s.get("temperature_c") is not None:
            out.append(
                {
                    "value": f"{s['temperature_c']:.1f}",
                    "context": context,
                    "measurand": "Temperature",
                    "location": "Body",
                    "unit": "Celsius",
                }
            )
        return out

    async def _handle16(self, ev: Event) -> None:
        k, d = ev.kind, ev.data or {}
        if k == "heartbeat":
            await self._call(call16.Heartbeat(), retry=False)
        elif k == "status":
            await self._call(
                call16.StatusNotification(
                    connector_id=ev.evse,
                    error_code=d.get("error_code") or "NoError",
                    status=d["status"],
                    timestamp=iso(ev.ts),
                    info=d.get("info"),
                    vendor_error_code=d.get("vendor_error_code"),
                ),
                retry=False,
            )
        elif k == "authorize":
            await self._call(call16.Authorize(id_tag=d["id_token"]), retry=False)
        elif k == "tx_start":
            resp = await self._call(
                call16.StartTransaction(
                    connector_id=ev.evse,
                    id_tag=d["id_token"],
                    meter_start=int(d["meter_start"]),
                    timestamp=iso(ev.ts),
                ),
                retry=True,
            )
            if resp is not None:
                self.tx_ids[ev.tx] = int(resp.transaction_id)
        elif k == "meter":
            tx_id = self.tx_ids.get(ev.tx) if ev.tx else None
            await self._call(
                call16.MeterValues(
                    connector_id=ev.evse,
                    meter_value=[
                        {
                            "timestamp": iso(ev.ts),
                            "sampledValue": self._sv16(d["sample"], d["context"]),
                        }
                    ],
                    transaction_id=tx_id,
                ),
                retry=ev.tx is not None,
            )
        elif k == "tx_stop":
            tx_id = self.tx_ids.pop(ev.tx, None)
            if tx_id is None:
                self.stats.error(
                    f"{self.cfg.charge_point_id} StopTransaction: no transactionId (start failed)"
                )
                return
            await self._call(
                call16.StopTransaction(
                    meter_stop=int(d["meter_stop"]),
                    timestamp=iso(ev.ts),
                    transaction_id=tx_id,
                    reason=d["reason"],
                    id_tag=d.get("id_token"),
                    transaction_data=[
                        {
                            "timestamp": iso(d["t_start"]),
                            "sampledValue": self._sv16(d["begin_sample"], "Transaction.Begin"),
                        },
                        {
                            "timestamp": iso(ev.ts),
                            "sampledValue": self._sv16(d["sample"], "Transaction.End"),
                        },
                    ],
                ),
                retry=True,
            )
        # "notify" has no 1.6 equivalent: the error code travels in StatusNotification

    # ---- 2.0.1 -----------------------------------------------------------------------------

    def _sv201(self, s: dict[str, Any], context: str) -> list[dict[str, Any]]:
        wh = s["energy_wh"]
        if self.cfg.energy_unit == "kWh":
            e = {"value": round(wh / 1000, 3), "unitOfMeasure": {"unit": "Wh", "multiplier": 3}}
        else:
            e = {"value": int(wh), "unitOfMeasure": {"unit": "Wh", "multiplier": 0}}
        e.update(context=context, measurand="Energy.Active.Import.Register", location="Outlet")
        out = [e]
        if "power_w" not in s:
            return out

        def sv(value, measurand, unit, phase=None, location="Outlet"):
            d = {
                "value": value,
                "context": context,
                "measurand": measurand,
                "location": location,
                "unitOfMeasure": {"unit": unit},
            }
            if phase:
                d["phase"] = phase
            return d

        out.append(sv(s["power_w"], "Power.Active.Import", "W"))
        if self.cfg.per_phase:
            ph = s.get("phases", 1)
            for i, p in enumerate(("L1", "L2", "L3")):
                out.append(sv(s["current_a"] if i < ph else 0.0, "Current.Import", "A", p))
            for p in ("L1", "L2", "L3"):
                out.append(sv(s["voltage_v"], "Voltage", "V", p))
        else:
            out.append(sv(s["current_a"], "Current.Import", "A"))
            out.append(sv(s["voltage_v"], "Voltage", "V"))
        if s.get("soc") is not None:
            out.append(sv(s["soc"], "SoC", "Percent", location="EV"))
        # 2.0.1 has no Temperature measurand (it is a device-model variable): not sent
        return out

    def _id_token(self, tok: str) -> dict[str, str]:
        return {"idToken": tok, "type": "ISO14443"}

    def _next_seq(self, tx: str) -> int:
        n = self.seq_no.get(tx, 0)
        self.seq_no[tx] = n + 1
        return n

    async def _tx_event(
        self, ev: Event, event_type: str, trigger: str, info: dict[str, Any], **kw: Any
    ) -> None:
        payload = call201.TransactionEvent(
            event_type=event_type,
            timestamp=iso(ev.ts),
            trigger_reason=trigger,
            seq_no=self._next_seq(ev.tx),
            transaction_info={"transactionId": ev.tx, **info},
            offline=True if ev.queued else None,
            **kw,
        )
        await self._call(payload, retry=True)

    async def _status201(self, ev: Event, status: str) -> None:
        key = (ev.evse, ev.connector)
        if self.status201.get(key) == status:
            return
        self.status201[key] = status
        await self._call(
            call201.StatusNotification(
                timestamp=iso(ev.ts),
                connector_status=status,
                evse_id=ev.evse,
                connector_id=ev.connector,
            ),
            retry=False,
        )

    async def _handle201(self, ev: Event) -> None:
        k, d = ev.kind, ev.data or {}
        if k == "heartbeat":
            await self._call(call201.Heartbeat(), retry=False)
        elif k == "status":
            st = d["status"]
            if st in CHARGING_STATE and ev.tx is not None:
                await self._tx_event(
                    ev, "Updated", "ChargingStateChanged", {"chargingState": CHARGING_STATE[st]}
                )
            await self._status201(ev, STATUS_201[st])
        elif k == "authorize":
            await self._call(call201.Authorize(id_token=self._id_token(d["id_token"])), retry=False)
        elif k == "tx_start":
            await self._tx_event(
                ev,
                "Started",
                "Authorized",
                {"chargingState": "EVConnected"},
                id_token=self._id_token(d["id_token"]),
                evse={"id": ev.evse, "connectorId": ev.connector},
                meter_value=[
                    {
                        "timestamp": iso(ev.ts),
                        "sampledValue": self._sv201(d["sample"], "Transaction.Begin"),
                    }
                ],
            )
        elif k == "meter":
            mv = [{"timestamp": iso(ev.ts), "sampledValue": self._sv201(d["sample"], d["context"])}]
            if ev.tx is not None:
                trig = "MeterValueClock" if d["context"] == "Sample.Clock" else "MeterValuePeriodic"
                await self._tx_event(ev, "Updated", trig, {}, meter_value=mv)
            else:
                await self._call(call201.MeterValues(evse_id=ev.evse, meter_value=mv), retry=False)
        elif k == "tx_stop":
            reason = d["reason"]
            info = {
                "stoppedReason": reason,
                "chargingState": "EVConnected" if reason == "Local" else "Idle",
            }
            kw: dict[str, Any] = {}
            if d.get("id_token"):
                kw["id_token"] = self._id_token(d["id_token"])
            await self._tx_event(
                ev,
                "Ended",
                STOP_TRIGGER.get(reason, "AbnormalCondition"),
                info,
                meter_value=[
                    {
                        "timestamp": iso(ev.ts),
                        "sampledValue": self._sv201(d["sample"], "Transaction.End"),
                    }
                ],
                **kw,
            )
            self.seq_no.pop(ev.tx, None)
        elif k == "notify":
            self.event_id += 1
            problem = bool(d.get("problem"))
            datum = {
                "eventId": self.event_id,
                "timestamp": iso(ev.ts),
                "trigger": "Delta",
                "actualValue": "true" if problem else "false",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "EVSE", "evse": {"id": ev.evse}},
                "variable": {"name": "Problem"},
                "techCode": d.get("error_code"),
            }
            if not problem:
                datum["cleared"] = True
            payload = call201.NotifyEvent(
                generated_at=iso(ev.ts), seq_no=self.notify_seq, event_data=[datum]
            )
            self.notify_seq += 1
            await self._call(payload, retry=True)
