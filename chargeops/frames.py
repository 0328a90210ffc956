"""SQL results as polars frames with a contract schema: the one reader every asset, check and
report uses.

Why ADBC: measured on 1.7 million meter rows (bench/analytics.py), ADBC's PostgreSQL driver, which
hands Arrow batches over directly with proper types, against psycopg's `COPY ... TO STDOUT` parsed
by polars; ADBC is the faster and is what runs here. The result is cast to the caller's schema so
an empty result and a full one have the same columns and dtypes.
"""

from __future__ import annotations

import adbc_driver_postgresql.dbapi as adbc
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


def connect(url: str):
    """An ADBC connection for several `read_frame` calls (one connection, not one per read)."""
    return adbc.connect(adbc_uri(url))


def read_table(url: str, sql: str, schema: dict) -> pl.DataFrame:
    """`read_frame` over a connection of its own."""
    with connect(url) as conn:
        return read_frame(conn, sql, schema)
