"""ACN-Data sessions (Caltech's Adaptive Charging Network API): a JSON list of the API's
`_items`, or the API response itself (`{"_items": [...], ...}`).

Quirks handled: times are RFC 2822 strings in GMT ("Sat, 01 May 2021 20:42:47 GMT");
`doneChargingTime` (when the car stopped drawing power) may be null, and is sometimes after
`disconnectTime`: it is used as the end of charging only where it lies inside the plug-in,
otherwise the energy is spread over the whole plug-in. One station (`stationID`) is one charge
point with one connector; `siteID` becomes site `acn-<siteID>`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from chargeops.settings import ConfigError
from ingest.importers.common import (
    KNOWN_ZONES,
    TS,
    Parsed,
    RowError,
    finish,
    first_error,
    quoted,
    read_text,
    wh,
)
from ingest.importers.regions import region_columns

FIELDS = (
    "connectionTime", "disconnectTime", "doneChargingTime", "kWhDelivered", "sessionID",
    "siteID", "stationID", "spaceID", "timezone", "userID",
)  # fmt: skip
REQUIRED = ("connectionTime", "disconnectTime", "kWhDelivered", "sessionID", "siteID", "stationID")
SITE_NAMES = {"0001": "Caltech", "0002": "JPL", "0003": "Office001"}
RFC2822_GMT = "%a, %d %b %Y %H:%M:%S GMT"
_ITEMS_KEY = re.compile(r'"_items"\s*:\s*\[')


def _decode(text: str, path: Path) -> list[tuple[int, object]]:
    """The array's elements with the line each starts on."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not JSON (line {e.lineno}: {e.msg})") from None
    if isinstance(doc, list):
        pos = text.index("[") + 1
    elif isinstance(doc, dict) and isinstance(doc.get("_items"), list):
        m = _ITEMS_KEY.search(text)
        if m is None:
            raise ConfigError(f"{path}: cannot locate the _items list")
        pos = m.end()
    else:
        raise ConfigError(f"{path}: not ACN-Data sessions (a list of sessions or an _items list)")
    decoder = json.JSONDecoder()
    out: list[tuple[int, object]] = []
    line, seen = 1, 0
    ws = " \t\r\n,"
    while True:
        while pos < len(text) and text[pos] in ws:
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return out
        line += text.count("\n", seen, pos)
        seen = pos
        value, pos = decoder.raw_decode(text, pos)
        out.append((line, value))


def _text(v: object) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v)


def _gmt(col: str) -> pl.Expr:
    return (
        pl.col(col)
        .str.strip_chars()
        .str.strptime(pl.Datetime("us"), RFC2822_GMT, strict=False)
        .dt.replace_time_zone("UTC")
    )


def parse(path: Path) -> Parsed:
    """Sessions of an ACN-Data JSON file (see the module docstring)."""
    text = read_text(path)
    items = _decode(text, path)
    errors = [RowError(ln, "not an object") for ln, v in items if not isinstance(v, dict)]
    objs = [(ln, v) for ln, v in items if isinstance(v, dict)]
    df = pl.DataFrame(
        {"line": [ln for ln, _ in objs], **{f: [_text(v.get(f)) for _, v in objs] for f in FIELDS}},
        schema={"line": pl.Int64, **dict.fromkeys(FIELDS, pl.String)},
    ).with_columns(
        start_ts=_gmt("connectionTime"),
        stop_ts=_gmt("disconnectTime"),
        done_ts=_gmt("doneChargingTime"),
        kwh=pl.col("kWhDelivered").cast(pl.Float64, strict=False),
    )
    checks = [("missing field", pl.col(c).is_null(), pl.lit(c)) for c in REQUIRED]
    checks += [
        ("bad date", pl.col("start_ts").is_null(), quoted("connectionTime")),
        ("bad date", pl.col("stop_ts").is_null(), quoted("disconnectTime")),
        (
            "bad date",
            pl.col("doneChargingTime").is_not_null() & pl.col("done_ts").is_null(),
            quoted("doneChargingTime"),
        ),
        ("bad number", pl.col("kwh").is_null() | pl.col("kwh").is_nan(), quoted("kWhDelivered")),
        ("negative energy", pl.col("kwh") < 0, quoted("kWhDelivered")),
        (
            "unknown time zone",
            pl.col("timezone").is_not_null() & ~pl.col("timezone").is_in(KNOWN_ZONES),
            quoted("timezone"),
        ),
    ]
    good, bad = first_error(df, checks)
    sessions = good.select(
        "line",
        source=pl.lit("acn"),
        source_id="sessionID",
        transaction_id=pl.format("acn:{}", pl.col("sessionID")),
        charge_point_id="stationID",
        evse_id=pl.lit(1),
        connector_id=pl.lit(1),
        connector_type=pl.lit(None, dtype=pl.String),
        current_type=pl.lit("AC"),
        vendor=pl.lit(None, dtype=pl.String),
        model=pl.lit(None, dtype=pl.String),
        serial_number=pl.lit(None, dtype=pl.String),
        site_id=pl.format("acn-{}", pl.col("siteID")),
        site_name=pl.format(
            "ACN {} (site {})",
            pl.col("siteID").replace_strict(SITE_NAMES, default=pl.col("siteID")),
            pl.col("siteID"),
        ),
        site_timezone=pl.col("timezone").fill_null("UTC"),
        site_country=pl.lit("US"),
        # every ACN-Data site (Caltech, JPL, Office001) is in California
        **region_columns(pl.lit("US"), pl.lit("CA"), pl.lit(None, dtype=pl.String)),
        id_token="userID",
        stop_reason=pl.lit("EVDisconnected"),
        start_ts=pl.col("start_ts").cast(TS),
        stop_ts=pl.col("stop_ts").cast(TS),
        energy_wh=wh(pl.col("kwh")),
        fee_amount=pl.lit(None, dtype=pl.Int64),  # ACN-Data sessions carry no fee
        currency=pl.lit(None, dtype=pl.String),
        knot_ts=pl.concat_list(pl.col("done_ts").cast(TS)),
        knot_wh=pl.concat_list(wh(pl.col("kwh"))),
    )
    return finish(sessions, sorted([*errors, *bad], key=lambda e: e.line), len(items))
