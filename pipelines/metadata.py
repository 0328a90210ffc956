"""Materialisation metadata the Dagster UI renders: the one way assets describe what they wrote.

- `table_metadata(df)`: Dagster's standard table keys, `dagster/row_count` (an int) and
  `dagster/column_schema` (a `TableSchema` from the polars schema), plus a `preview` table.
- `preview(df, n, cols)`: the first rows as a `MetadataValue.table` with readable values:
  timestamps in UTC to the minute or second (`2026-11-29 14:05Z`), floats rounded, None empty.
- `numbers(mapping, prefix)`: per-key figures as separate numeric entries (`hours_available:
  12.5`), never one JSON blob, because the UI plots only numeric entries over partitions.
- `number(v)` / `flag(v)`: one figure (rounded) / one boolean as a typed entry.

The keys are spelled out (`dagster/row_count`, `dagster/column_schema`) rather than built with
`TableMetadataSet`, which Dagster 1.13 keeps out of its public namespace.
"""

import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from numbers import Integral, Real

import dagster as dg
import polars as pl

ROW_COUNT = "dagster/row_count"
COLUMN_SCHEMA = "dagster/column_schema"
DIGITS = 2


# -- schema ------------------------------------------------------------------------------------


def type_name(dtype: pl.DataType) -> str:
    """A short, readable name of a polars type: `Int64`, `Float64`, `String`, `Boolean`, `Date`,
    `Datetime(UTC)`, `List(String)`, `Decimal(12,2)`."""
    if isinstance(dtype, pl.Datetime):
        return f"Datetime({dtype.time_zone})" if dtype.time_zone else "Datetime"
    if isinstance(dtype, pl.Decimal):
        return f"Decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.List | pl.Array):
        return f"List({type_name(dtype.inner)})"
    if isinstance(dtype, pl.Struct):
        return "Struct"
    return dtype.base_type().__name__


def table_schema(df: pl.DataFrame, descriptions: Mapping[str, str] | None = None) -> dg.TableSchema:
    """The frame's columns (names and polars types), with a description where one is given."""
    described = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=type_name(dtype), description=described.get(name))
            for name, dtype in df.schema.items()
        ]
    )


# -- readable values ---------------------------------------------------------------------------


def _utc_text(col: pl.Series) -> pl.Series:
    """Timestamps in UTC as `YYYY-MM-DD HH:MMZ`, or with seconds where any value has them;
    never microseconds. A naive timestamp is taken as UTC (the project stores UTC)."""
    utc = col.dt.convert_time_zone("UTC") if col.dtype.time_zone else col  # type: ignore[attr-defined]
    # 14:05:00.250 reads 14:05:00Z (not 14:05Z); 14:05:00 everywhere reads 14:05Z
    seconds = bool(((utc.dt.second() != 0) | (utc.dt.microsecond() != 0)).any())
    return utc.dt.strftime("%Y-%m-%d %H:%M:%SZ" if seconds else "%Y-%m-%d %H:%MZ")


def _cell(value, digits: int) -> str | int | float | bool:
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Decimal | Real):
        v = float(value)
        return "" if math.isnan(v) else (str(v) if math.isinf(v) else round(v, digits))
    if isinstance(value, datetime):  # only inside lists/structs: columns are formatted whole
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value - timedelta(microseconds=value.microseconds))
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, separators=(", ", ": "))


def records(df: pl.DataFrame, *, digits: int = DIGITS) -> list[dg.TableRecord]:
    """Every row of `df` as a `TableRecord` of readable values (see the module's docstring)."""
    readable = df.with_columns(
        _utc_text(df[name]).alias(name)
        for name, dtype in df.schema.items()
        if isinstance(dtype, pl.Datetime)
    )
    return [
        dg.TableRecord({k: _cell(v, digits) for k, v in row.items()})
        for row in readable.iter_rows(named=True)
    ]


def preview(
    df: pl.DataFrame, n: int = 5, cols: Iterable[str] | None = None, *, digits: int = DIGITS
) -> dg.TableMetadataValue:
    """The first `n` rows (of `cols`, default all) as a table the UI renders, with its schema
    (an empty frame gives the header alone)."""
    part = df.select(list(cols)) if cols is not None else df
    head = part.head(n)
    return dg.MetadataValue.table(records=records(head, digits=digits), schema=table_schema(head))


def table_metadata(
    df: pl.DataFrame,
    *,
    preview: list[str] | None = None,
    n: int = 5,
    descriptions: Mapping[str, str] | None = None,
    digits: int = DIGITS,
) -> dict[str, dg.MetadataValue]:
    """`dagster/row_count` (the frame's height: write the frame, then describe it),
    `dagster/column_schema` (optionally with column descriptions) and `preview`: the first `n`
    rows of the columns `preview` (default all of them)."""
    return {
        ROW_COUNT: dg.MetadataValue.int(df.height),
        COLUMN_SCHEMA: dg.MetadataValue.table_schema(table_schema(df, descriptions)),
        "preview": _preview(df, n, preview, digits=digits),
    }


_preview = preview  # table_metadata's keyword `preview` shadows the function


# -- figures -----------------------------------------------------------------------------------


def number(value, digits: int = DIGITS) -> dg.MetadataValue:
    """One figure as a numeric entry: an int stays an int, a float is rounded; None, NaN: null."""
    if value is None:
        return dg.MetadataValue.null()
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, Integral):
        return dg.MetadataValue.int(int(value))
    v = float(value)
    if math.isnan(v):
        return dg.MetadataValue.null()
    return dg.MetadataValue.float(round(v, digits))


def flag(value: bool | None) -> dg.MetadataValue:
    """A boolean entry (the UI shows true/false); None (not decided) stays null."""
    return dg.MetadataValue.null() if value is None else dg.MetadataValue.bool(bool(value))


def numbers(
    mapping: Mapping[str, object], prefix: str = "", *, digits: int = DIGITS
) -> dict[str, dg.MetadataValue]:
    """Per-key figures as one numeric entry each: `{"a": 1, "b": {"c": 2.345}}` with prefix
    `"x_"` gives `x_a: 1` and `x_b_c: 2.35`. Nested mappings are flattened with `_`."""
    out: dict[str, dg.MetadataValue] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= numbers(value, f"{name}_", digits=digits)
        else:
            out[name] = number(value, digits)
    return out
