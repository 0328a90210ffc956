"""Migrations and the run-time choice between TimescaleDB and native partitioning."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

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


def test_upgrade_is_idempotent_and_recorded(fresh_db):
    names = [m.name for m in migrations()]
    assert upgrade(fresh_db) == names
    assert upgrade(fresh_db) == []
    with psycopg.connect(fresh_db) as conn:
        assert [
            r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version")
        ] == names
        mode = storage_mode(conn)
        usable = timescaledb_unusable(timescale_facts(conn)) is None
        assert mode == ("timescaledb" if usable else "native")
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


def _meter(ts: datetime, value: float) -> MeterRow:
    return MeterRow(ts, "CP", 1, 1, None, "Energy.Active.Import.Register", "", "Outlet",
                    "Sample.Periodic", value, "Wh", str(value), "Wh", 0, ts)  # fmt: skip


async def _write(url: str, rows: list[MeterRow]) -> None:
    writer = Writer(url)
    await writer.start()
    try:
        await writer.write(meter_ops(rows))
    finally:
        await writer.close()


async def test_late_rows_are_stored_in_a_compressed_chunk(fresh_db):
    """Late data older than the compression window (an import of history, a charger offline for
    months) goes into a compressed chunk: new rows stored, re-sent rows not doubled. On native
    partitioning the same rows go into their month's partition."""
    upgrade(fresh_db)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        mode = storage_mode(conn)
        conn.execute("INSERT INTO charge_point (charge_point_id) VALUES ('CP')")
    old = datetime(2026, 1, 10, tzinfo=UTC)
    await _write(fresh_db, [_meter(old + timedelta(minutes=i), 100.0 * i) for i in range(10)])
    if mode == "timescaledb":
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('meter_value') c")
            (compressed,) = conn.execute(
                """SELECT count(*) FROM timescaledb_information.chunks
                   WHERE hypertable_name = 'meter_value' AND is_compressed"""
            ).fetchone()
            assert compressed == 1
    late = [_meter(old + timedelta(minutes=i, seconds=30), 100.0 * i + 50) for i in range(5)]
    again = [_meter(old + timedelta(minutes=i), 100.0 * i) for i in range(3)]  # re-sent
    await _write(fresh_db, late + again)
    with psycopg.connect(fresh_db) as conn:
        count, total = conn.execute("SELECT count(*), sum(value) FROM meter_value").fetchone()
    assert count == 15
    assert total == sum(100.0 * i for i in range(10)) + sum(100.0 * i + 50 for i in range(5))


def test_columnstore_settings_recorded(fresh_db):
    """Under TimescaleDB: a connector's rows segmented together, ordered by ts, compressed 35 days
    after a chunk ends (the late-data window); recorded for `chargeops db status`."""
    upgrade(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        if storage_mode(conn) != "timescaledb":
            assert not conn.execute(
                "SELECT count(*) FROM chargeops_meta WHERE key LIKE 'columnstore:%'"
            ).fetchone()[0]
            return
        segments = conn.execute(
            """SELECT attname FROM timescaledb_information.compression_settings
               WHERE hypertable_name = 'meter_value' AND segmentby_column_index IS NOT NULL
               ORDER BY segmentby_column_index"""
        ).fetchall()
        assert [s[0] for s in segments] == ["charge_point_id", "evse_id", "connector_id"]
        after = dict(
            conn.execute(
                """SELECT hypertable_name, config->>'compress_after'
                   FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"""
            ).fetchall()
        )
        assert after["meter_value"] == "35 days" and after["ocpp_message"] == "35 days"


def test_audit_retention_is_off_by_default_and_drops_old_frames_when_set(fresh_db):
    upgrade(fresh_db, audit_retention_days=0)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        mode = storage_mode(conn)
        meta = dict(conn.execute("SELECT key, value FROM chargeops_meta").fetchall())
        assert meta["retention:ocpp_message"] == "off"
        # frames of an old month and of this one
        conn.execute("SELECT chargeops_ensure_partitions('ocpp_message', '2025-01-05', now())")
        conn.execute(
            """INSERT INTO ocpp_message (ts, charge_point_id, direction)
               VALUES ('2025-01-05', 'CP', 'in'), (now(), 'CP', 'in')"""
        )
    upgrade(fresh_db, audit_retention_days=90)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        meta = dict(conn.execute("SELECT key, value FROM chargeops_meta").fetchall())
        assert meta["retention:ocpp_message"] == "90 days"
        if mode == "timescaledb":
            (job,) = conn.execute(
                """SELECT config->>'drop_after' FROM timescaledb_information.jobs
                   WHERE proc_name = 'policy_retention' AND hypertable_name = 'ocpp_message'"""
            ).fetchall()
            assert job == ("90 days",)
            (job_id,) = conn.execute(
                "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
            ).fetchone()
            conn.execute(f"CALL run_job({int(job_id)})")
        kept = conn.execute("SELECT count(*) FROM ocpp_message").fetchone()[0]
        assert kept == 1  # the old month's frame is gone, this month's stays
        # the meter values and the rest are not touched; off again removes the policy
    upgrade(fresh_db, audit_retention_days=0)
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute(
            "SELECT value FROM chargeops_meta WHERE key = 'retention:ocpp_message'"
        ).fetchone() == ("off",)
        if mode == "timescaledb":
            assert not conn.execute(
                "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
            ).fetchone()[0]


def test_db_status_says_what_is_on(fresh_db, monkeypatch, capsys):
    from chargeops.cli import main as cli

    monkeypatch.setenv("DATABASE_URL", fresh_db)
    monkeypatch.setenv("CHARGEOPS_AUDIT_RETENTION_DAYS", "400")
    monkeypatch.setenv("CHARGEOPS_CHUNK_HOURS", "6")
    assert cli(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert cli(["db", "status"]) == 0
    out = capsys.readouterr().out
    with psycopg.connect(fresh_db) as conn:
        mode = storage_mode(conn)
    assert f"storage: {mode}" in out and "retention:ocpp_message 400 days" in out
    columnstore = "columnstore:meter_value segmentby charge_point_id, evse_id, connector_id"
    assert (columnstore in out) == (mode == "timescaledb")
    assert ("chunk:meter_value 6 hours" in out) == (mode == "timescaledb")
    if mode == "timescaledb":
        with psycopg.connect(fresh_db) as conn:
            chunks = dict(
                conn.execute(
                    """SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions
                       WHERE hypertable_name IN ('meter_value', 'ocpp_message', 'status_event')"""
                ).fetchall()
            )
        assert chunks["meter_value"] == chunks["ocpp_message"] == timedelta(hours=6)
        assert chunks["status_event"] == timedelta(days=7)  # the others keep theirs


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


def test_an_ordinary_role_owning_its_database(server_url, caplog):
    """Not a superuser, but the owner of its database: TimescaleDB 2.x is a trusted extension, so
    such a role creates it where the server has it preloaded; where the server lacks it, `auto`
    falls back with the reason and `on` refuses with it."""
    role, name = f"chargeops_role_{uuid.uuid4().hex[:8]}", f"chargeops_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
    try:
        url = make_conninfo(server_url, user=role, dbname=name)
        with psycopg.connect(url) as conn:
            facts = timescale_facts(conn)
        assert not facts.is_superuser and facts.may_create
        assert facts.preloaded is None  # an ordinary role may not read shared_preload_libraries
        why = timescaledb_unusable(facts)
        if why is not None:
            assert "not installed" in why or "no permission" in why
            with pytest.raises(ConfigError, match=why.split(":")[0]):
                upgrade(url, timescaledb="on")
        with caplog.at_level(logging.INFO, logger="chargeops.db"):
            upgrade(url)
        with psycopg.connect(url) as conn:
            assert storage_mode(conn) == ("native" if why else "timescaledb")
        assert why is None or any(why in r.getMessage() for r in caplog.records)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_bad_migration_names_rejected(tmp_path):
    (tmp_path / "1_bad.sql").write_text("SELECT 1")
    with pytest.raises(ConfigError, match="NNN_name.sql"):
        migrations(tmp_path)
