"""Migrations and the run-time choice between TimescaleDB and native partitioning."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chargeops.db import (
    TimescaleFacts,
    create_database,
    drop_database,
    migrations,
    storage_mode,
    timescale_facts,
    timescaledb_unusable,
    upgrade,
)
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


def _facts(**changed) -> TimescaleFacts:
    usable = dict(
        default_version="2.28.3",
        installed_version=None,
        preloaded=True,
        needs_superuser=True,
        is_superuser=True,
        may_create=True,
    )
    return TimescaleFacts(**(usable | changed))


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        (_facts(), None),
        (_facts(default_version=None), "not installed on this server"),
        # installed, not preloaded: CREATE EXTENSION would raise "must be preloaded"
        (_facts(preloaded=False), "not in shared_preload_libraries"),
        (_facts(default_version="2.11.2"), "2.11.2 is older than 2.13"),
        (_facts(is_superuser=False), "no permission"),
        (_facts(is_superuser=False, needs_superuser=False, may_create=False), "no permission"),
        # created once by a superuser: an ordinary role uses it
        (_facts(is_superuser=False, installed_version="2.28.3"), None),
    ],
)
def test_every_way_timescaledb_can_be_unusable_has_its_line(facts, why):
    found = timescaledb_unusable(facts)
    if why is None:
        assert found is None
    else:
        assert why in found and "\n" not in found


def test_auto_says_why_in_one_line_and_on_fails_with_it(fresh_db, caplog):
    """On this server as it is: TimescaleDB used where usable, otherwise native with the reason."""
    with psycopg.connect(fresh_db) as conn:
        why = timescaledb_unusable(timescale_facts(conn))
    if why is not None:
        with pytest.raises(ConfigError, match="CHARGEOPS_TIMESCALEDB=on but") as raised:
            upgrade(fresh_db, timescaledb="on")
        assert why in str(raised.value)
    with caplog.at_level(logging.INFO, logger="chargeops.db"):
        upgrade(fresh_db)
    lines = [r.getMessage() for r in caplog.records if "TimescaleDB not used" in r.getMessage()]
    with psycopg.connect(fresh_db) as conn:
        mode = storage_mode(conn)
    if why is None:
        assert mode == "timescaledb" and not lines
    else:
        assert mode == "native" and lines == [f"TimescaleDB not used ({why}): native partitioning"]


def test_a_role_that_may_not_create_the_extension_gets_native_storage(server_url, caplog):
    """An ordinary role owning its database: TimescaleDB is not a trusted extension, so `auto`
    falls back with the reason (or, where the server lacks it, says that), and `on` refuses."""
    role, name = f"chargeops_role_{uuid.uuid4().hex[:8]}", f"chargeops_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
    try:
        url = make_conninfo(server_url, user=role, dbname=name)
        with psycopg.connect(url) as conn:
            facts = timescale_facts(conn)
        assert not facts.is_superuser and facts.may_create
        why = timescaledb_unusable(facts)
        assert why is not None
        assert ("no permission" if facts.default_version else "not installed") in why
        with pytest.raises(ConfigError, match=why.split(":")[0]):
            upgrade(url, timescaledb="on")
        with caplog.at_level(logging.INFO, logger="chargeops.db"):
            upgrade(url)
        with psycopg.connect(url) as conn:
            assert storage_mode(conn) == "native"
        assert any(why in r.getMessage() for r in caplog.records)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_bad_migration_names_rejected(tmp_path):
    (tmp_path / "1_bad.sql").write_text("SELECT 1")
    with pytest.raises(ConfigError, match="NNN_name.sql"):
        migrations(tmp_path)
