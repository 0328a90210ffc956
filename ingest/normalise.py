"""Meter values as stored: one row per sampled value, in base units, raw unit kept.

Pure functions over the snake_case payloads the `ocpp` library hands our handlers. OCPP 1.6 sends
values as strings with an optional `unit` (default Wh); 2.0.1 sends numbers with
`unit_of_measure {unit, multiplier}` where the multiplier is a power of ten.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import NamedTuple

from ingest.timestamps import parse_timestamp

log = logging.getLogger(__name__)

DEFAULT_MEASURAND = "Energy.Active.Import.Register"
DEFAULT_CONTEXT = "Sample.Periodic"
DEFAULT_LOCATION = "Outlet"

# raw unit -> (base unit, factor). Temperatures are handled apart (they have offsets).
UNITS: dict[str, tuple[str, float]] = {
    "Wh": ("Wh", 1.0),
    "kWh": ("Wh", 1000.0),
    "varh": ("varh", 1.0),
    "kvarh": ("varh", 1000.0),
    "VAh": ("VAh", 1.0),
    "kVAh": ("VAh", 1000.0),
    "W": ("W", 1.0),
    "kW": ("W", 1000.0),
    "VA": ("VA", 1.0),
    "kVA": ("VA", 1000.0),
    "var": ("var", 1.0),
    "kvar": ("var", 1000.0),
    "A": ("A", 1.0),
    "V": ("V", 1.0),
    "Percent": ("Percent", 1.0),
    "Hz": ("Hz", 1.0),
    "Hertz": ("Hz", 1.0),  # the 1.6 JSON schema's spelling
    "RPM": ("RPM", 1.0),
    "ASU": ("ASU", 1.0),
    "B": ("B", 1.0),
    "dB": ("dB", 1.0),
    "dBm": ("dBm", 1.0),
    "Deg": ("Deg", 1.0),
    "Lux": ("Lux", 1.0),
    "m": ("m", 1.0),
    "ms-2": ("ms-2", 1.0),
    "N": ("N", 1.0),
    "Ohm": ("Ohm", 1.0),
    "kPa": ("kPa", 1.0),
    "s": ("s", 1.0),
    "": ("", 1.0),
}

# When a sampled value has no unit, OCPP says Wh (1.6 for every measurand, 2.0.1's
# UnitOfMeasureType too). That is right for active energy and nonsense for the rest (a current is
# not Wh), so each measurand gets its own unit, in both versions. First matching prefix wins.
_MEASURAND_UNIT = {
    "Energy.Reactive": "varh",
    "Energy.Apparent": "VAh",
    "Energy": "Wh",
    "Power.Active": "W",
    "Power.Offered": "W",
    "Power.Reactive": "var",
    "Power.Factor": "",
    "Current": "A",
    "Voltage": "V",
    "Frequency": "Hz",
    "Temperature": "Celsius",
    "SoC": "Percent",
    "RPM": "RPM",
}


def default_unit(measurand: str) -> str:
    """The unit of a value of `measurand` sent without one; "" for a measurand we do not know."""
    for prefix, unit in _MEASURAND_UNIT.items():
        if measurand.startswith(prefix):
            return unit
    return ""


def to_base(value: float, unit: str, multiplier: int = 0) -> tuple[float, str]:
    """A value in its raw unit (times 10**multiplier) in the base unit. Raises ValueError."""
    try:
        scaled = value * (10.0**multiplier) if multiplier else value
    except OverflowError:  # a multiplier past float range: not finite, so quarantined
        scaled = math.copysign(math.inf, value) if value else 0.0
    if unit in ("Celsius", "Celcius"):  # 1.6 spells it both ways
        return scaled, "Celsius"
    if unit == "Fahrenheit":
        return (scaled - 32.0) * 5.0 / 9.0, "Celsius"
    if unit == "K":
        return scaled - 273.15, "Celsius"
    try:
        base, factor = UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}") from None
    return scaled * factor, base


class MeterRow(NamedTuple):
    ts: datetime
    charge_point_id: str
    evse_id: int
    connector_id: int
    transaction_id: str | None
    measurand: str
    phase: str
    location: str
    context: str
    value: float
    unit: str
    raw_value: str
    raw_unit: str | None
    multiplier: int
    received_at: datetime


METER_COLUMNS = MeterRow._fields


def meter_rows(
    meter_value: list[dict],
    *,
    charge_point_id: str,
    evse_id: int,
    connector_id: int,
    transaction_id: str | None,
    received_at: datetime,
    default_context: str = DEFAULT_CONTEXT,
) -> list[MeterRow]:
    """Rows for a `meter_value` list of either version (snake_case keys).

    A sampled value that cannot be read as a number (a signed blob, garbage) is skipped with a
    warning rather than failing the frame: the raw frame stays in the audit log. A number that is
    not finite (NaN, Infinity, or one that overflows in base units) is kept as a row: the writer
    quarantines it (`ingest.quarantine`), so it is visible and never summed.
    """
    rows: list[MeterRow] = []
    for mv in meter_value:
        ts = parse_timestamp(mv["timestamp"])
        for sv in mv.get("sampled_value", ()):
            measurand = sv.get("measurand") or DEFAULT_MEASURAND
            raw = sv.get("value")
            uom = sv.get("unit_of_measure")
            if uom is not None:  # 2.0.1
                raw_unit = uom.get("unit")  # absent: the measurand's unit, not always Wh
                multiplier = int(uom.get("multiplier", 0))
            else:  # 1.6
                raw_unit = sv.get("unit")
                multiplier = 0
            if sv.get("format") == "SignedData":
                log.warning("%s: skipping signed meter value (%s)", charge_point_id, measurand)
                continue
            try:
                try:
                    number = float(raw)
                except OverflowError:  # an integer past float range: not finite, quarantined
                    number = math.copysign(math.inf, raw)
                value, unit = to_base(number, raw_unit or default_unit(measurand), multiplier)
            except (TypeError, ValueError) as e:
                log.warning(
                    "%s: skipping meter value %r (%s): %s", charge_point_id, raw, measurand, e
                )
                continue
            rows.append(
                MeterRow(
                    ts=ts,
                    charge_point_id=charge_point_id,
                    evse_id=evse_id,
                    connector_id=connector_id,
                    transaction_id=transaction_id,
                    measurand=measurand,
                    phase=sv.get("phase") or "",
                    location=sv.get("location") or DEFAULT_LOCATION,
                    context=sv.get("context") or default_context,
                    value=value,
                    unit=unit,
                    raw_value=str(raw),
                    raw_unit=raw_unit,
                    multiplier=multiplier,
                    received_at=received_at,
                )
            )
    return rows


def register_wh(rows: list[MeterRow], context: str, *, fallback: str | None = None) -> float | None:
    """The total (phase-less) import register in a given context, e.g. the Transaction.Begin one.

    With `fallback` "first" or "last", a list without one in that context gives its first or last
    register whatever the context: a 2.0.1 Started/Ended event's values need not say
    Transaction.Begin/End (a value without context is Sample.Periodic), and its register is
    still the transaction's start/stop reading."""
    registers = [r for r in rows if r.measurand == DEFAULT_MEASURAND and r.phase == ""]
    chosen = [r for r in registers if r.context == context]
    if not chosen and fallback is not None:
        chosen = sorted(registers, key=lambda r: r.ts, reverse=fallback == "last")
    for row in chosen:
        return row.value if math.isfinite(row.value) else None
    return None


def v16_ids(connector_id: int) -> tuple[int, int]:
    """(evse_id, connector_id) for a 1.6 connectorId; see the `connector` table's comment."""
    return (connector_id, 1) if connector_id > 0 else (0, 0)
