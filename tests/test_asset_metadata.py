"""What an asset's page shows: Dagster's table keys, readable previews, figures as numbers."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from pipelines import metadata as md


def _frame() -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "ts": [datetime(2026, 11, 29, 14, 5, 0, 123456, tzinfo=UTC), None],
            "start": [datetime(2026, 11, 29, 14, 5), datetime(2026, 11, 29, 15, 30)],
            "energy_kwh": [12.34567, None],
            "at_risk": [True, None],
            "sessions": [3, None],
            "site": ["S1", None],
        },
    )
    return df.with_columns(pl.col("start").dt.replace_time_zone("Europe/Paris"))  # local 14:05


def test_table_metadata_gives_row_count_schema_and_a_readable_preview():
    meta = md.table_metadata(_frame())
    assert meta["dagster/row_count"] == dg.MetadataValue.int(2)
    schema = meta["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchemaMetadataValue)
    assert [(c.name, c.type) for c in schema.schema.columns] == [
        ("ts", "Datetime(UTC)"), ("start", "Datetime(Europe/Paris)"), ("energy_kwh", "Float64"),
        ("at_risk", "Boolean"), ("sessions", "Int64"), ("site", "String"),
    ]  # fmt: skip
    table = meta["preview"]
    assert isinstance(table, dg.TableMetadataValue)
    assert [c.name for c in table.schema.columns] == list(_frame().columns)
    first, second = (r.data for r in table.records)
    # seconds where a value has them (never microseconds), minutes otherwise; always UTC
    assert first == {"ts": "2026-11-29 14:05:00Z", "start": "2026-11-29 13:05Z",
                     "energy_kwh": 12.35, "at_risk": True, "sessions": 3, "site": "S1"}  # fmt: skip
    assert second == {"ts": "", "start": "2026-11-29 14:30Z", "energy_kwh": "", "at_risk": "",
                      "sessions": "", "site": ""}  # fmt: skip


def test_preview_selects_columns_and_rows_and_an_empty_frame_keeps_its_header():
    df = pl.DataFrame({"a": list(range(10)), "b": [x / 3 for x in range(10)]})
    table = md.preview(df, 3, ["b"])
    assert [r.data for r in table.records] == [{"b": 0.0}, {"b": 0.33}, {"b": 0.67}]
    empty = md.preview(df.clear(), 5)
    assert empty.records == [] and [c.name for c in empty.schema.columns] == ["a", "b"]
    meta = md.table_metadata(df, preview=["a"], n=2)
    assert meta["dagster/row_count"].value == 10
    assert [r.data for r in meta["preview"].records] == [{"a": 0}, {"a": 1}]
    assert len(meta["dagster/column_schema"].schema.columns) == 2  # the schema is the table's


def test_numbers_split_per_key_figures_into_numeric_entries():
    out = md.numbers(
        {"matched": 3, "hours_available": 12.4999, "EUR": {"net": 8825}, "none": None}, "x_"
    )
    assert out == {
        "x_matched": dg.MetadataValue.int(3),
        "x_hours_available": dg.MetadataValue.float(12.5),
        "x_EUR_net": dg.MetadataValue.int(8825),
        "x_none": dg.MetadataValue.null(),
    }
    assert md.number(float("nan")) == dg.MetadataValue.null()
    assert md.number(0.123456, 3) == dg.MetadataValue.float(0.123)
    assert md.flag(False) == dg.MetadataValue.bool(False)
    assert md.flag(None) == dg.MetadataValue.null()


def test_durations_and_lists_read_plainly():
    df = pl.DataFrame({"d": [timedelta(minutes=5, microseconds=7)], "l": [["a", "b"]]})
    assert md.preview(df).records[0].data == {"d": "0:05:00", "l": '["a", "b"]'}
