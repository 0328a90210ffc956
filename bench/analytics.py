"""Analytics benchmark: raw data for 1,000 connectors generated straight into PostgreSQL (no
websockets), then one day partition of every asset, and a backfill; prints wall time, peak RSS,
raw rows per second, and the read floor (only reading the same raw rows into Arrow, with ADBC
and with psycopg COPY) with the ratio. Asserts nothing.

    .venv/bin/python bench/analytics.py [--connectors 1000] [--backfill-days 30]

Each connector charges a third of the day (two 4-hour sessions) with 4 sampled values every 60 s
while charging: 1.92 million meter rows a day, plus statuses, transactions and heartbeats.
Uses DATABASE_URL's server (scratch database `chargeops_bench_analytics`) or the embedded default.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/ (bench/dagster.py would shadow `dagster`)

from chargeops.db import create_database, resolve_database_url, upgrade  # noqa: E402
from chargeops.settings import Settings  # noqa: E402

GENERATE = """
WITH cp AS (SELECT n, 'BCP-' || lpad(n::text, 4, '0') AS id FROM generate_series(0, %(cps)s - 1) n)
INSERT INTO {table}
{select}
"""

DAY_SQL = [
    # transactions: two 4-hour sessions per connector, 07:00 and 15:00 UTC (staggered)
    """INSERT INTO transaction (charge_point_id, transaction_id, ocpp_version, evse_id,
           connector_id, id_token, start_ts, meter_start_wh, stop_ts, meter_stop_wh, stop_reason)
       SELECT 'BCP-' || lpad(n::text, 4, '0'), %(d)s::text || '-' || n || '-' || e || '-' || k,
              '2.0.1', e, 1, 'TOK' || n,
              %(d0)s::timestamptz + make_interval(hours => 7 + 8 * k, mins => (n * 7 + e) %% 60),
              0, %(d0)s::timestamptz + make_interval(hours => 11 + 8 * k, mins => (n * 7 + e) %% 60),
              240 * 7000 / 60.0, 'EVDisconnected'
       FROM generate_series(0, %(cps)s - 1) n, generate_series(1, 2) e, generate_series(0, 1) k""",
    # meter values: 4 measurands every 60 s while charging
    """INSERT INTO meter_value (ts, charge_point_id, evse_id, connector_id, transaction_id,
           measurand, phase, location, context, value, unit, raw_value, raw_unit, multiplier,
           received_at)
       SELECT t.start_ts + make_interval(mins => m), t.charge_point_id, t.evse_id, 1,
              t.transaction_id, x.measurand, '', 'Outlet', 'Sample.Periodic',
              CASE x.measurand WHEN 'Energy.Active.Import.Register' THEN m * 7000 / 60.0
                               WHEN 'Power.Active.Import' THEN 7000 WHEN 'SoC' THEN 20 + m / 4.0
                               ELSE 32 END,
              x.unit, '0', x.unit, 0, t.start_ts + make_interval(mins => m)
       FROM transaction t, generate_series(0, 239) m,
            (VALUES ('Energy.Active.Import.Register', 'Wh'), ('Power.Active.Import', 'W'),
                    ('SoC', 'Percent'), ('Current.Import', 'A')) x(measurand, unit)
       WHERE t.start_ts >= %(d0)s AND t.start_ts < %(d1)s AND t.charge_point_id LIKE 'BCP-%%'""",
    # statuses around each session
    """INSERT INTO status_event (ts, charge_point_id, evse_id, connector_id, status, error_code,
           ocpp_version, received_at)
       SELECT t.start_ts + s.off, t.charge_point_id, t.evse_id, 1, s.status, 'NoError', '2.0.1',
              t.start_ts + s.off
       FROM transaction t, (VALUES (interval '-2 minutes', 'Occupied'),
                                   (interval '250 minutes', 'Available')) s(off, status)
       WHERE t.start_ts >= %(d0)s AND t.start_ts < %(d1)s AND t.charge_point_id LIKE 'BCP-%%'""",
    # heartbeats every 5 minutes per charge point
    """INSERT INTO connection_event (ts, charge_point_id, event)
       SELECT %(d0)s::timestamptz + make_interval(mins => 5 * h), 'BCP-' || lpad(n::text, 4, '0'),
              'heartbeat'
       FROM generate_series(0, %(cps)s - 1) n, generate_series(0, 287) h""",
]


def scratch_database() -> str:
    server = resolve_database_url(Settings.from_env())
    url = create_database(server, "chargeops_bench_analytics", replace=True)
    upgrade(url)
    return url


def generate(url: str, days: list[date], n_cps: int) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO site (site_id, name, timezone) SELECT 'BS-' || s, 'bench ' || s, "
            "'Europe/London' FROM generate_series(0, 19) s ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO charge_point (charge_point_id, site_id, max_power_w, current_type, "
            "registered_at) SELECT 'BCP-' || lpad(n::text, 4, '0'), 'BS-' || (n %% 20), "
            "CASE WHEN n %% 10 = 0 THEN 150000 ELSE 7400 END, 'AC', '2020-01-01' "
            "FROM generate_series(0, %s - 1) n ON CONFLICT DO NOTHING",
            (n_cps,),
        )
        conn.execute(
            "INSERT INTO evse (charge_point_id, evse_id) SELECT charge_point_id, e FROM charge_point, "
            "generate_series(1, 2) e WHERE charge_point_id LIKE 'BCP-%' ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO connector (charge_point_id, evse_id, connector_id) SELECT charge_point_id, "
            "evse_id, 1 FROM evse WHERE charge_point_id LIKE 'BCP-%' ON CONFLICT DO NOTHING"
        )
        for day in days:
            d0 = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
            conn.execute(
                "SELECT chargeops_ensure_partitions(t, %s, %s) FROM unnest(ARRAY['meter_value', "
                "'status_event', 'connection_event']) t",
                (d0 - timedelta(days=1), d0 + timedelta(days=1)),
            )
            for sql in DAY_SQL:
                conn.execute(sql, {"d": day.isoformat(), "d0": d0, "d1": d0 + timedelta(days=1),
                                   "cps": n_cps})  # fmt: skip
        conn.execute("ANALYZE")
        return conn.execute("SELECT count(*) FROM meter_value").fetchone()[0]


def read_floor(url: str, day: date) -> dict:
    """Only reading the day's raw meter rows (the hot path) into Arrow, two ways."""
    import polars as pl

    from chargeops.frames import connect

    d0 = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    where = f"ts >= '{d0.isoformat()}' AND ts < '{(d0 + timedelta(days=1)).isoformat()}'"
    cols = "ts, charge_point_id, evse_id, connector_id, transaction_id, measurand, context, value"
    t = time.perf_counter()
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {cols} FROM meter_value WHERE {where}")
        n = cur.fetch_arrow_table().num_rows
    adbc_s = time.perf_counter() - t
    t = time.perf_counter()
    with psycopg.connect(url) as conn:
        buf = io.BytesIO()
        sql = (f"COPY (SELECT (extract(epoch FROM ts) * 1000000)::bigint AS ts, "
               f"{cols.split(', ', 1)[1]} FROM meter_value WHERE {where}) TO STDOUT (FORMAT csv)")  # fmt: skip
        with conn.cursor().copy(sql) as copy:
            for chunk in copy:
                buf.write(chunk)
        pl.read_csv(buf.getvalue(), has_header=False, schema={
            "ts": pl.Int64, "charge_point_id": pl.String, "evse_id": pl.Int32,
            "connector_id": pl.Int32, "transaction_id": pl.String, "measurand": pl.String,
            "context": pl.String, "value": pl.Float64})  # fmt: skip
    copy_s = time.perf_counter() - t
    return {"rows": n, "adbc_s": adbc_s, "copy_s": copy_s}


def materialise(url: str, days: list[date]) -> float:
    import dagster as dg

    from pipelines.defs.analytics.assets import ASSETS
    from pipelines.resources import DatabaseResource

    t = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        for day in days:
            result = dg.materialize(
                ASSETS, partition_key=day.isoformat(), instance=instance,
                resources={"database": DatabaseResource(url=url)},
            )  # fmt: skip
            assert result.success
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--connectors", type=int, default=1000)
    ap.add_argument("--backfill-days", type=int, default=30)
    args = ap.parse_args()
    n_cps = args.connectors // 2
    os.environ.setdefault("CHARGEOPS_PARTITIONS_START", "2024-01-01")
    url = scratch_database()
    first = date(2025, 3, 3)
    print(f"analytics benchmark: {args.connectors} connectors, {os.cpu_count()} cores")

    t = time.perf_counter()
    rows = generate(url, [first], n_cps)
    print(f"  generated {rows:,} meter rows for one day in {time.perf_counter() - t:.1f} s")
    floor = read_floor(url, first)
    print(f"  read floor, {floor['rows']:,} meter rows into Arrow: ADBC {floor['adbc_s']:.2f} s, "
          f"psycopg COPY + polars CSV {floor['copy_s']:.2f} s")  # fmt: skip
    one_day = materialise(url, [first])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    floor_s = min(floor["adbc_s"], floor["copy_s"])
    print(f"  one day, all assets: {one_day:.1f} s = {rows / one_day:,.0f} raw meter rows/s; "
          f"{one_day / floor_s:.1f}x the read floor; peak RSS {rss:,.0f} MB")  # fmt: skip

    if args.backfill_days > 1:
        days = [first + timedelta(days=i) for i in range(1, args.backfill_days)]
        t = time.perf_counter()
        rows = generate(url, days, n_cps)
        print(
            f"  generated {args.backfill_days} days ({rows:,} meter rows) in {time.perf_counter() - t:.0f} s"
        )
        backfill = materialise(url, [first, *days])
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  {args.backfill_days}-day backfill, all assets: {backfill:.0f} s "
              f"({backfill / args.backfill_days:.1f} s a day, {rows / backfill:,.0f} raw meter rows/s);"
              f" peak RSS {rss:,.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
