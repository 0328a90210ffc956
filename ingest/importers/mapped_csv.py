"""Any CSV export, described by a mapping: `chargeops import csv FILE --mapping MAP.yaml`.

The mapping (YAML) says which column holds each field of a session, how its times are written
and in which zone, the energy unit, and constants for what the file does not say::

    columns:            # field: the file's column
      session_id: sessionId
      start: created
      stop: ended
      energy: kwhTotal
      fee: dollars
      station: stationId
      site: locationId
      user: userId
    energy_unit: kWh
    datetime_format: "%Y-%m-%d %H:%M:%S"
    two_digit_years: 2000
    timezone: America/New_York
    currency: USD
    country: US
    prefix: wp-

Fields (`FIELDS`): start, stop, energy and station are required; the rest are optional. A field
comes from a column or from a constant (`CONSTANT_FIELDS`, top-level keys), never both.
`load_mapping` checks the mapping and `_columns` checks it against the file's header; every
problem is one ConfigError line naming the key or the column (the CLI exits 2).

Times are local wall-clock times in `timezone` (an IANA zone, or `columns.timezone` per row)
unless the format has an offset (`%z`), converted to UTC. Around DST changes, deliberately:
a time in the hour skipped at spring-forward (02:30 on a night clocks go 02:00 -> 03:00) was
written by a clock not yet moved on, so it is read with the offset in force before the change
(02:30 EST = 03:30 EDT); a time in the hour repeated at fall-back is its first occurrence
(summer time), except a stop that would then fall before its start, which is the second. So
Python's `zoneinfo` with `fold=0` gives the same instants, bar that stop.

Two-digit years: `two_digit_years: Y` reads a year 0-99 (`0014` as some exports write it, or
`14` through `%y`) as the one in Y .. Y+99. Without it, a year before 100 is a bad date, not a
session two thousand years ago; `%y` alone keeps its usual reading (1970 .. 2069).

Ids: the charge point is `prefix` + the station column (it must be a valid charge point id);
the EVSE the port column (default 1), connector 1; the site `prefix` + the site column or
constant, as a slug (default `csv-import`). The transaction id is `csv:<port>:<session id>`,
or the start time (UTC, ISO) when the file has no session id column, so it cannot collide with
another format's. Rows are read with Python's csv in batches and parsed with polars, like
`chargepoint_csv`, through `common.stream`: the same row checks, overlaps, duplicates,
re-import checks and fees as every format.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import yaml

from chargeops.settings import ConfigError
from ingest.importers.common import (
    KNOWN_ZONES,
    TS,
    Batch,
    Parsed,
    RowError,
    csv_records,
    empty_sessions,
    fee_checks,
    fee_columns,
    first_error,
    quoted,
    slug,
    stream,
    wh,
)
from ingest.importers.regions import region_columns
from ingest.registry import CHARGE_POINT_ID

FIELDS = {  # field: what its column holds
    "session_id": "the session's id in the export",
    "start": "when the session started (plug-in)",
    "stop": "when it ended (plug-out)",
    "energy": "the energy delivered, in energy_unit",
    "station": "the charge point's id",
    "port": "the EVSE (port) number on the charge point, 1 when unmapped",
    "fee": "what the driver paid, a decimal in currency",
    "currency": "the fee's ISO 4217 code",
    "site": "the site's id",
    "site_name": "the site's name",
    "user": "the driver's id (id token)",
    "timezone": "the IANA zone of the row's local times",
    "country": "the site's ISO 3166 country code",
    "state": "the site's state or province (for the grid region)",
    "postal_code": "the site's postal code (for the grid region)",
}  # fmt: skip
REQUIRED = ("start", "stop", "energy", "station")
CONSTANT_FIELDS = ("currency", "site", "site_name", "timezone", "country", "state", "postal_code")
KEYS = (
    "columns", "energy_unit", "datetime_format", "two_digit_years", "prefix", "delimiter",
    *CONSTANT_FIELDS,
)  # fmt: skip
UNITS = {"kwh": "kWh", "wh": "Wh"}
DEFAULT_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")
DEFAULT_SITE = "csv-import"
# a format is checked on this instant, written by Python's strftime and read back by polars
PROBE = datetime(2014, 11, 18, 15, 40, 26, tzinfo=timezone(timedelta(hours=-5)))


@dataclass(frozen=True)
class Mapping:
    name: str  # the mapping file's name, for errors
    columns: dict[str, str]  # field -> the file's column
    constants: dict[str, str]  # field -> the value of every row
    energy_unit: str  # kWh | Wh
    formats: dict[str, tuple[str, ...]]  # start / stop -> strptime formats, tried in order
    two_digit_years: int | None
    prefix: str
    delimiter: str

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.name}: {message}")


def _text(name: str, key: str, value: object) -> str:
    """A YAML scalar that must be text; a bare `NO` or `1` is said back with a hint to quote."""
    if not isinstance(value, str) or not value.strip():
        hint = " (quote it)" if isinstance(value, bool | int | float) else ""
        raise ConfigError(f"{name}: {key}: {value!r} is not text{hint}")
    return value.strip()


def _format_ok(fmt: str) -> bool:
    """Polars reads back the date PROBE written in `fmt`."""
    try:
        written = PROBE.strftime(fmt)
    except ValueError:
        return False
    aware = "%z" in fmt or "%:z" in fmt
    dtype = pl.Datetime("us", "UTC") if aware else pl.Datetime("us")
    got = pl.Series([written]).str.strptime(dtype, fmt, strict=False)[0]
    return got is not None and (got.year % 100, got.month, got.day) == (14, 11, 18)


def _formats(name: str, value: object) -> dict[str, tuple[str, ...]]:
    if value is None:
        value = list(DEFAULT_FORMATS)
    by_field = value if isinstance(value, dict) else {"start": value, "stop": value}
    unknown = sorted(set(by_field) - {"start", "stop"}, key=str)
    if unknown:
        raise ConfigError(f"{name}: datetime_format: unknown field {unknown[0]!r} (start, stop)")
    out = {}
    for field in ("start", "stop"):
        formats = by_field.get(field, list(DEFAULT_FORMATS))
        formats = [formats] if isinstance(formats, str) else formats
        if not isinstance(formats, list) or not formats:
            raise ConfigError(f"{name}: datetime_format: a strptime format or a list of them")
        for fmt in formats:
            if not isinstance(fmt, str) or not _format_ok(fmt):
                raise ConfigError(
                    f"{name}: datetime_format ({field}): {fmt!r} is not a strptime format that "
                    "reads a date (e.g. '%Y-%m-%d %H:%M:%S')"
                )
        out[field] = tuple(formats)
    return out


def load_mapping(path: Path) -> Mapping:
    """The mapping in `path`, checked; a ConfigError (one line naming the key) otherwise."""
    name = path.name
    if not path.is_file():
        raise ConfigError(f"no such mapping file: {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{name}: not a YAML mapping file: {first}") from None
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{name}: a mapping of keys ({', '.join(KEYS)}), not {type(doc).__name__}"
        )
    unknown = [k for k in doc if k not in KEYS]
    if unknown:
        raise ConfigError(f"{name}: unknown key {unknown[0]!r} (keys: {', '.join(KEYS)})")
    raw_columns = doc.get("columns")
    if not isinstance(raw_columns, dict):
        raise ConfigError(f"{name}: columns: required, a mapping of field: the file's column")
    columns = {}
    for field, column in raw_columns.items():
        if field not in FIELDS:
            raise ConfigError(
                f"{name}: columns.{field}: unknown field (fields: {', '.join(FIELDS)})"
            )
        columns[field] = _text(name, f"columns.{field}", column)
    for field in REQUIRED:
        if field not in columns:
            raise ConfigError(f"{name}: columns.{field}: required ({FIELDS[field]})")
    constants = {k: _text(name, k, doc[k]) for k in CONSTANT_FIELDS if k in doc}
    both = [k for k in constants if k in columns]
    if both:
        raise ConfigError(f"{name}: {both[0]}: given as columns.{both[0]} and as a constant")
    zone = constants.get("timezone")
    if zone is not None and zone not in KNOWN_ZONES:
        raise ConfigError(f"{name}: timezone: {zone!r} is not an IANA time zone")
    if zone is None and "timezone" not in columns:
        raise ConfigError(
            f"{name}: timezone: required, the IANA zone of the sites and their local times "
            "(e.g. America/Los_Angeles), or columns.timezone"
        )
    currency = constants.get("currency")
    if currency is not None and not (len(currency) == 3 and currency.isalpha()):
        raise ConfigError(f"{name}: currency: {currency!r} is not an ISO 4217 code (e.g. USD)")
    if "fee" in columns and currency is None and "currency" not in columns:
        raise ConfigError(
            f"{name}: currency: required with columns.fee (a code such as USD, or columns.currency)"
        )
    country = constants.get("country")
    if country is not None and not (len(country) == 2 and country.isalpha()):
        raise ConfigError(f"{name}: country: {country!r} is not an ISO 3166 code (e.g. US)")
    if "energy_unit" not in doc:
        raise ConfigError(f"{name}: energy_unit: required (kWh or Wh)")
    unit = _text(name, "energy_unit", doc["energy_unit"])
    if unit.lower() not in UNITS:
        raise ConfigError(f"{name}: energy_unit: {unit!r} is not kWh or Wh")
    pivot = doc.get("two_digit_years")
    if pivot is not None and (
        isinstance(pivot, bool) or not isinstance(pivot, int) or not 1900 <= pivot <= 2100
    ):
        raise ConfigError(
            f"{name}: two_digit_years: {pivot!r} is not a year from 1900 to 2100 (the first "
            "year two-digit years stand for: with 1970, 14 is 2014 and 85 is 1985)"
        )
    prefix = _text(name, "prefix", doc["prefix"]) if "prefix" in doc else ""
    if prefix and not CHARGE_POINT_ID.match(prefix + "x"):
        raise ConfigError(f"{name}: prefix: {prefix!r} has characters a charge point id can't")
    delimiter = doc.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise ConfigError(f"{name}: delimiter: {delimiter!r} is not one character")
    return Mapping(
        name=name,
        columns=columns,
        constants={
            k: v.upper() if k in ("currency", "country") else v for k, v in constants.items()
        },
        energy_unit=UNITS[unit.lower()],
        formats=_formats(name, doc.get("datetime_format")),
        two_digit_years=pivot,
        prefix=prefix,
        delimiter=delimiter,
    )


def _columns(mapping: Mapping, path: Path, header: list[str]) -> dict[str, int]:
    """field -> its column's index in the header; every mapped column must be there, once."""
    out = {}
    for field, column in mapping.columns.items():
        if header.count(column) != 1:
            said = "twice" if column in header else "no"
            raise mapping.fail(
                f"columns.{field}: {said} column {column!r} in the header of {path.name} "
                f"({', '.join(header)})"
            )
        out[field] = header.index(column)
    return out


def _records(
    mapping: Mapping, path: Path, batch_rows: int
) -> Iterator[tuple[dict[str, int], list[tuple[int, list[str]]], list[RowError]]]:
    """The mapped columns and the records, `batch_rows` at a time (`common.csv_records`)."""

    def read_header(reader) -> tuple[dict[str, int], int]:
        header = [h.strip() for h in next(reader, [])]
        if not any(header):
            raise ConfigError(f"{path.name}: empty file: no header row")
        return _columns(mapping, path, header), len(header)

    return csv_records(path, batch_rows, read_header, mapping.delimiter)


def parse(path: Path, mapping: Mapping) -> Parsed:
    """Sessions of a mapped CSV export (see the module docstring), in one frame."""
    streamed = stream(functools.partial(parse_batches, mapping=mapping), path)
    frames = list(streamed.frames())
    sessions = pl.concat(frames) if frames else empty_sessions()
    return Parsed(
        sessions, streamed.errors, streamed.rows_read, streamed.duplicates, flags=streamed.flags
    )


def parse_batches(path: Path, batch_rows: int, *, mapping: Mapping) -> Iterator[Batch]:
    """The file's sessions before `finish`, `batch_rows` records at a time (for `stream`)."""
    for index, rows, errors in _records(mapping, path, batch_rows):
        yield _batch(mapping, index, rows, errors)


def _naive(mapping: Mapping, field: str) -> pl.Expr:
    """A start or stop column's local wall-clock time (the first format that reads it), its
    two-digit year read in `two_digit_years` .. +99; null where no format reads it."""
    parsed = []
    for fmt in mapping.formats[field]:
        if "%z" in fmt or "%:z" in fmt:
            continue
        t = pl.col(field).str.strptime(pl.Datetime("us"), fmt, strict=False)
        pivot = mapping.two_digit_years
        if pivot is not None:
            yy = t.dt.year() % 100 if "%y" in fmt else t.dt.year()
            year = pivot - pivot % 100 + yy
            year = pl.when(year < pivot).then(year + 100).otherwise(year)
            fixed = pl.datetime(
                year, t.dt.month(), t.dt.day(), t.dt.hour(), t.dt.minute(), t.dt.second(),
                t.dt.microsecond(),
            )  # fmt: skip
            t = fixed if "%y" in fmt else pl.when(t.dt.year() < 100).then(fixed).otherwise(t)
        parsed.append(t)
    return pl.coalesce(parsed) if parsed else pl.lit(None, dtype=pl.Datetime("us"))


def _with_offset(mapping: Mapping, field: str) -> pl.Expr:
    """A start or stop column's instant read with a format that has an offset (`%z`)."""
    parsed = [
        pl.col(field).str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False)
        for fmt in mapping.formats[field]
        if "%z" in fmt or "%:z" in fmt
    ]
    return pl.coalesce(parsed) if parsed else pl.lit(None, dtype=TS)


def _in_zone(naive: pl.Expr, zone: str, ambiguous: str) -> pl.Expr:
    """Local wall-clock `naive` in `zone` as UTC (the module docstring's DST rule)."""
    at = naive.dt.replace_time_zone(zone, ambiguous=ambiguous, non_existent="null")
    day_before = (naive - pl.duration(days=1)).dt.replace_time_zone(
        zone, ambiguous="earliest", non_existent="null"
    )
    offset_before = day_before.dt.base_utc_offset() + day_before.dt.dst_offset()
    skipped = (naive - offset_before).dt.replace_time_zone("UTC")
    return pl.coalesce(at.dt.convert_time_zone("UTC"), skipped).cast(TS)


def _utc(field: str, zones: list[str], ambiguous: str) -> pl.Expr:
    """`field`'s instant: with its offset, else its local time in the row's zone."""
    local = pl.coalesce(
        [
            pl.when(pl.col("_zone") == z).then(_in_zone(pl.col(f"_{field}"), z, ambiguous))
            for z in zones
        ]
        or [pl.lit(None, dtype=TS)]
    )
    return pl.coalesce(pl.col(f"_{field}_at"), local)


def _batch(
    mapping: Mapping,
    index: dict[str, int],
    rows: list[tuple[int, list[str]]],
    errors: list[RowError],
) -> Batch:
    rows_read = len(rows) + len(errors)
    cols = mapping.columns
    raw = pl.DataFrame(
        {"line": [ln for ln, _ in rows], **{k: [f[i] for _, f in rows] for k, i in index.items()}},
        schema={"line": pl.Int64, **dict.fromkeys(index, pl.String)},
    ).with_columns(pl.col(pl.String).str.strip_chars().replace("", None))
    raw = raw.with_columns(
        [
            pl.lit(mapping.constants.get(k), dtype=pl.String).alias(k)
            for k in FIELDS
            if k not in cols
        ]
    )
    raw = raw.with_columns(
        _zone=pl.col("timezone"),
        _start=_naive(mapping, "start"),
        _stop=_naive(mapping, "stop"),
        _start_at=_with_offset(mapping, "start"),
        _stop_at=_with_offset(mapping, "stop"),
    )
    zones = [z for z in raw["_zone"].unique().drop_nulls().to_list() if z in KNOWN_ZONES]
    start = _utc("start", zones, "earliest")
    stop_first = _utc("stop", zones, "earliest")
    stop = pl.when(stop_first < start).then(_utc("stop", zones, "latest")).otherwise(stop_first)
    df = raw.with_columns(
        start_ts=start,
        stop_ts=stop,
        energy_n=pl.col("energy").cast(pl.Float64, strict=False),
        port_n=pl.col("port").cast(pl.Int32, strict=False),
    )

    def said(field: str) -> pl.Expr:
        return quoted(field, cols.get(field, field))

    checks = [("missing field", pl.col(f).is_null(), pl.lit(cols[f])) for f in REQUIRED]
    for field in ("start", "stop"):
        unread = pl.col(f"_{field}").is_null() & pl.col(f"_{field}_at").is_null()
        checks.append(("bad date", unread, said(field)))
        checks.append(
            (
                "bad date",
                (pl.col(f"_{field}").dt.year() < 100).fill_null(False),
                pl.format(
                    "{} (year {}: a two-digit year? set two_digit_years in the mapping)",
                    said(field),
                    pl.col(f"_{field}").dt.year(),
                ),
            )
        )
    checks += [
        ("unknown time zone", ~pl.col("_zone").is_in(KNOWN_ZONES), said("timezone")),
        ("bad date", pl.col("start_ts").is_null(), said("start")),
        ("bad date", pl.col("stop_ts").is_null(), said("stop")),
        ("bad number", pl.col("energy_n").is_null() | pl.col("energy_n").is_nan(), said("energy")),
        ("negative energy", pl.col("energy_n") < 0, said("energy")),
        (
            "bad number",
            pl.col("port").is_not_null() & ~(pl.col("port_n") >= 1).fill_null(False),
            said("port"),
        ),
        *fee_checks("fee", pl.col("currency"), cols.get("fee")),
    ]
    good, bad = first_error(df, checks)
    errors += bad
    port = pl.col("port_n").fill_null(1)
    site = pl.coalesce(
        pl.format("{}{}", pl.lit(mapping.prefix), pl.col("site")), pl.lit(DEFAULT_SITE)
    )
    energy = pl.col("energy_n")
    sessions = good.with_columns(
        source_id=pl.coalesce(
            pl.col("session_id"), pl.col("start_ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        ),
        site_id=site.map_elements(slug, return_dtype=pl.String),
    ).select(
        "line",
        "source_id",
        source=pl.lit("csv"),
        transaction_id=pl.format("csv:{}:{}", port, pl.col("source_id")),
        charge_point_id=pl.format("{}{}", pl.lit(mapping.prefix), pl.col("station")),
        evse_id=port,
        connector_id=pl.lit(1),
        connector_type=pl.lit(None, dtype=pl.String),
        current_type=pl.lit(None, dtype=pl.String),
        vendor=pl.lit(None, dtype=pl.String),
        model=pl.lit(None, dtype=pl.String),
        serial_number=pl.lit(None, dtype=pl.String),
        site_id="site_id",
        site_name=pl.coalesce("site_name", "site_id"),
        site_timezone="_zone",
        site_country=pl.col("country").str.to_uppercase(),
        **region_columns(
            pl.col("country").str.to_uppercase(), pl.col("state"), pl.col("postal_code")
        ),
        id_token="user",
        stop_reason=pl.lit(None, dtype=pl.String),
        start_ts="start_ts",
        stop_ts="stop_ts",
        energy_wh=wh(energy) if mapping.energy_unit == "kWh" else energy.round(6),
        **fee_columns(pl.col("fee"), pl.col("currency")),
        knot_ts=pl.lit([], dtype=pl.List(TS)),
        knot_wh=pl.lit([], dtype=pl.List(pl.Float64)),
    )
    return sessions, errors, rows_read
