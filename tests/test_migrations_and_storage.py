"""Migrations and the run-time choice between TimescaleDB and native partitioning."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from chargeops.db import create_database, drop_database, migrations, storage_mode, upgrade
from chargeops.settings import ConfigError
from ingest.normalise import MeterRow
from ingest.store import Writer, meter_ops


@pytest.fixture
def fresh_db(server_url):
    """An empty database of its own, dropped afterwards."""
    name = f"chargeops_mig_{uuid.uuid4().hex[:8]}"
    yield create_database(server_url, name)
    drop_database(server_url, name)


def _has_timescaledb(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) > 0 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()[0]


def test_upgrade_is_idempotent_and_recorded(fresh_db):
    names = [m.name for m in migrations()]
    assert upgrade(fresh_db) == names
    assert upgrade(fresh_db) == []
    with psycopg.connect(fresh_db) as conn:
        assert [
            r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version")
        ] == names
        mode = storage_mode(conn)
        assert mode == ("timescaledb" if _has_timescaledb(fresh_db) else "native")
        recorded = dict(conn.execute("SELECT key, value FROM chargeops_meta").fetchall())
        for table in (
            "meter_value",
            "status_event",
            "connection_event",
            "ocpp_message",
            "transaction_event",
        ):
            assert recorded[f"timeseries:{table}"] == mode


def test_native_branch_partitions(fresh_db):
    upgrade(fresh_db, timescaledb="off")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert storage_mode(conn) == "native"
        assert conn.execute(
            "SELECT relkind::text FROM pg_class WHERE relname = 'meter_value'"
        ).fetchone() == ("p",)  # a partitioned table
        parts = {
            r[0]
            for r in conn.execute(
                "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'meter_value'::regclass"
            )
        }
        now = datetime.now(UTC)
        assert f"meter_value_p{now:%Y%m}" in parts and "meter_value_default" in parts
        # partitions are made ahead on demand; a second call makes none; broken clocks go to default
        made = conn.execute(
            "SELECT chargeops_ensure_partitions('status_event', '2031-05-03', '2031-07-01')"
        ).fetchone()[0]
        assert made == 3
        assert (
            conn.execute(
                "SELECT chargeops_ensure_partitions('status_event', '2031-05-03', '2031-07-01')"
            ).fetchone()[0]
            == 0
        )


async def test_writer_creates_partitions_for_any_month(fresh_db):
    upgrade(fresh_db, timescaledb="off")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("INSERT INTO charge_point (charge_point_id) VALUES ('CP')")
    writer = Writer(fresh_db)
    await writer.start()
    try:
        rows = [  # received when stamped (a row stamped far ahead of its arrival is quarantined)
            MeterRow(datetime(y, m, 2, tzinfo=UTC), "CP", 1, 1, None, "Energy.Active.Import.Register",
                     "", "Outlet", "Sample.Periodic", 1.0, "Wh", "1", "Wh", 0,
                     datetime(y, m, 2, tzinfo=UTC))
            for y, m in [(2019, 4), (2033, 12), (1971, 1)]
        ]  # fmt: skip
        await writer.write(meter_ops(rows))
    finally:
        await writer.close()
    with psycopg.connect(fresh_db) as conn:
        where = dict(
            conn.execute(
                "SELECT extract(year FROM ts)::int, tableoid::regclass::text FROM meter_value"
            ).fetchall()
        )
    assert where == {
        2019: "meter_value_p201904",
        2033: "meter_value_p203312",
        1971: "meter_value_default",
    }


def test_timescaledb_branch_generated_sql(fresh_db):
    """The TimescaleDB statements, checked by their generated SQL where the extension is absent."""
    upgrade(fresh_db, timescaledb="off")
    with psycopg.connect(fresh_db) as conn:
        stmts = [
            r[0]
            for r in conn.execute(
                "SELECT chargeops_timeseries_ddl('meter_value', 'ts timestamptz NOT NULL', '1 day', "
                "'charge_point_id', '7 days', 'timescaledb')"
            )
        ]
        assert stmts == [
            "CREATE TABLE IF NOT EXISTS meter_value (ts timestamptz NOT NULL)",
            "SELECT create_hypertable('meter_value', by_range('ts', '1 day'::interval), if_not_exists => true)",
            "ALTER TABLE meter_value SET (timescaledb.compress, timescaledb.compress_segmentby = "
            "'charge_point_id', timescaledb.compress_orderby = 'ts')",
            "SELECT add_compression_policy('meter_value', '7 days'::interval, if_not_exists => true)",
        ]
        native = [
            r[0]
            for r in conn.execute(
                "SELECT chargeops_timeseries_ddl('x', 'ts timestamptz', '1 day', 'cp', '7 days', 'native')"
            )
        ]
        assert native[0].endswith("PARTITION BY RANGE (ts)") and "DEFAULT" in native[1]
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute(
                "SELECT chargeops_timeseries_ddl('x', 'ts timestamptz', '1 day', 'cp', '7 days', 'other')"
            ).fetchall()


def test_timescaledb_required_but_missing_fails_clearly(fresh_db):
    if _has_timescaledb(fresh_db):
        pytest.skip("TimescaleDB is installed on this server")
    with pytest.raises(psycopg.errors.RaiseException, match="CREATE EXTENSION timescaledb failed"):
        upgrade(fresh_db, timescaledb="on")


def test_bad_migration_names_rejected(tmp_path):
    (tmp_path / "1_bad.sql").write_text("SELECT 1")
    with pytest.raises(ConfigError, match="NNN_name.sql"):
        migrations(tmp_path)
