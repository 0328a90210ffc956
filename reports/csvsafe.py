"""CSV cells a spreadsheet cannot run: every CSV file the project writes goes through here.

An id chosen by a charger or by an imported file (`=cmd|' /C calc'!A0`, `-2+3`, `@SUM(A1)`)
would otherwise open in Excel or LibreOffice as a live formula. OWASP's CSV Injection page
prescribes: a text cell starting with = + - @ tab or carriage return gets a leading `'`, text
fields are quoted, and embedded double quotes are doubled. Only text columns are touched, so a
negative number stays a number; a text cell that merely looks like a sum (`-2+3`) is neutralised.

Not for COPY data sent to PostgreSQL (`pipelines.store`, `ingest.importers.load`): that CSV is
never opened by a person, and a prefix would change the stored value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

LIVE = ("=", "+", "-", "@", "\t", "\r")  # OWASP: the first characters a spreadsheet evaluates
_LIVE_RE = r"^[=+\-@\t\r]"  # the same, for polars
PREFIX = "'"


def is_live(value: str) -> bool:
    return value.startswith(LIVE)


def neutralise(value: str) -> str:
    """`value` as a cell no spreadsheet evaluates (unchanged when it is harmless)."""
    return PREFIX + value if is_live(value) else value


def neutralise_frame(df: pl.DataFrame, columns: Iterable[str] | None = None) -> pl.DataFrame:
    """The frame with its text columns (or the named ones) neutralised; other dtypes untouched."""
    names = list(columns) if columns is not None else df.select(pl.col(pl.String)).columns
    return df.with_columns(
        pl.when(pl.col(c).str.contains(_LIVE_RE))
        .then(pl.concat_str(pl.lit(PREFIX), pl.col(c)))
        .otherwise(pl.col(c))
        .alias(c)
        for c in names
    )


def frame_csv(df: pl.DataFrame, **write_csv) -> str:
    """`df.write_csv(...)` with text columns neutralised and every non-numeric cell quoted
    (polars' `non_numeric`: text, dates); numbers and nulls bare, the header plain."""
    header = ",".join(_field(c, False) for c in df.columns) + "\n"
    body = neutralise_frame(df).write_csv(
        include_header=False, quote_style="non_numeric", **write_csv
    )
    return header + body


def _field(value: str, text: bool) -> str:
    if text and value:
        return '"' + neutralise(value).replace('"', '""') + '"'
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def rows_csv(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    text_columns: Iterable[str],
    line_end: str = "\n",
) -> str:
    """CSV of string cells (e.g. EV-ChART's frames, every cell already formatted): the cells of
    `text_columns` neutralised and quoted, the others (decimals, datetimes) written as they are;
    empty cells stay empty. The header is plain."""
    text = set(text_columns)
    flags = [name in text for name in header]
    lines = [",".join(_field(h, False) for h in header)]
    lines += [",".join(_field(v or "", t) for v, t in zip(row, flags, strict=True)) for row in rows]
    return line_end.join(lines) + line_end
