"""Writing imported sessions: sites, charge points, EVSEs, connectors, transactions, their
register samples and statuses, and the `import_batch` row, all in the caller's transaction.

Idempotent by natural keys: a transaction's id is derived from the source's own session id, rows
go in with ON CONFLICT DO NOTHING, and meter values and statuses are written only for the
transactions this run inserted, so re-importing a file changes nothing. Sites and charge points
that already exist are left as they are (an operator may have edited them); new ones are written
with the collector's own registration SQL (`ingest.registry`).

A streamed file (`common.stream`) is written batch by batch, still in the one transaction: each
batch's sessions, then their register samples and statuses, before the next batch is parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl
import psycopg

from ingest.importers.common import (
    CONTENT,
    OCPP_VERSION,
    TXK,
    Parsed,
    RowError,
    meter_frame,
    same_content,
    status_frame,
    version_text,
)
from ingest.registry import CHARGE_POINT_SQL, SITE_SQL
from ingest.store import KINDS, TX_COLUMNS

COPY_CHUNK = 50_000
TX_IMPORT_COLUMNS = (*TX_COLUMNS, "source", "import_batch_id")

Progress = Callable[[int, int], None]  # (rows just written, rows to write in all so far known)


@dataclass
class LoadResult:
    batch_id: int
    new_batch: bool
    sessions_new: int
    sessions_present: int
    energy_wh_new: float
    sites_new: int
    charge_points_new: int
    meter_rows: int
    status_rows: int
    # new sites whose grid region the import inferred: (site, region, what it was read from)
    regions: list[tuple[str, str, str]] = field(default_factory=list)
    # rows the database already holds otherwise: refused, with both versions
    errors: list[RowError] = field(default_factory=list)
    sessions_same_key: int = 0  # already imported under another id (same connector and start)
    sessions_replaced: int = 0  # already imported with other content, replaced (--replace)
    fees_new: dict[str, int] = field(default_factory=dict)  # currency -> minor units imported
    # the export's own CO2 saving estimate over the imported sessions that state one, and their Wh
    stated_ghg_kg: float = 0.0
    stated_ghg_energy_wh: float = 0.0


def ensure_partitions(conn: psycopg.Connection, sessions: pl.DataFrame) -> None:
    """Monthly partitions (native storage) for the months the sessions touch, committed first
    as the collector's writer does; a no-op under TimescaleDB."""
    if sessions.is_empty():
        return
    lo, hi = sessions["start_ts"].min(), sessions["stop_ts"].max()
    for table in ("meter_value", "status_event"):
        conn.execute("SELECT chargeops_ensure_partitions(%s, %s, %s)", (table, lo, hi))
    conn.commit()


def _copy(
    conn: psycopg.Connection,
    table: str,
    df: pl.DataFrame,
    returning: str = "",
    progress: Progress | None = None,
) -> list[tuple]:
    """COPY `df` into a staging table and INSERT ... ON CONFLICT DO NOTHING into `table`, chunk
    by chunk (so the progress bar follows the inserts); the RETURNING rows, or [(rows added,)]."""
    stage = f"_import_{table}"
    cols = ", ".join(df.columns)
    conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    out: list[tuple] = []
    added = 0
    with conn.cursor() as cur:
        for chunk in df.iter_slices(COPY_CHUNK):
            cur.execute(f"TRUNCATE {stage}")
            data = chunk.write_csv(
                include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.6f%:z", null_value=""
            )
            with cur.copy(f"COPY {stage} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(data)
            cur.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT DO NOTHING"
                + (f" RETURNING {returning}" if returning else "")
            )
            if returning:
                out += cur.fetchall()
            added += cur.rowcount
            if progress:
                progress(chunk.height, 0)
    return out if returning else [(added,)]


def _batch(
    conn: psycopg.Connection, fmt: str, file_name: str, sha256: str, site: str, parsed: Parsed
) -> tuple[int, bool]:
    row = conn.execute(
        """INSERT INTO import_batch (format, file_name, file_sha256, site_override, rows_read,
               rows_imported, rows_skipped, energy_wh)
           VALUES (%s, %s, %s, %s, %s, 0, %s, 0)
           ON CONFLICT (file_sha256, format, site_override) DO NOTHING
           RETURNING import_batch_id""",
        (fmt, file_name, sha256, site, parsed.rows_read, len(parsed.errors) + parsed.duplicates),
    ).fetchone()
    if row is not None:
        return row[0], True
    found = conn.execute(
        """SELECT import_batch_id FROM import_batch
           WHERE file_sha256 = %s AND format = %s AND site_override = %s""",
        (sha256, fmt, site),
    ).fetchone()
    assert found is not None
    return found[0], False


def _existing(conn: psycopg.Connection, table: str, key: str, ids: list[str]) -> set[str]:
    rows = conn.execute(f"SELECT {key} FROM {table} WHERE {key} = ANY(%s)", (ids,)).fetchall()
    return {r[0] for r in rows}


def _sites(conn: psycopg.Connection, sessions: pl.DataFrame, regions: list) -> int:
    """New sites, with the grid region their rows imply (appended to `regions`, to be said)."""
    sites = sessions.sort("line").unique("site_id", keep="first", maintain_order=True)
    have = _existing(conn, "site", "site_id", sites["site_id"].to_list())
    new = sites.filter(~pl.col("site_id").is_in(list(have)))
    for r in new.iter_rows(named=True):
        conn.execute(
            SITE_SQL,
            (
                r["site_id"],
                r["site_name"],
                None,
                r["site_timezone"],
                r["site_country"],
                r["site_grid_region"],
                None,
            ),
        )
        if r["site_grid_region"] is not None:
            regions.append((r["site_id"], r["site_grid_region"], r["site_region_from"]))
    return new.height


def _charge_points(conn: psycopg.Connection, sessions: pl.DataFrame, fmt: str, batch: int) -> int:
    cps = (
        sessions.sort("line")
        .group_by("charge_point_id", maintain_order=True)
        .agg(pl.all().first(), first_start=pl.col("start_ts").min())
    )
    have = _existing(conn, "charge_point", "charge_point_id", cps["charge_point_id"].to_list())
    new = cps.filter(~pl.col("charge_point_id").is_in(list(have)))
    for r in new.iter_rows(named=True):
        conn.execute(
            CHARGE_POINT_SQL,
            (r["charge_point_id"], r["site_id"], None, r["vendor"], r["model"],
             r["serial_number"], None, None, r["current_type"], None, r["first_start"]),
        )  # fmt: skip
    if new.height:
        conn.execute(
            "UPDATE charge_point SET source = %s, import_batch_id = %s "
            "WHERE charge_point_id = ANY(%s)",
            (fmt, batch, new["charge_point_id"].to_list()),
        )
    old = cps.filter(pl.col("charge_point_id").is_in(list(have)))
    with conn.cursor() as cur:  # history before a known charge point's registration extends it
        cur.executemany(
            "UPDATE charge_point SET registered_at = least(registered_at, %s) "
            "WHERE charge_point_id = %s",
            [(r["first_start"], r["charge_point_id"]) for r in old.iter_rows(named=True)],
        )
    return new.height


def _connectors(conn: psycopg.Connection, sessions: pl.DataFrame) -> None:
    ports = sessions.sort("line").unique(
        ["charge_point_id", "evse_id", "connector_id"], keep="first", maintain_order=True
    )
    with conn.cursor() as cur:
        cur.executemany(
            KINDS["evse"].sql, ports.select("charge_point_id", "evse_id").unique().rows()
        )
        cur.executemany(
            KINDS["connector"].sql,
            ports.select("charge_point_id", "evse_id", "connector_id").rows(),
        )
        cur.executemany(
            """UPDATE connector SET connector_type = %s
               WHERE charge_point_id = %s AND evse_id = %s AND connector_id = %s
                 AND connector_type IS NULL""",
            ports.filter(pl.col("connector_type").is_not_null())
            .select("connector_type", "charge_point_id", "evse_id", "connector_id")
            .rows(),
        )


def transactions_frame(sessions: pl.DataFrame, fmt: str, batch: int) -> pl.DataFrame:
    """transaction rows: meter_start 0 Wh, meter_stop the session's energy."""
    return sessions.select(
        "charge_point_id",
        "transaction_id",
        ocpp_version=pl.lit(OCPP_VERSION),
        evse_id="evse_id",
        connector_id="connector_id",
        id_token="id_token",
        id_token_type=pl.lit(None, dtype=pl.String),
        start_ts="start_ts",
        meter_start_wh=pl.lit(0.0),
        stop_ts="stop_ts",
        meter_stop_wh="energy_wh",
        stop_reason="stop_reason",
        reservation_id=pl.lit(None, dtype=pl.Int32),
        remote_start_id=pl.lit(None, dtype=pl.Int32),
        charging_state=pl.lit(None, dtype=pl.String),
        last_seq_no=pl.lit(None, dtype=pl.Int32),
        offline_seen=pl.lit(False),
        source=pl.lit(fmt),
        import_batch_id=pl.lit(batch, dtype=pl.Int64),
    ).select(TX_IMPORT_COLUMNS)


def load(
    conn: psycopg.Connection,
    parsed: Parsed,
    *,
    fmt: str,
    file_name: str,
    sha256: str,
    site: str | None = None,
    progress: Progress | None = None,
    replace: bool = False,
) -> LoadResult:
    """Write the valid sessions of `parsed` in the caller's transaction (see the module
    docstring), batch by batch when the file was streamed (`Parsed.batches`), so only one
    batch's register samples are in memory at a time.

    `site`: every session goes to this site; it is created (from the file's first site's name,
    zone and country) when it does not exist, and left as it is when it does."""
    batch, new_batch = _batch(conn, fmt, file_name, sha256, site or "", parsed)
    out = LoadResult(batch, new_batch, 0, 0, 0.0, 0, 0, 0, 0)
    if progress:
        progress(0, parsed.sessions.height)
    for sessions in parsed.frames():
        if site:
            sessions = sessions.with_columns(site_id=pl.lit(site))
        _load_batch(conn, sessions, fmt, batch, out, progress, replace)
    if new_batch and parsed.flags:
        _flags(conn, parsed, batch)
    return out


def _flags(conn: psycopg.Connection, parsed: Parsed, batch: int) -> None:
    """The rows kept with a note, in `import_flag` (after their transactions)."""
    flags = pl.DataFrame(
        [(f.line, f.reason, f.detail) for f in parsed.flags],
        schema={"line": pl.Int64, "reason": pl.String, "detail": pl.String},
        orient="row",
    ).join(parsed.sessions.select("line", *TXK, "energy_wh"), on="line")
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO import_flag (import_batch_id, line, charge_point_id, transaction_id,
                   reason, detail, energy_wh) VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            [
                (batch, r["line"], str(r["charge_point_id"]), r["transaction_id"], r["reason"],
                 r["detail"], r["energy_wh"])
                for r in flags.iter_rows(named=True)
            ],
        )  # fmt: skip


def _against_database(
    conn: psycopg.Connection, sessions: pl.DataFrame, out: LoadResult, replace: bool = False
) -> pl.DataFrame:
    """The sessions to write: a session the database holds under the same id with other content
    (a corrected re-export) is refused with both versions, never silently kept stale; one it
    holds under another id at the same charge point, connector and start (an export without
    session ids) is already imported. Both are counted in `out`."""
    if sessions.is_empty():
        return sessions
    stored = pl.DataFrame(
        conn.execute(
            """SELECT t.charge_point_id, t.transaction_id, t.evse_id, t.connector_id, t.start_ts,
                      t.stop_ts, t.meter_stop_wh - coalesce(t.meter_start_wh, 0), p.amount,
                      p.currency
               FROM transaction t LEFT JOIN import_payment p USING (charge_point_id, transaction_id)
               WHERE t.charge_point_id = ANY(%s)
                 AND (t.transaction_id = ANY(%s) OR t.start_ts = ANY(%s))""",
            (
                sessions["charge_point_id"].unique().to_list(),
                sessions["transaction_id"].to_list(),
                sessions["start_ts"].unique().to_list(),
            ),
        ).fetchall(),
        schema={c: sessions.schema[c] for c in [*TXK, *CONTENT]},
        orient="row",
    )
    if stored.is_empty():
        return sessions
    same_id = sessions.join(stored, on=TXK, how="inner", suffix="_db")
    conflicts = same_id.filter(~same_content("_db"))
    if replace:
        _remove(conn, conflicts)
        out.sessions_replaced += conflicts.height
        conflicts = conflicts.clear()
    out.errors += [
        RowError(
            r["line"],
            "already imported with other content",
            f"{r['transaction_id']}: stored {version_text(r, '_db')}, this line {version_text(r)}",
        )
        for r in conflicts.iter_rows(named=True)
    ]
    natural = ["charge_point_id", "evse_id", "connector_id", "start_ts"]
    elsewhere = sessions.join(stored, on=TXK, how="anti").join(
        stored.select(*natural), on=natural, how="semi"
    )
    out.sessions_same_key += elsewhere.height
    drop = pl.concat([conflicts.select("line"), elsewhere.select("line")])
    return sessions.join(drop, on="line", how="anti")


def _remove(conn: psycopg.Connection, stored: pl.DataFrame) -> None:
    """The stored versions of these imported sessions (`--replace`): their transaction, register
    samples and the statuses the import wrote on their connector over their span."""
    with conn.cursor() as cur:
        for r in stored.iter_rows(named=True):
            key = (str(r["charge_point_id"]), r["transaction_id"])
            cur.execute(
                "DELETE FROM meter_value WHERE charge_point_id = %s AND transaction_id = %s", key
            )
            cur.execute(
                """DELETE FROM status_event WHERE charge_point_id = %s AND evse_id = %s
                       AND connector_id = %s AND ts >= %s AND ts <= %s AND ocpp_version = %s""",
                (key[0], r["evse_id_db"], r["connector_id_db"], r["start_ts_db"], r["stop_ts_db"],
                 OCPP_VERSION),
            )  # fmt: skip
            for table in ("import_payment", "transaction"):
                cur.execute(
                    f"DELETE FROM {table} WHERE charge_point_id = %s AND transaction_id = %s", key
                )


def _payments(conn: psycopg.Connection, new: pl.DataFrame, batch: int, out: LoadResult) -> None:
    """The fees of the sessions this run inserted, as imported payments (`import_payment`)."""
    paid = new.filter(pl.col("fee_amount").is_not_null())
    if paid.is_empty():
        return
    rows = paid.select(
        "charge_point_id",
        "transaction_id",
        amount="fee_amount",
        currency="currency",
        paid_at="stop_ts",
        import_batch_id=pl.lit(batch, dtype=pl.Int64),
        line="line",
    )
    _copy(conn, "import_payment", rows)
    for currency, amount in rows.group_by("currency").agg(pl.col("amount").sum()).iter_rows():
        out.fees_new[currency] = out.fees_new.get(currency, 0) + int(amount)


def _load_batch(
    conn: psycopg.Connection,
    sessions: pl.DataFrame,
    fmt: str,
    batch: int,
    out: LoadResult,
    progress: Progress | None,
    replace: bool = False,
) -> None:
    """One batch of sessions with their sites, charge points, connectors, register samples and
    statuses; the counts are added to `out`."""
    sessions = _against_database(conn, sessions, out, replace)
    out.sites_new += _sites(conn, sessions, out.regions)
    out.charge_points_new += _charge_points(conn, sessions, fmt, batch)
    _connectors(conn, sessions)
    inserted = _copy(
        conn,
        "transaction",
        transactions_frame(sessions, fmt, batch),
        returning="charge_point_id, transaction_id",
        progress=progress,
    )
    keys = pl.DataFrame(
        inserted, schema={"charge_point_id": pl.String, "transaction_id": pl.String}, orient="row"
    )
    new = sessions.join(keys, on=TXK, how="semi")
    now = datetime.now(UTC)
    meter = meter_frame(new, now)
    status = status_frame(new, now)
    n_meter = _copy(conn, "meter_value", meter)[0][0] if meter.height else 0
    n_status = _copy(conn, "status_event", status)[0][0] if status.height else 0
    _payments(conn, new, batch, out)
    energy_new = float(new["energy_wh"].sum() or 0.0)
    stated = new.filter(pl.col("stated_ghg_kg").is_not_null())
    if new.height:
        conn.execute(
            """UPDATE import_batch SET rows_imported = rows_imported + %s,
                   energy_wh = energy_wh + %s,
                   first_start_ts = least(first_start_ts, %s),
                   last_stop_ts = greatest(last_stop_ts, %s),
                   stated_ghg_kg = CASE WHEN %s THEN coalesce(stated_ghg_kg, 0) + %s
                                   ELSE stated_ghg_kg END,
                   stated_ghg_energy_wh = CASE WHEN %s THEN coalesce(stated_ghg_energy_wh, 0) + %s
                                          ELSE stated_ghg_energy_wh END
               WHERE import_batch_id = %s""",
            (new.height, energy_new, new["start_ts"].min(), new["stop_ts"].max(),
             stated.height > 0, float(stated["stated_ghg_kg"].sum() or 0.0),
             stated.height > 0, float(stated["energy_wh"].sum() or 0.0), batch),
        )  # fmt: skip
    out.sessions_new += new.height
    out.stated_ghg_kg += float(stated["stated_ghg_kg"].sum() or 0.0)
    out.stated_ghg_energy_wh += float(stated["energy_wh"].sum() or 0.0)
    out.sessions_present += sessions.height - new.height
    out.energy_wh_new += energy_new
    out.meter_rows += n_meter
    out.status_rows += n_status
