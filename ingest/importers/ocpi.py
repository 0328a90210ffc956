"""OCPI 2.2.1 CDRs (charge detail records), one JSON object per line: the roaming format most
networks can export.

Mapping: `cdr_location.evse_uid` is the charge point (OCPI has no charge point above the EVSE),
EVSE 1, connector `cdr_location.connector_id` when it is a number (else 1); `cdr_location.id` is
the site, in `cdr_location.time_zone` when the export carries it (OCPI's Location has it, the
CdrLocation does not), else UTC. Times are ISO 8601 in UTC (`Z` optional, an explicit offset is
honoured). `total_energy` is kWh. `charging_periods` give the energy profile: each period's ENERGY
volume is delivered over that period (to the next period's start, the last to the end), so a
PARKING_TIME-only tail is flat; their sum must agree with `total_energy` within
max(0.01 kWh, 1 %) and is scaled to it exactly. Without ENERGY dimensions the energy is spread over
the session less `total_parking_time` (hours).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from chargeops.settings import ConfigError
from ingest.importers.common import (
    KNOWN_ZONES,
    TS,
    Batch,
    Parsed,
    RowError,
    empty_sessions,
    fee_checks,
    fee_columns,
    first_error,
    open_text,
    quoted,
    stream,
    wh,
)
from ingest.importers.regions import region_columns

FIELDS = {  # column -> path in the CDR
    "id": ("id",), "country_code": ("country_code",), "party_id": ("party_id",),
    "start_date_time": ("start_date_time",), "end_date_time": ("end_date_time",),
    "total_energy": ("total_energy",), "total_parking_time": ("total_parking_time",),
    "token_uid": ("cdr_token", "uid"), "auth_id": ("auth_id",),
    "location_id": ("cdr_location", "id"), "location_name": ("cdr_location", "name"),
    "evse_uid": ("cdr_location", "evse_uid"), "connector": ("cdr_location", "connector_id"),
    "standard": ("cdr_location", "connector_standard"),
    "power_type": ("cdr_location", "connector_power_type"),
    "country": ("cdr_location", "country"), "time_zone": ("cdr_location", "time_zone"),
    "state": ("cdr_location", "state"), "postal_code": ("cdr_location", "postal_code"),
    "currency": ("currency",), "total_cost": ("total_cost",),
    "cost_incl_vat": ("total_cost", "incl_vat"), "cost_excl_vat": ("total_cost", "excl_vat"),
}  # fmt: skip
REQUIRED = ("id", "start_date_time", "end_date_time", "total_energy", "location_id", "evse_uid")
ALPHA3 = {
    "AUT": "AT", "BEL": "BE", "CAN": "CA", "CHE": "CH", "DEU": "DE", "DNK": "DK", "ESP": "ES",
    "FIN": "FI", "FRA": "FR", "GBR": "GB", "IRL": "IE", "ITA": "IT", "LUX": "LU", "NLD": "NL",
    "NOR": "NO", "POL": "PL", "PRT": "PT", "SWE": "SE", "USA": "US",
}  # fmt: skip
TOLERANCE_KWH, TOLERANCE_REL = 0.01, 0.01


def _get(obj: object, path: tuple[str, ...]) -> str | None:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    if obj is None:
        return None
    return obj if isinstance(obj, str) else json.dumps(obj)


def _iso(col: str) -> pl.Expr:
    s = pl.col(col).str.strip_chars().str.replace(r"Z$", "")
    naive = s.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False)
    offset = s.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False)
    return pl.coalesce(naive.dt.replace_time_zone("UTC"), offset)


def _periods(line: int, cdr: dict) -> list[tuple[int, int, str | None, str | None, bool]]:
    out = []
    periods = cdr.get("charging_periods") or []
    for i, p in enumerate(periods if isinstance(periods, list) else [None]):
        if not isinstance(p, dict):
            out.append((line, i, None, None, False))
            continue
        dims = [d for d in p.get("dimensions") or [] if isinstance(d, dict)]
        energy = [d.get("volume") for d in dims if d.get("type") == "ENERGY"]
        volume = json.dumps(energy[0]) if energy else None
        out.append((line, i, _get(p, ("start_date_time",)), volume, bool(energy)))
    return out


def parse(path: Path) -> Parsed:
    """Sessions of an OCPI CDR export in JSON lines (see the module docstring), in one frame."""
    streamed = stream(parse_batches, path)
    frames = list(streamed.frames())
    sessions = pl.concat(frames) if frames else empty_sessions()
    return Parsed(
        sessions, streamed.errors, streamed.rows_read, streamed.duplicates, flags=streamed.flags
    )


def _lines(path: Path, batch_rows: int) -> Iterator[tuple[list[tuple[int, dict]], list[RowError]]]:
    """The CDRs (line, object) and the lines that are not one, `batch_rows` lines at a time, as
    the file streams; a file in which no line is a JSON object is not JSON lines."""
    cdrs: list[tuple[int, dict]] = []
    errors: list[RowError] = []
    objects = rows = n = 0
    only_invalid = True
    with open_text(path) as f:
        try:
            for n, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                rows += 1
                try:
                    obj = json.loads(raw)
                except json.JSONDecodeError as e:
                    errors.append(RowError(n, "invalid JSON", e.msg))
                else:
                    if isinstance(obj, dict):
                        cdrs.append((n, obj))
                        objects += 1
                    else:
                        errors.append(RowError(n, "not an object"))
                        only_invalid = False
                if len(cdrs) + len(errors) >= batch_rows:
                    yield cdrs, errors
                    cdrs, errors = [], []
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text ({e.reason} near line {n + 1})") from None
    if cdrs or errors:
        yield cdrs, errors
    if rows and not objects and only_invalid:
        raise ConfigError(f"{path}: not JSON lines (no line parses as a JSON object)")


def parse_batches(path: Path, batch_rows: int) -> Iterator[Batch]:
    """The file's sessions before `finish`, `batch_rows` lines at a time (for `stream`)."""
    for cdrs, errors in _lines(path, batch_rows):
        yield _batch(cdrs, errors)


def _batch(cdrs: list[tuple[int, dict]], errors: list[RowError]) -> Batch:
    rows_read = len(cdrs) + len(errors)
    df = pl.DataFrame(
        {
            "line": [n for n, _ in cdrs],
            **{c: [_get(o, p) for _, o in cdrs] for c, p in FIELDS.items()},
        },
        schema={"line": pl.Int64, **dict.fromkeys(FIELDS, pl.String)},
    ).with_columns(
        start_ts=_iso("start_date_time"),
        stop_ts=_iso("end_date_time"),
        kwh=pl.col("total_energy").cast(pl.Float64, strict=False),
        parking_h=pl.col("total_parking_time").cast(pl.Float64, strict=False),
        # what the driver paid: total_cost is a Price (2.2.1: incl_vat, else excl_vat) or a
        # number (2.1.1)
        fee=pl.coalesce(
            "cost_incl_vat",
            "cost_excl_vat",
            pl.when(~pl.col("total_cost").str.starts_with("{")).then("total_cost"),
        ),
    )
    periods = pl.DataFrame(
        [p for n, o in cdrs for p in _periods(n, o)],
        schema={
            "line": pl.Int64,
            "i": pl.Int64,
            "p_start": pl.String,
            "p_kwh": pl.String,
            "has_energy": pl.Boolean,
        },
        orient="row",
    ).with_columns(p_ts=_iso("p_start"), p_kwh=pl.col("p_kwh").cast(pl.Float64, strict=False))
    periods = periods.join(df.select("line", "start_ts", "stop_ts"), on="line").sort("line", "i")
    per_cdr = periods.group_by("line").agg(
        bad_period=(
            pl.col("p_ts").is_null()
            | (pl.col("p_ts") < pl.col("start_ts"))
            | (pl.col("p_ts") > pl.col("stop_ts"))
            | (pl.col("has_energy") & (pl.col("p_kwh").is_null() | (pl.col("p_kwh") < 0)))
        ).any(),
        any_energy=pl.col("has_energy").any(),
        period_kwh=pl.col("p_kwh").fill_null(0.0).sum(),
    )
    df = df.join(per_cdr, on="line", how="left").with_columns(
        pl.col("bad_period").fill_null(False), pl.col("any_energy").fill_null(False)
    )
    checks = [("missing field", pl.col(c).is_null(), pl.lit(c)) for c in REQUIRED]
    checks += [
        ("bad date", pl.col("start_ts").is_null(), quoted("start_date_time")),
        ("bad date", pl.col("stop_ts").is_null(), quoted("end_date_time")),
        ("bad number", pl.col("kwh").is_null() | pl.col("kwh").is_nan(), quoted("total_energy")),
        ("negative energy", pl.col("kwh") < 0, quoted("total_energy")),
        (
            "bad number",
            pl.col("total_parking_time").is_not_null()
            & (pl.col("parking_h").is_null() | (pl.col("parking_h") < 0)),
            quoted("total_parking_time"),
        ),
        (
            "unknown time zone",
            pl.col("time_zone").is_not_null() & ~pl.col("time_zone").is_in(KNOWN_ZONES),
            quoted("time_zone"),
        ),
        ("bad charging period", pl.col("bad_period"), pl.lit("charging_periods")),
        (
            "charging periods disagree with total_energy",
            pl.col("any_energy")
            & (
                (pl.col("period_kwh") - pl.col("kwh")).abs()
                > pl.max_horizontal(pl.lit(TOLERANCE_KWH), TOLERANCE_REL * pl.col("kwh"))
            ),
            pl.format("periods {} kWh, total_energy {} kWh", pl.col("period_kwh"), pl.col("kwh")),
        ),
        *fee_checks("fee", pl.col("currency")),
    ]
    good, bad = first_error(df, checks)
    # knots: the cumulative energy at each period's start (scaled to total_energy), or the start
    # of parking when the periods carry no energy
    scale = pl.when(pl.col("period_kwh") > 0).then(pl.col("kwh") / pl.col("period_kwh"))
    period_knots = (
        periods.join(
            good.filter(pl.col("any_energy")).select("line", "kwh", "period_kwh"), on="line"
        )
        .with_columns(
            knot_wh=wh(
                pl.col("p_kwh").fill_null(0.0).cum_sum().shift(1, fill_value=0.0).over("line")
                * scale.fill_null(0.0)
            )
        )
        .group_by("line")
        .agg(knot_ts=pl.col("p_ts"), knot_wh="knot_wh")
    )
    parking_knots = good.filter(~pl.col("any_energy")).select(
        "line",
        knot_ts=pl.concat_list(
            pl.when(pl.col("parking_h") > 0).then(
                pl.col("stop_ts") - pl.duration(microseconds=(pl.col("parking_h") * 3.6e9).round())
            )
        ),
        knot_wh=pl.concat_list(wh(pl.col("kwh"))),
    )
    knots = pl.concat([period_knots, parking_knots.cast({"knot_ts": pl.List(TS)})])
    country = (
        pl.when(pl.col("country").str.len_chars() == 2)
        .then(pl.col("country").str.to_uppercase())
        .otherwise(pl.col("country").str.to_uppercase().replace_strict(ALPHA3, default=None))
    )
    sessions = good.join(knots, on="line", how="left").select(
        "line",
        source=pl.lit("ocpi"),
        source_id="id",
        transaction_id=pl.concat_str(
            [pl.lit("ocpi"), pl.col("country_code"), pl.col("party_id"), pl.col("id")],
            separator=":",
            ignore_nulls=True,
        ),
        charge_point_id="evse_uid",
        evse_id=pl.lit(1),
        connector_id=pl.when(pl.col("connector").str.contains(r"^\d{1,6}$"))
        .then(pl.col("connector").cast(pl.Int32, strict=False))
        .otherwise(pl.lit(1)),
        connector_type="standard",
        current_type=pl.when(pl.col("power_type").str.starts_with("DC"))
        .then(pl.lit("DC"))
        .when(pl.col("power_type").is_not_null())
        .then(pl.lit("AC")),
        vendor=pl.lit(None, dtype=pl.String),
        model=pl.lit(None, dtype=pl.String),
        serial_number=pl.lit(None, dtype=pl.String),
        site_id="location_id",
        site_name=pl.coalesce("location_name", "location_id"),
        site_timezone=pl.col("time_zone").fill_null("UTC"),
        site_country=country,
        **region_columns(country, pl.col("state"), pl.col("postal_code")),
        id_token=pl.coalesce("token_uid", "auth_id"),
        stop_reason=pl.lit(None, dtype=pl.String),
        start_ts=pl.col("start_ts").cast(TS),
        stop_ts=pl.col("stop_ts").cast(TS),
        energy_wh=wh(pl.col("kwh")),
        **fee_columns(pl.col("fee"), pl.col("currency")),
        knot_ts=pl.col("knot_ts").fill_null(pl.lit([], dtype=pl.List(TS))),
        knot_wh=pl.col("knot_wh").fill_null(pl.lit([], dtype=pl.List(pl.Float64))),
    )
    return sessions, sorted([*errors, *bad], key=lambda e: e.line), rows_read
