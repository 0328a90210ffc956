"""SQL results as polars frames with a contract schema: the one reader every asset, check and
report uses.

Why ADBC: measured on 1.7 million meter rows (bench/analytics.py), ADBC's PostgreSQL driver, which
hands Arrow batches over directly with proper types, against psycopg's `COPY ... TO STDOUT` parsed
by polars; ADBC is the faster and is what runs here. The result is cast to the caller's schema so
an empty result and a full one have the same columns and dtypes.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import polars as pl
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def adbc_uri(url: str) -> str:
    """A libpq key=value string for ADBC (it takes what libpq takes)."""
    return make_conninfo(**conninfo_to_dict(url))


def read_frame(conn, sql: str, schema: dict) -> pl.DataFrame:
    """Run `sql` over an ADBC connection and return a frame cast to the contract schema."""
    with conn.cursor() as cur:
        cur.execute(sql)
        table = cur.fetch_arrow_table()
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    if df.is_empty():
        return pl.DataFrame(schema=schema)
    return df.select([pl.col(c).cast(t) for c, t in schema.items()])


# idle ADBC connections of this process, per URL, with when each went idle (`connect`)
_idle: dict[tuple[int, str], list[tuple[object, float]]] = {}
FRESH_S = 5.0  # idle for less: reused without the `SELECT 1` check (a backfill reads every ms)
_idle_lock = threading.Lock()
OPENED = {"connections": 0}  # how many `connect` had to open (bench/backfill.py prints it)


@contextmanager
def connect(url: str) -> Iterator:
    """An ADBC connection for several `read_frame` calls, taken from this process's idle ones.

    Opening one costs about 50 ms (the driver loads the type catalogue), and a day of analytics
    asked for about 33: half of a backfilled day's time (bench/backfill.py). A connection goes
    back idle with its transaction ended, so it holds no lock and no snapshot; one that failed is
    closed; one idle for more than FRESH_S is checked with `SELECT 1` before reuse (the server may
    have restarted; a read that fails on a connection closed since is the caller's error).
    Keyed by process id too: a forked child never uses its parent's sockets."""
    key = (os.getpid(), url)
    conn = None
    while conn is None:
        with _idle_lock:
            conn, since = _idle[key].pop() if _idle.get(key) else (None, 0.0)
        if conn is None:
            # imported here: the driver's DB-API brings pyarrow.dataset and pandas (~0.5 s),
            # which the Dagster code location, the CLI and the collector load without
            import adbc_driver_postgresql.dbapi as adbc

            conn = adbc.connect(adbc_uri(url))
            OPENED["connections"] += 1
        elif time.monotonic() - since > FRESH_S and not _alive(conn):
            conn = None
    try:
        yield conn
        conn.rollback()
    except BaseException:
        _close(conn)
        raise
    with _idle_lock:
        _idle.setdefault(key, []).append((conn, time.monotonic()))


def _alive(conn) -> bool:
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()
        conn.rollback()
        return True
    except Exception:
        _close(conn)
        return False


def _close(conn) -> None:
    with suppress(Exception):  # already broken: nothing more to release
        conn.close()


@atexit.register
def _close_idle() -> None:
    """At exit, close this process's idle connections while the driver is still whole (left to
    the interpreter's teardown, each one's `__del__` prints a TypeError in every run's log). A
    forked child's copies of its parent's are left alone: closing them would end the parent's."""
    with _idle_lock:
        mine = [k for k in _idle if k[0] == os.getpid()]
        conns = [conn for k in mine for conn, _ in _idle.pop(k)]
    for conn in conns:
        _close(conn)


def read_table(url: str, sql: str, schema: dict) -> pl.DataFrame:
    """`read_frame` over a connection of its own."""
    with connect(url) as conn:
        return read_frame(conn, sql, schema)
