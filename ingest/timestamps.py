"""Timestamps as chargers send them: RFC 3339 with Z or any offset, sometimes without one."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_timestamp(value: str) -> datetime:
    """Parse an OCPP dateTime to an aware UTC datetime.

    A timestamp without an offset (seen from real chargers) is read as UTC, the only reading
    OCPP allows for it. Raises ValueError for anything that is not a date-time.
    """
    if not isinstance(value, str) or len(value) < 19 or value[10] not in "Tt ":
        raise ValueError(f"not an OCPP dateTime: {value!r}")
    text = value.strip()
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def format_timestamp(ts: datetime) -> str:
    """UTC with a Z and millisecond precision, as OCPP answers carry it."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
