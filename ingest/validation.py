"""Schema validation of incoming CALLs, compiled once per action from the `ocpp` library's own
JSON schemas (fastjsonschema: a compiled function per schema instead of a jsonschema walk per
frame), and the mapping of a schema failure to the CALLERROR code each OCPP version prescribes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import fastjsonschema
import ocpp

from ingest.timestamps import parse_timestamp

_SCHEMA_ROOT = Path(ocpp.__file__).resolve().parent


class CallError(Exception):
    """An error to answer with a CALLERROR. `code` uses OCPP 2.0.1 names; `wire_code` maps them."""

    def __init__(self, code: str, description: str, details: dict | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}


# 1.6 names differ from 2.0.1 for a few codes (and 1.6 spells "Occurence" with one r).
_V16_CODES = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
    "MessageTypeNotSupported": "ProtocolError",
    "RpcFrameworkError": "FormationViolation",
}


def wire_code(code: str, ocpp_version: str) -> str:
    return _V16_CODES.get(code, code) if ocpp_version == "1.6" else code


def _date_time(value: str) -> bool:
    try:
        parse_timestamp(value)
    except ValueError:
        return False
    return True


@cache
def validator(ocpp_version: str, action: str) -> Callable[[dict], object] | None:
    """The compiled validator of a request, or None when the version has no such action."""
    if ocpp_version == "1.6":
        path = _SCHEMA_ROOT / "v16" / "schemas" / f"{action}.json"
    else:
        path = _SCHEMA_ROOT / "v201" / "schemas" / f"{action}Request.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8-sig"))

    # use_default=False: the schemas' defaults (2.0.1 unit "Wh") must not be written into the
    # payload, or a Current sent without a unit could not be told from one sent as Wh (issue 16)
    return fastjsonschema.compile(schema, formats={"date-time": _date_time}, use_default=False)


_RULE_CODES = {
    "type": "TypeConstraintViolation",
    "required": "OccurrenceConstraintViolation",
    "minItems": "OccurrenceConstraintViolation",
    "maxItems": "OccurrenceConstraintViolation",
    "additionalProperties": "FormatViolation",
    "enum": "PropertyConstraintViolation",
    "maxLength": "PropertyConstraintViolation",
    "minLength": "PropertyConstraintViolation",
    "minimum": "PropertyConstraintViolation",
    "maximum": "PropertyConstraintViolation",
    "pattern": "PropertyConstraintViolation",
    "format": "PropertyConstraintViolation",
}


def validate(ocpp_version: str, action: str, payload: object) -> None:
    """Raise CallError when `payload` does not satisfy the action's schema."""
    check = validator(ocpp_version, action)
    if check is None:
        raise CallError("NotSupported", f"{action} is not an OCPP {ocpp_version} request")
    if not isinstance(payload, dict):
        raise CallError("FormatViolation", "payload must be a JSON object")
    try:
        check(payload)
    except fastjsonschema.JsonSchemaValueException as e:
        code = _RULE_CODES.get(e.rule or "", "FormatViolation")
        raise CallError(code, e.message, {"path": e.name, "rule": e.rule}) from None
