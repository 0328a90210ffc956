"""Storage modes side by side: the same generated days of N connectors (bench/analytics.py's
generator: each connector charges a third of the day with 4 sampled values a minute, plus
statuses, transactions, heartbeats; and one audit frame per MeterValues) written into a database
on TimescaleDB and one on native partitioning, on one server. Prints, in one run:

  - ingest: rows per second written into the hypertables and into the native partitions (the
    generator's INSERT ... SELECT, server-side: the storage's cost, not the collector's);
  - the on-disk size of `meter_value` and `ocpp_message` in each mode and, on TimescaleDB, after
    compressing every chunk (the columnstore of sql/017), with the ratio (goal >= 10x);
  - the analytics read of one day and of every day of meter rows into Arrow (ADBC, as the
    assets read them) from compressed chunks versus native partitions.

Asserts nothing. Needs a server with TimescaleDB preloaded (`make timescaledb`) for the first
mode; without it, prints why and measures native alone.

    .venv/bin/python bench/storage.py [--connectors 1000] [--days 7]

Uses DATABASE_URL's server (scratch databases `chargeops_bench_storage_*`) or the embedded
default (which has no TimescaleDB).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/ (bench/dagster.py would shadow `dagster`)

from bench.analytics import generate  # noqa: E402
from chargeops.db import (  # noqa: E402
    connect,
    create_database,
    drop_database,
    resolve_database_url,
    timescale_facts,
    timescaledb_unusable,
    upgrade,
)
from chargeops.frames import connect as arrow_connect  # noqa: E402
from chargeops.settings import Settings  # noqa: E402

FIRST = date(2025, 3, 3)

# one MeterValues frame per (charge point, EVSE, minute) of meter rows: the audit log's rows
AUDIT_SQL = """
INSERT INTO ocpp_message (ts, charge_point_id, direction, ocpp_version, message_type, unique_id,
                          action, payload)
SELECT ts, charge_point_id, 'in', '2.0.1', 2, md5(charge_point_id || evse_id || ts::text),
       'MeterValues',
       jsonb_build_object('evseId', evse_id, 'meterValue', jsonb_build_array(jsonb_build_object(
           'timestamp', ts, 'sampledValue', jsonb_agg(jsonb_build_object(
               'measurand', measurand, 'value', value, 'context', context)))))
FROM meter_value WHERE ts >= %(d0)s AND ts < %(d1)s
GROUP BY ts, charge_point_id, evse_id
"""

SIZES = ("meter_value", "ocpp_message")
SIZE_SQL = {
    "timescaledb": "SELECT hypertable_size(%s::regclass)",
    "native": """SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0)::bigint
                 FROM pg_inherits WHERE inhparent = %s::regclass""",
}


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _read(url: str, d0: datetime, d1: datetime) -> tuple[int, float]:
    cols = "ts, charge_point_id, evse_id, connector_id, transaction_id, measurand, context, value"
    t = time.perf_counter()
    with arrow_connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT {cols} FROM meter_value WHERE ts >= '{d0.isoformat()}' "
            f"AND ts < '{d1.isoformat()}'"
        )
        rows = cur.fetch_arrow_table().num_rows
    return rows, time.perf_counter() - t


def measure(server: str, mode: str, days: list[date], n_cps: int) -> dict:
    name = f"chargeops_bench_storage_{mode}"
    drop_database(server, name)
    url = create_database(server, name)
    try:
        upgrade(url, timescaledb="on" if mode == "timescaledb" else "off")
        t = time.perf_counter()
        meter_rows = generate(url, days, n_cps)
        with psycopg.connect(url, autocommit=True) as conn:
            for day in days:
                d0 = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                conn.execute(
                    "SELECT chargeops_ensure_partitions('ocpp_message', %s, %s)",
                    (d0, d0 + timedelta(days=1)),
                )
                conn.execute(AUDIT_SQL, {"d0": d0, "d1": d0 + timedelta(days=1)})
            ingest_s = time.perf_counter() - t
            (frames,) = conn.execute("SELECT count(*) FROM ocpp_message").fetchone()
            (other,) = conn.execute(
                "SELECT (SELECT count(*) FROM status_event) + (SELECT count(*) FROM "
                "connection_event) + (SELECT count(*) FROM transaction)"
            ).fetchone()
            conn.execute("VACUUM ANALYZE")
            size = {t: conn.execute(SIZE_SQL[mode], (t,)).fetchone()[0] for t in SIZES}
            compressed = {}
            compress_s = 0.0
            if mode == "timescaledb":
                t = time.perf_counter()
                for table in SIZES:
                    conn.execute(f"SELECT compress_chunk(c) FROM show_chunks('{table}') c")
                compress_s = time.perf_counter() - t
                conn.execute("VACUUM ANALYZE")
                compressed = {t: conn.execute(SIZE_SQL[mode], (t,)).fetchone()[0] for t in SIZES}
        d0 = datetime.combine(days[0], datetime.min.time(), tzinfo=UTC)
        _read(url, d0, d0 + timedelta(days=1))  # warm
        one = _read(url, d0, d0 + timedelta(days=1))
        every = _read(url, d0, d0 + timedelta(days=len(days)))
        return {
            "rows": meter_rows + frames + other,
            "meter_rows": meter_rows,
            "frames": frames,
            "ingest_s": ingest_s,
            "size": size,
            "compressed": compressed,
            "compress_s": compress_s,
            "read_day": one,
            "read_all": every,
        }
    finally:
        drop_database(server, name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connectors", type=int, default=1000)
    ap.add_argument("--days", type=int, default=7, help="days generated (a month: 30)")
    args = ap.parse_args()
    server = resolve_database_url(Settings.from_env())
    with connect(server) as conn:
        why = timescaledb_unusable(timescale_facts(conn))
    modes = ["native"] if why else ["timescaledb", "native"]
    if why:
        print(f"TimescaleDB not measured: {why}")
    days = [FIRST + timedelta(days=i) for i in range(args.days)]
    print(f"storage benchmark: {args.connectors} connectors, {args.days} days")
    found = {}
    for mode in modes:
        found[mode] = m = measure(server, mode, days, args.connectors // 2)
        print(
            f"  {mode}: wrote {m['rows']:,} rows ({m['meter_rows']:,} meter values, "
            f"{m['frames']:,} audit frames) in {m['ingest_s']:.1f} s = "
            f"{m['rows'] / m['ingest_s']:,.0f} rows/s"
        )
        for table in SIZES:
            line = f"    {table}: {_mb(m['size'][table])}"
            if m["compressed"]:
                ratio = m["size"][table] / max(1, m["compressed"][table])
                line += f", compressed {_mb(m['compressed'][table])} = {ratio:.1f}x smaller"
            print(line)
        if m["compressed"]:
            print(f"    compressing every chunk took {m['compress_s']:.1f} s")
        for label, (rows, s) in (("one day", m["read_day"]), ("every day", m["read_all"])):
            print(f"    read {label} of meter rows into Arrow: {rows:,} rows in {s:.2f} s")
    if len(found) == 2:
        ts, nat = found["timescaledb"], found["native"]
        print(
            f"ratios (TimescaleDB / native): ingest rows/s "
            f"{(ts['rows'] / ts['ingest_s']) / (nat['rows'] / nat['ingest_s']):.2f}x; "
            + "; ".join(
                f"{t} on disk {nat['size'][t] / max(1, ts['compressed'][t]):.1f}x smaller "
                "compressed (goal >= 10x)"
                for t in SIZES
            )
            + f"; read one day {ts['read_day'][1] / nat['read_day'][1]:.2f}x, every day "
            f"{ts['read_all'][1] / nat['read_all'][1]:.2f}x the time (from compressed chunks)"
        )
    print("continuous aggregates: not built yet (see the README's Storage section)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
