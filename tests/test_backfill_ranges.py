"""Backfills Dagster's way (issue 19 item 2, issue 17 row 9): the daily analytics run a range of
days per run (`BackfillPolicy.multi_run`), with the same figures as one run per day, each day's
own figures kept on its partition, and a day that fails failing alone.

The raw scenario is the hand-built one of test_analytics_pipeline (three UTC days around
2025-06-10), in a real PostgreSQL, run through `chargeops backfill`'s runner into a persistent
Dagster instance."""

from datetime import date, timedelta

import dagster as dg
import psycopg
import pytest

from chargeops.settings import Settings
from pipelines.runner import RANGE_END, RANGE_START, DagsterRunner, day_ranges
from tests.test_analytics_pipeline import D, _scenario

DAYS = [D - timedelta(days=1), D, D + timedelta(days=1)]
TABLES = {  # a table each daily asset writes, and its key columns
    "sessions": "session_id",
    "utilisation_hourly": "charge_point_id, evse_id, connector_id, hour_ts",
    "uptime_daily": "charge_point_id, evse_id, connector_id",
    "energy_connector_day": "charge_point_id, evse_id, connector_id",
    "peak_usage": "site_id, local_weekday, local_hour",
    "expected_revenue": "session_id",
    "emissions_session_day": "session_id",
}


@pytest.fixture
def runner(db, database_url, tmp_path, monkeypatch):
    _scenario(db)
    db.commit()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # restored after the test
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    return DagsterRunner(database_url, settings)


def _tables(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(f"SELECT * FROM analytics.{t} ORDER BY day, {keys}").fetchall()
            for t, keys in TABLES.items()
        }


def _statuses(url: str, asset: str) -> dict[date, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT day, status FROM analytics.partition_status WHERE asset = %s", (asset,)
        )
        return dict(rows.fetchall())


def test_days_go_in_runs_of_consecutive_days():
    d = date(2026, 1, 1)
    days = [d + timedelta(days=i) for i in (0, 1, 2, 3, 5, 6)]
    assert day_ranges(days, 3) == [days[0:2], days[2:4], days[4:6]]
    assert day_ranges(list(reversed(days)), 31) == [days[0:4], days[4:6]]
    # a long stretch: pieces of equal length, a multiple of the workers that run them
    stretch = [d + timedelta(days=i) for i in range(137)]
    assert [len(c) for c in day_ranges(stretch, 31)] == [28, 28, 28, 28, 25]
    assert [len(c) for c in day_ranges(stretch, 31, workers=2)] == [23] * 5 + [22]
    assert sum(day_ranges(stretch, 31, workers=2), []) == stretch
    assert [len(c) for c in day_ranges(stretch[:40], 31, workers=4)] == [10] * 4


@pytest.mark.once  # whole backfills through Dagster: CI runs them once
def test_a_range_run_gives_what_a_run_per_day_gives(runner, database_url):
    runner.analytics(DAYS)
    assert runner.runs == 1 and runner.failures == 0, runner.failed
    ranged = _tables(database_url)
    assert ranged["sessions"] and ranged["expected_revenue"]

    runner.run("analytics", "analytics_daily", [(str(d), d.isoformat()) for d in DAYS])
    assert runner.runs == 4 and runner.failures == 0, runner.failed
    assert _tables(database_url) == ranged

    instance = dg.DagsterInstance.get()
    key = dg.AssetKey("sessions")
    assert instance.get_materialized_partitions(key) == {d.isoformat() for d in DAYS}
    # each day's own figures: the metadata of its partition's materialization in the range run
    observed = {
        m.partition: m.metadata["dagster/row_count"].value
        for e in instance.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION, asset_key=key)
        )
        for m in [e.event_log_entry.asset_materialization]
        if m.metadata.get("range_days")
    }
    per_day = {d.isoformat(): sum(1 for r in ranged["sessions"] if r[0] == d) for d in DAYS}
    assert observed == per_day and per_day[D.isoformat()] > 0
    # the range run's checks are evaluated per day
    range_run = dg.RunsFilter(
        tags={RANGE_START: DAYS[0].isoformat(), RANGE_END: DAYS[-1].isoformat()}
    )
    (first,) = instance.get_runs(filters=range_run)
    evaluations = [
        e.dagster_event.event_specific_data
        for e in instance.all_logs(first.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    evaluations = [e.partition for e in evaluations if e.asset_key == dg.AssetKey("uptime")]
    assert sorted(set(evaluations)) == [d.isoformat() for d in DAYS]


@pytest.mark.once  # whole backfills through Dagster: CI runs them once
def test_a_day_that_fails_in_a_range_fails_alone(runner, db, database_url):
    # a real fault for one day only: the database refuses that day's site energy rows
    db.execute(
        f"""CREATE FUNCTION analytics.refuse_day() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.day = DATE '{D}' THEN RAISE EXCEPTION 'disk full for {D}'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_day BEFORE INSERT ON analytics.energy_site_day
            FOR EACH ROW EXECUTE FUNCTION analytics.refuse_day();"""
    )
    db.commit()
    try:
        runner.analytics(DAYS)
    finally:  # the database is the session's: the fault goes with the test
        db.execute("DROP FUNCTION analytics.refuse_day() CASCADE")
        db.commit()

    # the range failed, was run again day by day: only the bad day counts as failed
    assert runner.failed == [f"analytics_daily run ({D})"]
    energy = _statuses(database_url, "energy")
    assert energy == {DAYS[0]: "ok", D: "failed", DAYS[2]: "ok"}
    peak = _statuses(database_url, "peak_usage")
    assert peak[DAYS[0]] == peak[DAYS[2]] == "ok" and peak.get(D) != "ok"
    instance = dg.DagsterInstance.get()
    assert instance.get_materialized_partitions(dg.AssetKey("energy")) == {
        DAYS[0].isoformat(),
        DAYS[2].isoformat(),
    }
    assert instance.get_materialized_partitions(dg.AssetKey("sessions")) == {
        d.isoformat() for d in DAYS
    }


@pytest.mark.once  # whole backfills through Dagster: CI runs them once
def test_ranges_run_two_at_a_time_in_worker_processes(runner, database_url):
    runner.analytics(DAYS)  # one range, in this process: the reference
    reference = _tables(database_url)

    runner.workers = 2
    runner.analytics([DAYS[0], DAYS[2]])  # two ranges (not consecutive): one worker each
    assert runner.runs == 3 and runner.failures == 0, runner.failed
    assert _tables(database_url) == reference
    instance = dg.DagsterInstance.get()
    ranges = {
        (r.tags[RANGE_START], r.tags[RANGE_END])
        for r in instance.get_runs()
        if RANGE_START in r.tags and r.tags[RANGE_START] == r.tags[RANGE_END]
    }
    assert ranges == {(d.isoformat(), d.isoformat()) for d in (DAYS[0], DAYS[2])}
