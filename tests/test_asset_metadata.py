"""What an asset's page shows: Dagster's table keys, readable previews, figures as numbers."""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from numbers import Number

import dagster as dg
import polars as pl

from models.features import build_features
from models.synthetic import SyntheticFleet, generate
from pipelines import metadata as md
from pipelines.defs.maintenance import assets as maintenance
from pipelines.resources import DatabaseResource, ModelStoreResource
from tests.test_maintenance import _copy, _write_fleet
from tests.test_reconciliation import (  # noqa: F401  (clean: a fixture)
    EXPECTED_D,
    D,
    category_stripe,
    clean,
    expected_rows,
    insert_expected,
    run,
)


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


# -- through Dagster, on the test database -----------------------------------------------------


def _figure_blobs(meta: Mapping[str, dg.MetadataValue]) -> list[str]:
    """Keys whose value is a JSON mapping holding numbers: figures the UI cannot plot."""

    def has_numbers(v) -> bool:
        if isinstance(v, Mapping):
            return any(has_numbers(x) for x in v.values())
        return isinstance(v, Number) and not isinstance(v, bool)

    return [
        k
        for k, v in meta.items()
        if isinstance(v, dg.JsonMetadataValue)
        and isinstance(v.data, Mapping)
        and has_numbers(v.data)
    ]


def _columns(db, table: str) -> list[str]:
    schema, name = table.split(".")
    return [
        r[0]
        for r in db.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (schema, name),
        ).fetchall()
    ]


def _assert_table(meta, db, table: str, where: str, params: tuple) -> None:
    rows = db.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]
    assert rows > 0
    assert meta["dagster/row_count"] == dg.MetadataValue.int(rows)
    schema = meta["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchemaMetadataValue)
    assert {c.name for c in schema.schema.columns} <= set(_columns(db, table))
    assert isinstance(meta["preview"], dg.TableMetadataValue) and meta["preview"].records
    assert not _figure_blobs(meta)


def test_reconciliation_metadata(clean, database_url, tmp_path):  # noqa: F811
    insert_expected(clean, D, EXPECTED_D)
    insert_expected(clean, D - timedelta(days=1), expected_rows(("CP1:y", 990)))  # as there
    category_stripe().insert(clean)
    meta = run(database_url, tmp_path, D).asset_materializations_for_node("reconciliation")[0]
    meta = meta.metadata
    _assert_table(meta, clean, "analytics.reconciliation_lines", "day = %s", (D,))
    assert meta["dagster/row_count"].value == meta["lines"].value == 11
    # the figures per category and currency: one numeric entry each, and a table
    assert meta["lines_duplicate_payment"] == dg.MetadataValue.int(1)
    assert meta["EUR_net"] == dg.MetadataValue.int(8825)
    assert isinstance(meta["categories"], dg.TableMetadataValue)
    assert isinstance(meta["totals_by_currency"], dg.TableMetadataValue)
    # the previews read as text and numbers, never a markdown table
    assert not [k for k, v in meta.items() if isinstance(v, dg.MarkdownMetadataValue)]
    exceptions = meta["exceptions_preview"].records
    assert {r.data["category"] for r in exceptions} >= {"orphan_payment", "missing_payment"}
    assert all(r.data["session_id"] != "None" for r in exceptions)


def test_maintenance_metadata(db, database_url, tmp_path):
    """Features written for 33 days as the asset would, then two partitions through Dagster and
    the weekly model: a boolean beats_baseline, counts as ints, the importance as a table."""
    h = generate(SyntheticFleet(charge_points=6, days=40, seed=3, degrading_share=0.5))
    _write_fleet(db, h)
    features = build_features(h.inputs, h.first_day, h.last_day - timedelta(days=2))
    _copy(db, "analytics.maintenance_features", features)
    resources = {
        "database": DatabaseResource(url=database_url),
        "model_store": ModelStoreResource(directory=str(tmp_path / "models")),
    }
    for day in (h.last_day - timedelta(days=1), h.last_day):
        result = dg.materialize(
            [maintenance.maintenance_features], partition_key=day.isoformat(), resources=resources
        )
        meta = result.asset_materializations_for_node("maintenance_features")[0].metadata
        _assert_table(meta, db, "analytics.maintenance_features", "day = %s", (day,))
        assert meta["connectors"].value == meta["dagster/row_count"].value == 12
        floats = [v for r in meta["preview"].records for v in r.data.values()
                  if isinstance(v, float)]  # fmt: skip
        assert floats and all(v == round(v, 2) for v in floats)

    result = dg.materialize([maintenance.maintenance_model], resources=resources)
    meta = result.asset_materializations_for_node("maintenance_model")[0].metadata
    assert isinstance(meta["beats_baseline"], dg.BoolMetadataValue)
    assert isinstance(meta["split_reduced"], dg.BoolMetadataValue)
    assert isinstance(meta["rows"], dg.IntMetadataValue) and meta["rows"].value > 100
    assert isinstance(meta["model_pr_auc"], dg.FloatMetadataValue)
    assert meta["model_pr_auc"].value == round(meta["model_pr_auc"].value, 3)
    importance = meta["importance"]
    assert isinstance(importance, dg.TableMetadataValue) and importance.records
    assert all(isinstance(r.data["pr_auc_drop"], float) for r in importance.records)
    assert meta["importance_source"].value
    assert not _figure_blobs(meta)
    assert not [k for k, v in meta.items() if isinstance(v, dg.TextMetadataValue)
                and v.value in ("True", "False", "None")]  # fmt: skip


def test_every_asset_of_these_modules_has_a_code_version():
    from pipelines.defs.dashboard import assets as dashboard_asset
    from pipelines.defs.payments import ingest_asset, reconciliation_asset
    from pipelines.defs.reports import evchart_asset, report_assets

    modules = (maintenance, dashboard_asset, evchart_asset, report_assets, ingest_asset,
               reconciliation_asset)  # fmt: skip
    for module in modules:
        for asset in module.ASSETS:
            versions = set(asset.code_versions_by_key.values())
            assert versions and None not in versions, asset.key
