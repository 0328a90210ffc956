"""Writing derived frames: a day partition is deleted and inserted again in one transaction, so a
re-run or a backfill never double counts and readers never see half a day."""

from __future__ import annotations

from datetime import date

import polars as pl

from chargeops.db import pooled


def replace_partition(url: str, day: date, frames: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Replace `day` in each `analytics.<table>` with its frame; return rows written per table."""
    written: dict[str, int] = {}
    with pooled(url) as conn:
        for table, df in frames.items():
            conn.execute(f"DELETE FROM analytics.{table} WHERE day = %s", (day,))
            if df.height:
                cols = ", ".join(df.columns)
                data = df.write_csv(
                    include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.6f%:z", null_value=""
                )
                with conn.cursor().copy(
                    f"COPY analytics.{table} ({cols}) FROM STDIN (FORMAT csv)"
                ) as copy:
                    copy.write(data)
            written[table] = df.height
    return written


def with_day(df: pl.DataFrame, day: date) -> pl.DataFrame:
    """Prepend the partition's `day` column when the logic did not set it."""
    if "day" in df.columns:
        return df
    return df.select(pl.lit(day, dtype=pl.Date).alias("day"), pl.all())
