"""The frame every importer produces, row errors, and the pure steps shared by the formats:
validation to one error per row, and the OCPP-like rows (meter values, statuses) a session
becomes so the analytics treat it like a collected one.

An imported session is a transaction with meter_start 0 Wh and meter_stop = its energy, plus
Energy.Active.Import.Register samples: Transaction.Begin (0) at the start, Transaction.End at the
stop, one Sample.Periodic at each *knot* the source tells (where charging ended, the start of an
OCPI charging period), and one Sample.Clock at every 15-minute UTC boundary in between, linearly
interpolated between knots. The clock samples matter: the energy asset reads register samples
within an hour of its day and spreads each pair of samples pro rata, so a session crossing midnight
must have samples near midnight; and the connector-state logic counts a charge point silent for
more than 30 minutes as offline.
"""

from __future__ import annotations

import bisect
import csv
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO, TypeVar

import polars as pl

from chargeops.money import exponent_of, minor_unit_exponent, money_text, to_minor
from chargeops.plausibility import step_limit_wh
from chargeops.settings import ConfigError
from ingest.normalise import DEFAULT_MEASURAND
from ingest.registry import CHARGE_POINT_ID

TS = pl.Datetime("us", "UTC")
T = TypeVar("T")
CLOCK = "15m"
OCPP_VERSION = "import"  # transaction.ocpp_version and status_event.ocpp_version of imports

SESSIONS = {  # the common frame: one row per imported session
    "line": pl.Int64,                 # line of the row (CSV, JSON lines) or of the object (JSON)
    "source": pl.String,              # chargepoint | acn | ocpi
    "source_id": pl.String,           # the session's id in the source
    "transaction_id": pl.String,      # deterministic, from source_id
    "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "connector_type": pl.String, "current_type": pl.String,
    "vendor": pl.String, "model": pl.String, "serial_number": pl.String,
    "site_id": pl.String, "site_name": pl.String, "site_timezone": pl.String,
    "site_country": pl.String,
    # the grid region the file implies (`regions`), and what it was read from
    "site_grid_region": pl.String, "site_region_from": pl.String,
    "id_token": pl.String, "stop_reason": pl.String,
    "start_ts": TS, "stop_ts": TS, "energy_wh": pl.Float64,
    # what the driver paid, in minor units of `currency` (ISO 4217); null: the file gives no fee
    "fee_amount": pl.Int64, "currency": pl.String,
    # the export's own CO2 saving estimate (ChargePoint `GHG Savings (kg)`), null where it gives
    # none: kept to be compared with ours in the report, never used as a figure
    "stated_ghg_kg": pl.Float64,
    # inner points of the cumulative energy profile, strictly inside (start, stop), rising
    "knot_ts": pl.List(TS), "knot_wh": pl.List(pl.Float64),
}  # fmt: skip

METER = {
    "ts": TS, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "transaction_id": pl.String, "measurand": pl.String, "phase": pl.String,
    "location": pl.String, "context": pl.String, "value": pl.Float64, "unit": pl.String,
    "raw_value": pl.String, "raw_unit": pl.String, "multiplier": pl.Int32, "received_at": TS,
}  # fmt: skip
STATUS = {
    "ts": TS, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "status": pl.String, "error_code": pl.String, "ocpp_version": pl.String, "received_at": TS,
}  # fmt: skip

MAX_SESSION_ENV = "CHARGEOPS_IMPORT_MAX_SESSION_DAYS"
MAX_SESSION_DAYS = 7.0  # a longer row is rejected ("session too long")
BATCH_ROWS_ENV = "CHARGEOPS_IMPORT_BATCH_ROWS"
BATCH_ROWS = 10_000  # a batch's meter rows (15-minute samples) stay in the tens of MB

KEY = ["charge_point_id", "evse_id", "connector_id"]
TXK = ["charge_point_id", "transaction_id"]


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str  # short and stable: the summary counts by it
    detail: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" + (f": {self.detail}" if self.detail else "")


class RowFlag(RowError):
    """A row kept with a note: what the importer did with it and why (an overlap placed on
    another connector, a column it trusted over another). Counted in the summary and stored in
    `import_flag`."""


# a parser's note on a row it kept (columns of the frame before `finish`; see `notes`)
NOTE, NOTE_DETAIL = "_note", "_note_detail"


def notes(df: pl.DataFrame) -> list[RowFlag]:
    """The RowFlags of the rows a parser noted (NOTE set), e.g. a column it trusted over
    another that contradicted it."""
    if NOTE not in df.columns:
        return []
    noted = df.filter(pl.col(NOTE).is_not_null()).select("line", NOTE, NOTE_DETAIL)
    return [RowFlag(int(line), n, d or "") for line, n, d in noted.iter_rows()]


@dataclass
class Parsed:
    """What a parser returns: valid sessions, one error per malformed row, rows read."""

    sessions: pl.DataFrame
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    duplicates: int = 0  # rows whose session id came earlier in the same file
    # streamed files (`stream`): the valid sessions batch by batch; `sessions` then holds only
    # their key columns
    batches: Callable[[], Iterator[pl.DataFrame]] | None = None
    flags: list[RowFlag] = field(default_factory=list)  # rows kept with a note

    def frames(self) -> Iterator[pl.DataFrame]:
        """The valid sessions (SESSIONS schema), in one frame or batch by batch."""
        if self.batches is not None:
            yield from self.batches()
        elif self.sessions.height:
            yield self.sessions


# IANA zone names a file may give (sites' time zones); anything else is a malformed row
KNOWN_ZONES = sorted(zoneinfo.available_timezones() | {"UTC"})


def read_text(path: Path) -> str:
    """The file as text (a UTF-8 BOM, as ChargePoint exports have, dropped); one clear error for
    bytes that are not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def open_text(path: Path) -> TextIO:
    """The file as a text stream for csv (a UTF-8 BOM dropped); the caller turns a
    UnicodeDecodeError into a ConfigError naming the line, as `read_text` names the byte."""
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (the caller's `with`)


def csv_records(
    path: Path,
    batch_rows: int,
    read_header: Callable[[Iterator[list[str]]], tuple[T, int]],
    delimiter: str = ",",
) -> Iterator[tuple[T, list[tuple[int, list[str]]], list[RowError]]]:
    """A CSV export's records, `batch_rows` at a time, as the file streams: Python's csv module
    splits them, so a row's physical line number is exact even with a quoted newline and a row
    with the wrong number of fields is an error, not silently padded; blank rows are skipped.
    `read_header` reads the header from the reader and returns what the caller needs of it
    and its number of fields."""
    with open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header, width = read_header(reader)
            rows: list[tuple[int, list[str]]] = []
            errors: list[RowError] = []
            line = reader.line_num + 1
            for fields in reader:
                if any(f.strip() for f in fields):
                    if len(fields) != width:
                        detail = f"{len(fields)} fields, the header has {width}"
                        errors.append(RowError(line, "wrong number of fields", detail))
                    else:
                        rows.append((line, fields))
                    if len(rows) + len(errors) >= batch_rows:
                        yield header, rows, errors
                        rows, errors = [], []
                line = reader.line_num + 1
        except csv.Error as e:
            raise ConfigError(f"{path.name}: line {reader.line_num}: unreadable CSV: {e}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"{path}: not UTF-8 text ({e.reason} near line {reader.line_num + 1})"
            ) from None
        if rows or errors:
            yield header, rows, errors


def wh(kwh: pl.Expr) -> pl.Expr:
    """kWh to Wh, rounded to a micro-watt-hour so 6.249457 kWh is 6249.457 Wh, not ...6999."""
    return (kwh * 1000.0).round(6)


def empty_sessions() -> pl.DataFrame:
    return pl.DataFrame(schema=SESSIONS)


def slug(text: str, limit: int = 48) -> str:
    """A readable id made of the characters charge point ids allow."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", text.strip()).strip("-").lower()
    return s[:limit].rstrip("-") or "unnamed"


def first_error(
    df: pl.DataFrame, checks: Iterable[tuple[str, pl.Expr, pl.Expr]]
) -> tuple[pl.DataFrame, list[RowError]]:
    """Split `df` (with a `line` column) into good rows and one RowError per bad row.

    `checks` are (reason, failed, detail) in order of precedence; a row's error is the first
    check it fails, so a row is either imported whole or reported, never half."""
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    detail: pl.Expr = pl.lit(None, dtype=pl.String)
    for name, failed, why in reversed(list(checks)):
        hit = failed.fill_null(True)
        reason = pl.when(hit).then(pl.lit(name)).otherwise(reason)
        detail = pl.when(hit).then(why.cast(pl.String)).otherwise(detail)
    df = df.with_columns(_reason=reason, _detail=detail)
    bad = df.filter(pl.col("_reason").is_not_null())
    errors = [
        RowError(int(line), r, d or "")
        for line, r, d in bad.select("line", "_reason", "_detail").iter_rows()
    ]
    return df.filter(pl.col("_reason").is_null()).drop("_reason", "_detail"), errors


def quoted(col: str, label: str | None = None) -> pl.Expr:
    """`col 'value'` for error details (`label 'value'` when the file calls the column so)."""
    return pl.format("{} '{}'", pl.lit(label or col), pl.col(col).fill_null(""))


# a fee as exports write it: a plain decimal, a currency sign before it allowed ("$1.50")
FEE_PATTERN = r"^[$€£¥]?\s*(\d+(?:\.\d+)?)$"


def fee_checks(
    fee: str, currency: pl.Expr, label: str | None = None
) -> list[tuple[str, pl.Expr, pl.Expr]]:
    """`first_error` checks of a fee column (text) and its currency (an ISO 4217 code): an
    empty fee is no fee; a fee that is not a non-negative number, or has no currency, is a
    malformed row. `label`: the column's name in the file, for the details."""
    text = pl.col(fee).str.strip_chars()
    given = text.is_not_null() & (text != "")
    return [
        ("bad fee", given & text.str.extract(FEE_PATTERN).is_null(), quoted(fee, label)),
        ("fee without currency", given & currency.is_null(), quoted(fee, label)),
        (
            "unknown currency",
            given & ~currency.str.strip_chars().str.to_uppercase().str.contains(r"^[A-Z]{3}$"),
            pl.format("currency '{}'", currency),
        ),
    ]


def fee_columns(fee: pl.Expr, currency: pl.Expr) -> dict[str, pl.Expr]:
    """SESSIONS' fee_amount (minor units, rounded once) and currency from a fee column (text,
    checked by `fee_checks`) and its currency; both null where the row gives no fee."""
    number = fee.str.strip_chars().str.extract(FEE_PATTERN).cast(pl.Float64)
    code = pl.when(number.is_not_null()).then(currency.str.strip_chars().str.to_uppercase())
    return {"fee_amount": to_minor(number, minor_unit_exponent(code)), "currency": code}


def max_session() -> timedelta:
    """The longest session an import accepts (`CHARGEOPS_IMPORT_MAX_SESSION_DAYS`, default 7)."""
    raw = os.environ.get(MAX_SESSION_ENV, "").strip()
    try:
        days = float(raw) if raw else MAX_SESSION_DAYS
    except ValueError:
        raise ConfigError(f"{MAX_SESSION_ENV}={raw!r} is not a number of days") from None
    if not days > 0:
        raise ConfigError(f"{MAX_SESSION_ENV}={raw!r} must be more than 0 days")
    return timedelta(days=days)


def batch_rows() -> int:
    """Rows a streamed import reads, checks and writes at a time (`CHARGEOPS_IMPORT_BATCH_ROWS`)."""
    raw = os.environ.get(BATCH_ROWS_ENV, "").strip()
    if not raw:
        return BATCH_ROWS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{BATCH_ROWS_ENV}={raw!r} is not a positive whole number")
    return int(raw)


def energy_limit_wh(span: pl.Expr) -> pl.Expr:
    """The most energy a connector of unknown rating can deliver over `span`."""
    return step_limit_wh(span, pl.lit(None, dtype=pl.Float64))


def _valid_id(charge_point_id: str) -> bool:
    """The collector's own rule (`ingest.registry`, a Python pattern polars may not parse)."""
    return CHARGE_POINT_ID.match(charge_point_id) is not None


def _prepare(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        pl.col("charge_point_id").str.strip_chars(),
        pl.col("evse_id").cast(pl.Int32),
        pl.col("connector_id").cast(pl.Int32),
    )


def _row_checks(df: pl.DataFrame, longest: timedelta) -> tuple[pl.DataFrame, list[RowError]]:
    """Checks that need only the row: charge point id, end before start, a span longer than
    `longest` (a 20-year row would become 700,000 clock samples), energy that is not finite or
    more than any connector could deliver in the span (`inf`, 1e300 kWh)."""
    span = pl.col("stop_ts") - pl.col("start_ts")
    return first_error(
        _prepare(df),
        [
            (
                "bad charge point id",
                ~pl.col("charge_point_id").map_elements(_valid_id, return_dtype=pl.Boolean),
                quoted("charge_point_id"),
            ),
            (
                "end before start",
                pl.col("stop_ts") < pl.col("start_ts"),
                pl.format(
                    "{} .. {}",
                    pl.col("start_ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    pl.col("stop_ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                ),
            ),
            (
                "session too long",
                span > longest,
                pl.format(
                    "{} days, at most {}",
                    (span.dt.total_seconds() / 86400).round(1),
                    pl.lit(f"{longest.total_seconds() / 86400:g} days"),
                ),
            ),
            (
                "implausible energy",
                ~pl.col("energy_wh").is_finite() | (pl.col("energy_wh") > energy_limit_wh(span)),
                pl.format(
                    "{} Wh in {} h (at most {} Wh)",
                    pl.col("energy_wh"),
                    (span.dt.total_seconds() / 3600).round(2),
                    energy_limit_wh(span).round(0),
                ),
            ),
        ],
    )


KEYS = [*TXK, "evse_id", "connector_id", "line", "start_ts", "stop_ts", "energy_wh", "fee_amount",
        "currency"]  # fmt: skip


def _cross_checks(keys: pl.DataFrame) -> tuple[pl.DataFrame, list[RowError], list[RowFlag], int]:
    """Checks across rows, on the small key columns of the whole file: in-file duplicates (the
    first row of a session id wins; a later row with the same id and other content is an error
    naming both lines, never silently dropped) and sessions overlapping another on the same
    connector, which are kept and placed by `_place_overlaps`. The kept key rows (with the
    connector each session is stored on), the errors, the flags, the exact duplicates.

    Lean on purpose (a streamed file's keys are the only thing kept for all rows)."""
    keys = keys if keys["line"].is_sorted() else keys.sort("line")
    first_of_id = keys.select(pl.struct(TXK).is_first_distinct()).to_series()
    errors: list[RowError] = []
    duplicates = 0
    if not first_of_id.all():
        first = keys.filter(first_of_id)
        again = keys.filter(~first_of_id).join(first, on=TXK, how="left", suffix="_first")
        same = same_content("_first")
        duplicates = int(again.filter(same).height)
        errors = [
            RowError(
                r["line"],
                "same session id as an earlier row, other content",
                f"{r['transaction_id']}: line {r['line_first']} has "
                f"{version_text(r, '_first')}, this line {version_text(r)}",
            )
            for r in again.filter(~same).iter_rows(named=True)
        ]
        keys = first
    crowded = (
        keys.sort([*KEY, "start_ts", "line"])
        .with_columns(overlaps=pl.col("start_ts") < pl.col("stop_ts").cum_max().shift(1).over(KEY))
        .filter("overlaps")["charge_point_id"]
        .unique()
        .to_list()
    )
    if not crowded:
        return keys, errors, [], duplicates
    keys, flags = _place_overlaps(keys, crowded)
    return keys, errors, flags, duplicates


# what makes two rows with one session id the same session (in a file, or file and database)
CONTENT = ["evse_id", "connector_id", "start_ts", "stop_ts", "energy_wh", "fee_amount", "currency"]


def same_content(suffix: str) -> pl.Expr:
    """True where a row's CONTENT equals that of the other version, joined with `suffix`."""
    return pl.all_horizontal(pl.col(c).eq_missing(pl.col(c + suffix)) for c in CONTENT)


def version_text(row: dict, suffix: str = "") -> str:
    """A row's CONTENT (the columns ending in `suffix`), as an error naming two versions
    shows it."""
    evse, connector, start, stop, energy_wh, fee, currency = (row[c + suffix] for c in CONTENT)
    paid = "" if fee is None else f", fee {money_text(fee, exponent_of(currency), currency)}"
    return (
        f"EVSE {evse} connector {connector}, "
        f"{start:%Y-%m-%dT%H:%M:%SZ} .. {stop:%Y-%m-%dT%H:%M:%SZ}, {energy_wh} Wh{paid}"
    )


OVERLAP_MOVED = "overlap: kept on another connector of its charge point"
OVERLAP_ADDED = "overlap: kept on an added connector"


def _place_overlaps(keys: pl.DataFrame, cps: list[str]) -> tuple[pl.DataFrame, list[RowFlag]]:
    """Real exports have sessions that overlap on one connector (two plugs recorded on one port,
    a clock change, a session restarted on the same port). None is dropped; the rule:

    1. on each connector, in order of start (then line), a session stays where the file puts it
       unless it starts before the last session kept there ends;
    2. such a session moves to the first connector of the same charge point that is free for its
       whole span: the same EVSE first, then the others, lowest id first;
    3. if none is, it goes on an added connector of its EVSE (the next connector id), which
       later overlaps may share.

    Sessions that do not overlap never move. Each moved session gets a flag naming the session
    it overlapped and where it was put."""
    mine = keys.filter(pl.col("charge_point_id").is_in(cps)).sort(
        "charge_point_id", "start_ts", "line"
    )
    # per charge point: connector -> (sorted starts, stops, lines) of the sessions kept on it
    placed: dict[str, dict[tuple[int, int], tuple[list, list, list]]] = {}
    displaced: list[tuple] = []
    for cp, evse, conn, line, start, stop in mine.select(
        "charge_point_id", "evse_id", "connector_id", "line", "start_ts", "stop_ts"
    ).iter_rows():
        slots = placed.setdefault(cp, {}).setdefault((evse, conn), ([], [], []))
        if slots[1] and start < slots[1][-1]:
            displaced.append((cp, evse, conn, line, start, stop, slots[2][-1]))
            continue
        slots[0].append(start)
        slots[1].append(stop)
        slots[2].append(line)

    def free(slots: tuple[list, list, list], start, stop) -> bool:
        i = bisect.bisect_left(slots[0], stop)  # sessions starting before this one ends
        return i == 0 or slots[1][i - 1] <= start

    moves: list[tuple[int, int, int]] = []
    flags: list[RowFlag] = []
    for cp, evse, conn, line, start, stop, other in displaced:
        connectors = placed[cp]
        choice = next(
            (
                c
                for c in sorted(connectors, key=lambda c: (c[0] != evse, c))
                if c != (evse, conn) and free(connectors[c], start, stop)
            ),
            None,
        )
        reason = OVERLAP_MOVED
        if choice is None:
            reason = OVERLAP_ADDED
            choice = (evse, max(c for e, c in connectors if e == evse) + 1)
            connectors[choice] = ([], [], [])
        slots = connectors[choice]
        i = bisect.bisect_left(slots[0], start)
        slots[0].insert(i, start)
        slots[1].insert(i, stop)
        slots[2].insert(i, line)
        moves.append((line, *choice))
        flags.append(
            RowFlag(
                line,
                reason,
                f"overlaps line {other} on EVSE {evse} connector {conn}; "
                f"stored on EVSE {choice[0]} connector {choice[1]}",
            )
        )
    moved = pl.DataFrame(
        moves,
        schema={"line": pl.Int64, "to_evse": pl.Int32, "to_connector": pl.Int32},
        orient="row",
    )
    keys = (
        keys.join(moved, on="line", how="left")
        .with_columns(
            evse_id=pl.coalesce("to_evse", "evse_id"),
            connector_id=pl.coalesce("to_connector", "connector_id"),
        )
        .drop("to_evse", "to_connector")
    )
    return keys, sorted(flags, key=lambda f: f.line)


# SESSIONS columns only some formats have: null where a parser does not give them
OPTIONAL_COLUMNS = ("stated_ghg_kg",)


def _shape(df: pl.DataFrame) -> pl.DataFrame:
    df = df.with_columns(
        pl.lit(None, dtype=SESSIONS[c]).alias(c) for c in OPTIONAL_COLUMNS if c not in df.columns
    )
    return _clean_knots(df).sort("line").select([pl.col(c).cast(t) for c, t in SESSIONS.items()])


def finish(df: pl.DataFrame, errors: list[RowError], rows_read: int) -> Parsed:
    """Common last checks and the SESSIONS shape: the row checks (`_row_checks`), knots kept
    only where they lie inside the session, in-file duplicates, overlaps on a connector."""
    good, more = _row_checks(df, max_session())
    kept, cross, flags, duplicates = _cross_checks(good.select(KEYS))
    return Parsed(
        _shape(_placed(good, kept)),
        sorted([*errors, *more, *cross], key=lambda e: e.line),
        rows_read,
        duplicates,
        flags=_kept_notes(notes(good), kept, flags),
    )


def _kept_notes(noted: list[RowFlag], kept: pl.DataFrame, flags: list[RowFlag]) -> list[RowFlag]:
    """The parser's notes on rows that are kept (not a later duplicate), with the flags of the
    cross-row checks, in line order."""
    lines = set(kept["line"].to_list())
    return sorted([*(f for f in noted if f.line in lines), *flags], key=lambda f: f.line)


def _placed(good: pl.DataFrame, kept: pl.DataFrame) -> pl.DataFrame:
    """The kept rows of `good`, each on the connector `_cross_checks` placed it on."""
    return good.drop("evse_id", "connector_id").join(
        kept.select("line", "evse_id", "connector_id"), on="line", how="inner"
    )


# one batch of a streamed format: (sessions before `finish`, row errors, rows read)
Batch = tuple[pl.DataFrame, list[RowError], int]


def stream(
    parse_batches: Callable[[Path, int], Iterator[Batch]], path: Path, rows: int | None = None
) -> Parsed:
    """A file read in batches of `rows`: a first pass runs the row checks batch by batch and
    keeps only the key columns of the good rows (for the duplicate and overlap checks, which
    span the file); `Parsed.batches()` then reads the file again and yields the valid sessions
    of each batch, which `load` writes batch by batch. Memory holds one batch and the keys, not
    the file. `sessions` holds the key columns (for the summary and the partitions)."""
    rows = rows or batch_rows()
    longest = max_session()
    keys, errors, noted, rows_read = [], [], [], 0
    for df, errs, n in parse_batches(path, rows):
        good, more = _row_checks(df, longest)
        noted += notes(good)
        # a charge point id is one of a few: categorical codes keep the keys small
        keys.append(good.select(KEYS).with_columns(pl.col("charge_point_id").cast(pl.Categorical)))
        errors += [*errs, *more]
        rows_read += n
    all_keys = pl.concat(keys) if keys else pl.DataFrame(schema={k: SESSIONS[k] for k in KEYS})
    del keys
    kept, cross, flags, duplicates = _cross_checks(all_keys)
    placement = kept.select("line", "evse_id", "connector_id")

    def batches() -> Iterator[pl.DataFrame]:
        for df, _, _ in parse_batches(path, rows):
            good, _ = _row_checks(df, longest)
            good = _placed(good, placement)
            if good.height:
                yield _shape(good)

    return Parsed(
        kept.select(KEYS),
        sorted([*errors, *cross], key=lambda e: e.line),
        rows_read,
        duplicates,
        batches=batches,
        flags=_kept_notes(noted, kept, flags),
    )


def _clean_knots(df: pl.DataFrame) -> pl.DataFrame:
    """Keep knots strictly inside (start, stop), values clipped to [0, energy] and made
    non-decreasing, so the register never goes down."""
    if df.is_empty():
        return df.with_columns(
            knot_ts=pl.lit([], dtype=pl.List(TS)), knot_wh=pl.lit([], dtype=pl.List(pl.Float64))
        )
    k = (
        df.select("line", "start_ts", "stop_ts", "energy_wh", "knot_ts", "knot_wh")
        .explode("knot_ts", "knot_wh")
        .filter(
            pl.col("knot_ts").is_not_null()
            & (pl.col("knot_ts") > pl.col("start_ts"))
            & (pl.col("knot_ts") < pl.col("stop_ts"))
        )
        .sort("line", "knot_ts")
        .with_columns(
            knot_wh=pl.col("knot_wh").clip(0.0, pl.col("energy_wh")).cum_max().over("line")
        )
        .unique(["line", "knot_ts"], keep="first", maintain_order=True)
        .group_by("line", maintain_order=True)
        .agg("knot_ts", "knot_wh")
    )
    return (
        df.drop("knot_ts", "knot_wh")
        .join(k, on="line", how="left")
        .with_columns(
            pl.col("knot_ts").fill_null(pl.lit([], dtype=pl.List(TS))),
            pl.col("knot_wh").fill_null(pl.lit([], dtype=pl.List(pl.Float64))),
        )
    )


def profile_points(sessions: pl.DataFrame) -> pl.DataFrame:
    """The register points of every session: (transaction, ts, value, context), sorted.

    Begin (0 Wh) at start, knots, a clock sample at every 15-minute boundary strictly inside the
    session (linear between the knots around it), End (energy) at stop."""
    base = sessions.select(*TXK, "start_ts", "stop_ts", "energy_wh", "knot_ts", "knot_wh")
    ends = pl.concat(
        [
            base.select(
                *TXK, ts="start_ts", value=pl.lit(0.0), context=pl.lit("Transaction.Begin")
            ),
            base.explode("knot_ts", "knot_wh")
            .drop_nulls("knot_ts")
            .select(*TXK, ts="knot_ts", value="knot_wh", context=pl.lit("Sample.Periodic")),
            base.select(*TXK, ts="stop_ts", value="energy_wh", context=pl.lit("Transaction.End")),
        ]
    ).sort([*TXK, "ts"])
    clock = (
        base.select(
            *TXK,
            ts=pl.datetime_ranges(
                pl.col("start_ts").dt.truncate(CLOCK).dt.offset_by(CLOCK),
                pl.col("stop_ts"),
                CLOCK,
                closed="left",
            ),
        )
        .explode("ts")
        .drop_nulls("ts")
        .join(ends.select(*TXK, "ts"), on=[*TXK, "ts"], how="anti")
        .sort([*TXK, "ts"])
    )
    if clock.height:
        knots = ends.select(*TXK, "ts", t0="ts", v0="value")
        after = ends.select(*TXK, "ts", t1="ts", v1="value")
        clock = (
            clock.join_asof(knots, on="ts", by=TXK, strategy="backward", check_sortedness=False)
            .join_asof(after, on="ts", by=TXK, strategy="forward", check_sortedness=False)
            .select(
                *TXK,
                "ts",
                value=pl.col("v0")
                + (pl.col("v1") - pl.col("v0"))
                * (pl.col("ts") - pl.col("t0")).dt.total_microseconds().cast(pl.Float64)
                / (pl.col("t1") - pl.col("t0")).dt.total_microseconds().cast(pl.Float64),
                context=pl.lit("Sample.Clock"),
            )
        )
    else:
        clock = ends.clear()
    keys = sessions.select(*TXK, "evse_id", "connector_id")
    return pl.concat([ends, clock]).sort([*TXK, "ts"]).join(keys, on=TXK, how="left")


def meter_frame(sessions: pl.DataFrame, received_at: datetime | None = None) -> pl.DataFrame:
    """meter_value rows (schema METER) of the sessions' register profiles."""
    received = received_at or datetime.now(UTC)
    pts = profile_points(sessions)
    return pts.select(
        "ts",
        "charge_point_id",
        "evse_id",
        "connector_id",
        "transaction_id",
        measurand=pl.lit(DEFAULT_MEASURAND),
        phase=pl.lit(""),
        location=pl.lit("Outlet"),
        context="context",
        value="value",
        unit=pl.lit("Wh"),
        raw_value=pl.col("value").cast(pl.String),
        raw_unit=pl.lit("Wh"),
        multiplier=pl.lit(0),
        received_at=pl.lit(received, dtype=TS),
    ).select([pl.col(c).cast(t) for c, t in METER.items()])


def status_frame(sessions: pl.DataFrame, received_at: datetime | None = None) -> pl.DataFrame:
    """status_event rows (schema STATUS) a charger would have sent: Charging at the start
    (SuspendedEV when nothing was delivered), SuspendedEV where the energy profile reaches its
    total before the stop, Available at the stop (left out where another session starts on the
    connector at that instant)."""
    received = received_at or datetime.now(UTC)
    done = (
        sessions.select(*TXK, "energy_wh", "knot_ts", "knot_wh")
        .explode("knot_ts", "knot_wh")
        .filter(pl.col("knot_ts").is_not_null() & (pl.col("knot_wh") >= pl.col("energy_wh")))
        .group_by(TXK)
        .agg(done_ts=pl.col("knot_ts").min())
    )
    s = sessions.join(done, on=TXK, how="left")
    # a zero-length session only leaves the connector Available
    starts = s.filter(pl.col("stop_ts") > pl.col("start_ts")).select(
        *KEY,
        ts="start_ts",
        status=pl.when(pl.col("energy_wh") > 0)
        .then(pl.lit("Charging"))
        .otherwise(pl.lit("SuspendedEV")),
    )
    rows = pl.concat(
        [
            starts,
            s.filter(pl.col("done_ts").is_not_null() & (pl.col("energy_wh") > 0)).select(
                *KEY, ts="done_ts", status=pl.lit("SuspendedEV")
            ),
            s.select(*KEY, ts="stop_ts", status=pl.lit("Available")).join(
                starts.select(*KEY, "ts"), on=[*KEY, "ts"], how="anti"
            ),
        ]
    )
    return (
        rows.unique([*KEY, "ts", "status"])
        .with_columns(
            error_code=pl.lit("NoError"),
            ocpp_version=pl.lit(OCPP_VERSION),
            received_at=pl.lit(received, dtype=TS),
        )
        .sort([*KEY, "ts"])
        .select([pl.col(c).cast(t) for c, t in STATUS.items()])
    )
