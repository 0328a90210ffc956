"""What PostgreSQL would refuse, caught before a row is queued, committed or spooled.

A spooled request is acknowledged: if PostgreSQL later refuses it, the charger has already moved
on and the data is gone (and, before this module, the whole spool stuck behind it). So every
operation is made storable when it is written: text loses NUL and lone surrogates (replaced by
U+FFFD, counted), a jsonb value that PostgreSQL would not parse (NaN, Infinity, `\\u0000`, a lone
surrogate escape) is kept as text instead, and an integer outside PostgreSQL's `integer` refuses
the one request it is in, with a CALLERROR, before anything is acknowledged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from ingest.validation import CallError

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
REPLACEMENT = "\ufffd"

# kind -> (position of a jsonb column, position of the text column a refused jsonb moves to);
# None: the value is cleaned into valid JSON instead (connection_event.detail).
JSONB_COLUMNS: dict[str, tuple[int, int | None]] = {
    "ocpp_message": (7, 8),
    "connection_event": (4, None),
}
_JSONB_SUSPECTS = ("NaN", "Infinity", "\\u0000", "\\ud", "\\uD")


class Unstorable(CallError):
    """A value no column can hold: the request fails alone, before it is acknowledged."""

    def __init__(self, description: str) -> None:
        super().__init__("PropertyConstraintViolation", description)


def as_float(value: int | float, name: str) -> float:
    """A JSON number as a float; an integer past float range refuses its request."""
    try:
        return float(value)
    except OverflowError:
        raise Unstorable(f"{name} is out of range") from None


def clean_text(value: str) -> str:
    """`value` without what a PostgreSQL text column refuses (NUL, lone surrogates)."""
    if value.isascii():
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    value = value.replace("\x00", REPLACEMENT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        # a pair written as two escapes decodes back to one character; a lone one to U+FFFD
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(name)


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {clean_text(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


def jsonb_ok(text: str) -> bool:
    """True when PostgreSQL's jsonb input accepts `text` (assumed to be JSON Python parsed)."""
    if not any(s in text for s in _JSONB_SUSPECTS):
        return True
    try:
        parsed = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return False
    return _clean_json(parsed) == parsed


def clean_jsonb(text: str) -> str:
    """Valid jsonb text for `text`: non-finite numbers become null, bad strings are cleaned."""
    if jsonb_ok(text):
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        return json.dumps(clean_text(text))
    return json.dumps(_clean_json(parsed), allow_nan=False)


def clean_params(kind: str, params: Sequence[Any]) -> tuple[tuple[Any, ...], int]:
    """Storable params of one operation, and how many values had to be repaired."""
    repaired = 0
    out = list(params)
    jsonb = JSONB_COLUMNS.get(kind)
    if jsonb is not None:
        pos, text_pos = jsonb
        value = out[pos] if pos < len(out) else None
        if isinstance(value, str) and not jsonb_ok(value):
            repaired += 1
            if text_pos is None:
                out[pos] = clean_jsonb(value)
            else:
                out[pos], out[text_pos] = None, value
    for i, value in enumerate(out):
        if isinstance(value, str):
            cleaned = clean_text(value)
            if cleaned is not value and cleaned != value:
                out[i] = cleaned
                repaired += 1
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and not INT4_MIN <= value <= INT4_MAX:
            raise Unstorable(f"integer {value} is out of range ({INT4_MIN}..{INT4_MAX})")
    return tuple(out), repaired
