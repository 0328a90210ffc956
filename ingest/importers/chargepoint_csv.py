"""ChargePoint-style session exports: the CSV layout US cities publish (e.g. the City of Palo
Alto's open data), one row per plug-in.

Quirks handled: a UTF-8 byte-order mark; local wall-clock dates such as `7/29/2011 20:17` (with or
without seconds) whose offset is given by the `Start Time Zone` / `End Time Zone` abbreviation.
The abbreviation is the offset (PDT = UTC-7, PST = UTC-8, ...), which is what makes the repeated
hour at a fall-back unambiguous; the abbreviation's zone (PDT/PST -> America/Los_Angeles) becomes
the site's time zone. `Charging Time` marks where charging ended within the plug-in.

`common.csv_records` splits the records as the file streams, `batch_rows` at a time; polars does every typed parse and check on each
batch (`parse_batches`, driven by `common.stream`), so memory follows the batch, not the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from chargeops.settings import ConfigError
from ingest.importers.common import (
    NOTE,
    NOTE_DETAIL,
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

# abbreviation -> (IANA zone of the site, UTC offset in minutes)
ZONES: dict[str, tuple[str, int]] = {
    "PST": ("America/Los_Angeles", -480), "PDT": ("America/Los_Angeles", -420),
    "MST": ("America/Denver", -420), "MDT": ("America/Denver", -360),
    "CST": ("America/Chicago", -360), "CDT": ("America/Chicago", -300),
    "EST": ("America/New_York", -300), "EDT": ("America/New_York", -240),
    "AKST": ("America/Anchorage", -540), "AKDT": ("America/Anchorage", -480),
    "HST": ("Pacific/Honolulu", -600), "UTC": ("UTC", 0), "GMT": ("UTC", 0),
}  # fmt: skip
COUNTRIES = {"united states": "US", "usa": "US", "us": "US", "canada": "CA", "ca": "CA"}
REQUIRED = (
    "Start Date", "Start Time Zone", "End Date", "End Time Zone", "Energy (kWh)",
)  # fmt: skip
OPTIONAL = (
    "Station Name", "MAC Address", "Org Name", "Charging Time (hh:mm:ss)",
    "Total Duration (hh:mm:ss)", "Port Type",
    "Port Number", "Plug Type", "Address 1", "City", "Country", "Ended By", "Plug In Event Id",
    "User ID", "System S/N", "Model Number", "State/Province", "Postal Code", "Fee", "Currency",
    "GHG Savings (kg)",
)  # fmt: skip
DATE_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")
# dates have minute resolution, durations seconds: within this they agree
AGREE_S = 60
END_CONTRADICTS = "end date contradicts total duration: trusted the duration"
END_UNREADABLE = "end date unreadable: stop from the total duration"


def _header(reader) -> list[str]:
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ConfigError("empty file: no header row") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing or ("Station Name" not in header and "MAC Address" not in header):
        need = missing or ["Station Name or MAC Address"]
        raise ConfigError(f"not a ChargePoint session export: no column {', '.join(need)}")
    return header


def _local(col: str) -> pl.Expr:
    s = pl.col(col).str.strip_chars()
    return pl.coalesce([s.str.strptime(pl.Datetime("us"), f, strict=False) for f in DATE_FORMATS])


def _utc(date_col: str, zone_col: str) -> pl.Expr:
    offset = (
        pl.col(zone_col)
        .str.strip_chars()
        .str.to_uppercase()
        .replace_strict({k: v[1] for k, v in ZONES.items()}, default=None, return_dtype=pl.Int64)
    )
    return (_local(date_col) - pl.duration(minutes=offset)).dt.replace_time_zone("UTC")


def _seconds(col: str) -> pl.Expr:
    parts = pl.col(col).str.strip_chars().str.extract_groups(r"^(\d+):([0-5]\d):([0-5]\d)$")
    return (
        parts.struct.field("1").cast(pl.Int64) * 3600
        + parts.struct.field("2").cast(pl.Int64) * 60
        + parts.struct.field("3").cast(pl.Int64)
    )


def _stop(df: pl.DataFrame) -> pl.DataFrame:
    """The stop, from End Date or Start Date + Total Duration, and a note where they disagree.

    Real exports contradict themselves (an End Date written with the wrong zone label, a clock
    changed mid-session, a date in another format). When both are readable and agree within a
    minute (dates have minute resolution) the End Date stands. Otherwise Start Date + Total
    Duration is trusted: an elapsed time the charger measured, which no clock change or
    time-zone label can shift; the row is kept and flagged with both values. Without a
    duration the End Date is all there is (unreadable: a malformed row)."""
    by_duration = pl.col("start_ts") + pl.duration(seconds=pl.col("total_s"))
    off = (pl.col("end_ts") - by_duration).dt.total_seconds().abs()
    unreadable = pl.col("total_s").is_not_null() & pl.col("end_ts").is_null()
    contradicts = pl.col("total_s").is_not_null() & (off > AGREE_S)
    end = pl.format("End Date '{} {}'", pl.col("End Date"), pl.col("End Time Zone"))
    told = pl.format(
        "Start Date '{} {}' + Total Duration {}",
        pl.col("Start Date"),
        pl.col("Start Time Zone"),
        pl.col("Total Duration (hh:mm:ss)"),
    )
    return df.with_columns(
        stop_ts=pl.when(unreadable | contradicts).then(by_duration).otherwise("end_ts"),
        **{
            NOTE: pl.when(unreadable)
            .then(pl.lit(END_UNREADABLE))
            .when(contradicts)
            .then(pl.lit(END_CONTRADICTS)),
            NOTE_DETAIL: pl.when(unreadable)
            .then(pl.format("{}; stop = {}", end, told))
            .when(contradicts)
            .then(
                pl.format(
                    "{} is {} s from {}; an elapsed time no clock change or zone label shifts",
                    end,
                    (pl.col("end_ts") - by_duration).dt.total_seconds(),
                    told,
                )
            ),
        },
    )


def parse(path: Path) -> Parsed:
    """Sessions of a ChargePoint export (see the module docstring), in one frame."""
    streamed = stream(parse_batches, path)
    frames = list(streamed.frames())
    sessions = pl.concat(frames) if frames else empty_sessions()
    return Parsed(
        sessions, streamed.errors, streamed.rows_read, streamed.duplicates, flags=streamed.flags
    )


def parse_batches(path: Path, batch_rows: int) -> Iterator[Batch]:
    """The file's sessions before `finish`, `batch_rows` records at a time (for `stream`)."""

    def read_header(reader) -> tuple[list[str], int]:
        header = _header(reader)
        return header, len(header)

    for header, rows, errors in csv_records(path, batch_rows, read_header):
        yield _batch(header, rows, errors)


def _batch(header: list[str], rows: list[tuple[int, list[str]]], errors: list[RowError]) -> Batch:
    rows_read = len(rows) + len(errors)
    cols = [c for c in (*REQUIRED, *OPTIONAL) if c in header]
    idx = [header.index(c) for c in cols]
    raw = (
        pl.DataFrame(
            {
                "line": [ln for ln, _ in rows],
                **{c: [f[i] for _, f in rows] for c, i in zip(cols, idx, strict=True)},
            },
            schema={"line": pl.Int64, **dict.fromkeys(cols, pl.String)},
        )
        .with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in OPTIONAL if c not in header])
        .with_columns(pl.col(pl.String).str.strip_chars().replace("", None))
    )
    df = raw.with_columns(
        start_ts=_utc("Start Date", "Start Time Zone"),
        end_ts=_utc("End Date", "End Time Zone"),
        total_s=_seconds("Total Duration (hh:mm:ss)"),
        energy_kwh=pl.col("Energy (kWh)").cast(pl.Float64, strict=False),
        port=pl.col("Port Number").cast(pl.Int32, strict=False),
        charging_s=_seconds("Charging Time (hh:mm:ss)"),
        known_zone=pl.col("Start Time Zone").str.to_uppercase().is_in(list(ZONES))
        & (
            pl.col("End Time Zone").str.to_uppercase().is_in(list(ZONES))
            | pl.col("Total Duration (hh:mm:ss)").is_not_null()
        ),
    )
    df = _stop(df)
    has_duration = pl.col("total_s").is_not_null()
    checks = [
        (
            "missing field",
            pl.col(c).is_null() & ~(has_duration & pl.lit(c.startswith("End "))),
            pl.lit(c),
        )
        for c in REQUIRED
    ]
    checks += [
        (
            "missing field",
            pl.col("Station Name").is_null() & pl.col("MAC Address").is_null(),
            pl.lit("Station Name"),
        ),
        ("bad date", _local("Start Date").is_null(), quoted("Start Date")),
        ("bad date", _local("End Date").is_null() & ~has_duration, quoted("End Date")),
        (
            "unknown time zone",
            ~pl.col("known_zone"),
            pl.format("{} / {}", pl.col("Start Time Zone"), pl.col("End Time Zone")),
        ),
        ("bad number", pl.col("energy_kwh").is_null(), quoted("Energy (kWh)")),
        ("bad number", pl.col("energy_kwh").is_nan(), quoted("Energy (kWh)")),
        ("negative energy", pl.col("energy_kwh") < 0, quoted("Energy (kWh)")),
        (
            "bad number",
            pl.col("Port Number").is_not_null() & (pl.col("port").is_null() | (pl.col("port") < 1)),
            quoted("Port Number"),
        ),
        (
            "bad duration",
            pl.col("Charging Time (hh:mm:ss)").is_not_null() & pl.col("charging_s").is_null(),
            quoted("Charging Time (hh:mm:ss)"),
        ),
        *fee_checks("Fee", pl.col("Currency")),
    ]
    good, bad = first_error(df, checks)
    errors += bad
    port = pl.col("port").fill_null(1)
    country = pl.col("Country").str.to_lowercase().replace_strict(COUNTRIES, default=None)
    address = pl.concat_str(
        [pl.col("Address 1"), pl.col("City")], separator=", ", ignore_nulls=True
    )
    sessions = good.with_columns(
        source=pl.lit("chargepoint"),
        source_id=pl.coalesce(
            pl.col("Plug In Event Id"),
            pl.col("start_ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
    ).select(
        "line",
        NOTE,
        NOTE_DETAIL,
        "source",
        "source_id",
        transaction_id=pl.format("cp:{}:{}", port, pl.col("source_id")),
        charge_point_id=pl.coalesce(
            pl.col("MAC Address"),
            pl.col("Station Name").map_elements(slug, return_dtype=pl.String),
        ),
        evse_id=port,
        connector_id=pl.lit(1),
        connector_type="Plug Type",
        current_type=pl.when(pl.col("Port Type").str.contains("(?i)DC"))
        .then(pl.lit("DC"))
        .when(pl.col("Port Type").is_not_null())
        .then(pl.lit("AC")),
        vendor=pl.lit("ChargePoint"),
        model="Model Number",
        serial_number="System S/N",
        site_id=pl.coalesce(
            pl.when(pl.col("Address 1").is_not_null()).then(
                pl.concat_str(
                    [pl.col("City"), pl.col("Address 1")], separator=" ", ignore_nulls=True
                )
            ),
            pl.col("Org Name"),
            pl.lit("chargepoint"),
        ).map_elements(slug, return_dtype=pl.String),
        site_name=pl.coalesce(
            pl.when(pl.col("Org Name").is_not_null() & (address != ""))
            .then(pl.format("{} ({})", address, pl.col("Org Name")))
            .otherwise(pl.when(address != "").then(address)),
            pl.col("Org Name"),
            pl.lit("ChargePoint import"),
        ),
        site_timezone=pl.col("Start Time Zone")
        .str.to_uppercase()
        .replace_strict({k: v[0] for k, v in ZONES.items()}, default="UTC"),
        site_country=country,
        **region_columns(country, pl.col("State/Province"), pl.col("Postal Code")),
        id_token="User ID",
        stop_reason=pl.when(pl.col("Ended By").str.contains("(?i)plug out"))
        .then(pl.lit("EVDisconnected"))
        .when(pl.col("Ended By").is_not_null())
        .then(pl.lit("Other")),
        start_ts=pl.col("start_ts").cast(TS),
        stop_ts=pl.col("stop_ts").cast(TS),
        energy_wh=wh(pl.col("energy_kwh")),
        **fee_columns(pl.col("Fee"), pl.col("Currency")),
        stated_ghg_kg=pl.col("GHG Savings (kg)").cast(pl.Float64, strict=False),
        knot_ts=pl.concat_list(
            pl.col("start_ts").cast(TS) + pl.duration(seconds=pl.col("charging_s"))
        ),
        knot_wh=pl.concat_list(wh(pl.col("energy_kwh"))),
    )
    return sessions, errors, rows_read
