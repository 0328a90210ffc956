"""`chargeops import FORMAT FILE`: charging history exported by other systems becomes sites,
charge points, connectors and transactions with register samples and statuses, so every asset
treats it like sessions collected over OCPP.

Formats: `chargepoint` (ChargePoint-style session CSV, e.g. the City of Palo Alto's open data),
`acn` (Caltech ACN-Data session JSON), `ocpi` (OCPI 2.2.1 CDRs, JSON lines), `csv` (any CSV
export, with `--mapping MAP.yaml` saying what its columns are: `mapped_csv`). A file is imported
in one database transaction: with `--strict` a single malformed or flagged row means nothing is
imported; otherwise malformed rows are reported with their line numbers and the others are
imported. A session overlapping another on its connector is kept and flagged
(`common._place_overlaps` says where it goes). A row
longer than 7 days (CHARGEOPS_IMPORT_MAX_SESSION_DAYS) or with energy that is not finite or more
than any connector delivers in its span is malformed. ChargePoint, mapped CSV and OCPI files are read and written in batches
of CHARGEOPS_IMPORT_BATCH_ROWS rows (default 10,000), so memory does not grow with the file.
Re-importing a file adds nothing. `--dry-run` does the same work and rolls it back.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from chargeops.periods import PARTITIONS_START_ENV, partitions_start, record_data_start
from chargeops.settings import ConfigError, Settings
from ingest.importers.common import Parsed

FORMATS = ("chargepoint", "acn", "ocpi", "csv")
SHOW_ERRORS = 20
# pipelines.partitions reads the same variable; ingest may not import pipelines (DESIGN.md)


def _chargepoint_batches():
    from ingest.importers.chargepoint_csv import parse_batches

    return parse_batches


def _ocpi_batches():
    from ingest.importers.ocpi import parse_batches

    return parse_batches


STREAMED = {"chargepoint": _chargepoint_batches, "ocpi": _ocpi_batches}


def parser_for(fmt: str) -> Callable[[Path], Parsed]:
    if fmt == "chargepoint":
        from ingest.importers.chargepoint_csv import parse
    elif fmt == "acn":
        from ingest.importers.acn import parse
    elif fmt == "ocpi":
        from ingest.importers.ocpi import parse
    elif fmt == "csv":
        raise ConfigError("import csv needs --mapping MAP.yaml (the file's columns, see README)")
    else:
        raise ConfigError(f"unknown import format {fmt!r} (use one of {', '.join(FORMATS)})")
    return parse


def parse_file(
    fmt: str, path: Path, *, streamed: bool = False, mapping: Path | None = None
) -> Parsed:
    """Parse without touching the database; a ConfigError for a missing or unreadable file, or
    a mapping (`csv` only, required there) that does not fit it.

    `streamed`: a format that can be read in batches (`chargepoint`, `csv`, `ocpi`) returns
    `Parsed.batches` instead of all sessions in memory (see `common.stream`); ACN-Data (one JSON
    document) is read whole."""
    if mapping is not None and fmt != "csv":
        raise ConfigError(f"--mapping is for import csv, not {fmt}")
    if fmt == "csv" and mapping is not None:
        from ingest.importers import mapped_csv
        from ingest.importers.common import stream

        m = mapped_csv.load_mapping(mapping)
        if not path.is_file():
            raise ConfigError(f"no such file: {path}")
        if streamed:
            return stream(functools.partial(mapped_csv.parse_batches, mapping=m), path)
        return mapped_csv.parse(path, m)
    parse = parser_for(fmt)
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    if streamed and fmt in STREAMED:
        from ingest.importers.common import stream

        return stream(STREAMED[fmt](), path)
    return parse(path)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cli(args: argparse.Namespace, settings: Settings) -> int:
    """Run `chargeops import`; 0 when every row was imported (flagged rows included), 1 when
    rows were malformed (then nothing was imported under --strict, the rest otherwise) or when
    --strict refused flagged rows."""
    import psycopg
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from chargeops.db import connect, resolve_database_url, upgrade
    from ingest.importers.load import ensure_partitions, load

    path = Path(args.file)
    out, err = Console(), Console(stderr=True)
    with err.status(f"reading {path.name}"):
        mapping = getattr(args, "mapping", None)
        parsed = parse_file(
            args.format, path, streamed=True, mapping=Path(mapping) if mapping else None
        )
        sha = sha256_of(path)
    refused = bool(args.strict and (parsed.errors or parsed.flags))
    result = None
    if not refused:
        url = resolve_database_url(settings)
        upgrade(url, timescaledb=settings.timescaledb)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=err, transient=True) as bar, connect(url) as conn:
            task = bar.add_task("writing rows", total=parsed.sessions.height)

            def progress(advance: int, total: int) -> None:
                bar.update(task, advance=advance, total=total or None)

            if not args.dry_run:
                ensure_partitions(conn, parsed.sessions)
            with conn.transaction():
                result = load(
                    conn, parsed, fmt=args.format, file_name=path.name, sha256=sha,
                    site=args.site or None, progress=progress,
                    replace=args.replace,
                )  # fmt: skip
                if args.strict and result.errors:
                    refused = True  # rows the database holds otherwise: nothing is imported
                if args.dry_run or refused:
                    raise psycopg.Rollback()
        parsed.errors = sorted([*parsed.errors, *result.errors], key=lambda e: e.line)
        if refused:
            result = None
        elif not args.dry_run and parsed.sessions.height:
            # the data folder now holds data from this day on: the partitions start there
            record_data_start(settings.data_dir, parsed.sessions["start_ts"].min().date())
    _summary(out, path, args, parsed, result, refused)
    return 1 if parsed.errors or refused else 0


def _money(amount: int, currency: str) -> str:
    from chargeops.money import exponent_of, money_text

    return money_text(int(amount), exponent_of(currency), currency)


def _summary(out, path: Path, args: argparse.Namespace, parsed: Parsed, result, refused) -> None:
    import polars as pl
    from rich.table import Table

    s = parsed.sessions
    table = Table(title=f"import {args.format} {path.name}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    table.add_row("rows read", f"{parsed.rows_read:,}")
    table.add_row("valid sessions", f"{s.height:,}")
    if result is not None:
        table.add_row("imported", f"{result.sessions_new:,}")
        table.add_row("already imported", f"{result.sessions_present:,}")
        if result.sessions_replaced:
            table.add_row("replaced (--replace)", f"{result.sessions_replaced:,}")
        if result.sessions_same_key:
            table.add_row(
                "already imported, other id",
                f"{result.sessions_same_key:,}",
            )
    else:
        table.add_row("imported", "0")
    for reason, n in sorted(Counter(e.reason for e in parsed.errors).items()):
        table.add_row(f"skipped: {reason}", f"{n:,}")
    if parsed.duplicates:
        table.add_row("skipped: duplicate in file", f"{parsed.duplicates:,}")
    energy = dict(zip(s["line"].to_list(), s["energy_wh"].to_list(), strict=True))
    for reason in sorted({f.reason for f in parsed.flags}):
        lines = [f.line for f in parsed.flags if f.reason == reason]
        kwh = sum(energy.get(line, 0.0) for line in lines) / 1000
        table.add_row(f"kept, flagged: {reason}", f"{len(lines):,} ({kwh:,.3f} kWh)")
    table.add_row("kWh in valid sessions", f"{float(s['energy_wh'].sum() or 0) / 1000:,.3f}")
    if result is not None:
        table.add_row("kWh imported", f"{result.energy_wh_new / 1000:,.3f}")
    fees = (
        s.filter(pl.col("fee_amount").is_not_null())
        .group_by("currency")
        .agg(pl.len(), pl.col("fee_amount").sum())
    )
    for currency, n, amount in fees.sort("currency").iter_rows():
        table.add_row(f"fees in valid sessions ({currency})", f"{_money(amount, currency)} ({n:,})")
        if result is not None:
            new = result.fees_new.get(currency, 0)
            table.add_row(f"fees imported ({currency})", _money(new, currency))
    if result is not None and result.stated_ghg_energy_wh > 0:
        kg, kwh = result.stated_ghg_kg, result.stated_ghg_energy_wh / 1000
        table.add_row("CO2 saved, as the export says", f"{kg:,.3f} kg ({kg / kwh:.3f} kg/kWh)")
    if s.height:
        table.add_row("period (UTC)", f"{s['start_ts'].min():%Y-%m-%d %H:%M} .. "
                      f"{s['stop_ts'].max():%Y-%m-%d %H:%M}")  # fmt: skip
    if result is not None:
        table.add_row(
            "new sites / charge points", f"{result.sites_new} / {result.charge_points_new}"
        )
        table.add_row("meter values / statuses", f"{result.meter_rows:,} / {result.status_rows:,}")
        table.add_row("batch", f"{result.batch_id}" + ("" if result.new_batch else " (existing)"))
    out.print(table)
    for e in parsed.errors[:SHOW_ERRORS]:
        out.print(f"  {e}", markup=False, highlight=False)
    if len(parsed.errors) > SHOW_ERRORS:
        out.print(f"  ... and {len(parsed.errors) - SHOW_ERRORS:,} more malformed rows")
    for site, region, source in result.regions if result is not None else []:
        out.print(
            f"  site {site}: grid region {region}, guessed from {source}; correct it in "
            "reports/emissions_factors/site_overrides.csv if it is wrong",
            markup=False,
            highlight=False,
        )
    for f in parsed.flags[:SHOW_ERRORS]:
        out.print(f"  kept: {f}", markup=False, highlight=False)
    if len(parsed.flags) > SHOW_ERRORS:
        out.print(f"  ... and {len(parsed.flags) - SHOW_ERRORS:,} more flagged rows")
    if result is not None and result.stated_ghg_energy_wh > 0:
        out.print(
            "  the export's CO2 estimate is kept, not used: chargeops computes savings from the "
            "site's grid region and its baseline vehicle; the compliance report compares the two"
        )
    if refused:
        out.print("nothing imported: --strict and the file has malformed or flagged rows")
    elif args.dry_run:
        out.print("dry run: nothing written")
    elif result is not None and result.sessions_new:
        first, last = s["start_ts"].min().date(), s["stop_ts"].max().date()
        out.print(
            f"to see them in the analytics and reports: chargeops backfill --from {first} "
            f"--to {last} --reports"
        )
        if first < partitions_start():  # only where the variable is set: it always wins
            out.print(
                f"these days are before the first Dagster partition ({PARTITIONS_START_ENV}="
                f"{partitions_start()}): open the UI with {PARTITIONS_START_ENV}={first} make ui"
            )
