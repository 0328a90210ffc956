"""The Dagster layer end to end: a hand-built raw scenario in a real PostgreSQL, every asset
materialised through `dagster.materialize`, values asserted exactly, and each check failing on a
crafted bad row."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.defs.analytics import checks
from pipelines.defs.analytics.assets import ASSETS
from pipelines.defs.analytics.checks import CHECKS
from pipelines.quality import daily_check
from pipelines.resources import DatabaseResource

# every asset through Dagster on one server; `make demo` runs them all on the embedded default
# too: CI runs these once (marker `once`)
pytestmark = pytest.mark.once

D = date(2025, 6, 10)  # a Tuesday; London is on BST (UTC+1)


def T(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def _scenario(db) -> None:
    db.execute(
        """INSERT INTO site (site_id, name, timezone, operating_hours) VALUES
           ('S1', 'always open', 'Europe/London', NULL),
           ('S2', 'office hours', 'Europe/London', '{"tue": ["08:00", "18:00"]}')"""
    )
    db.execute(
        """INSERT INTO charge_point (charge_point_id, site_id, max_power_w, current_type, registered_at)
           VALUES ('CP-A', 'S1', 50000, 'DC', '2025-01-01'), ('CP-B', 'S2', 7400, 'AC', '2025-01-01')"""
    )
    db.execute("INSERT INTO evse VALUES ('CP-A', 1), ('CP-A', 2), ('CP-B', 1)")
    db.execute(  # 0.50 GBP/kWh including 20 % VAT, from 2025-06-10; 0.40 before
        """INSERT INTO tariff (tariff_id, site_id, currency, energy_price_per_kwh, tax_rate,
               prices_include_tax, valid_from, valid_to) VALUES
           ('S1-old', 'S1', 'GBP', 0.40, 0.20, true, '2025-01-01+00', '2025-06-10+00'),
           ('S1-new', 'S1', 'GBP', 0.50, 0.20, true, '2025-06-10+00', NULL)"""
    )
    db.execute(
        "INSERT INTO connector (charge_point_id, evse_id, connector_id) VALUES ('CP-A', 1, 1), ('CP-A', 2, 1), ('CP-B', 1, 1)"
    )
    tx = [  # T1 crosses midnight; T2 never sends its stop; T3 has a meter reset
        ("T1", "2025-06-09 22:00", 1000, "2025-06-10 02:00", 9000),
        ("T2", "2025-06-10 05:00", 9000, None, None),
        ("T3", "2025-06-10 08:00", 11000, "2025-06-10 11:00", 2500),
    ]
    for tid, start, m0, stop, m1 in tx:
        db.execute(
            """INSERT INTO transaction (charge_point_id, transaction_id, ocpp_version, evse_id,
                   connector_id, start_ts, meter_start_wh, stop_ts, meter_stop_wh)
               VALUES ('CP-A', %s, '2.0.1', 1, 1, %s, %s, %s, %s)""",
            (tid, T(start), m0, T(stop) if stop else None, m1),
        )
    samples = [
        ("T1", "2025-06-09 22:00", 1000, "Transaction.Begin"), ("T1", "2025-06-09 23:00", 3000, "Sample.Periodic"),
        ("T1", "2025-06-10 00:00", 5000, "Sample.Periodic"), ("T1", "2025-06-10 01:00", 7000, "Sample.Periodic"),
        ("T1", "2025-06-10 02:00", 9000, "Transaction.End"),
        ("T2", "2025-06-10 05:00", 9000, "Transaction.Begin"), ("T2", "2025-06-10 06:00", 11000, "Sample.Periodic"),
        ("T3", "2025-06-10 08:00", 11000, "Transaction.Begin"), ("T3", "2025-06-10 09:00", 13000, "Sample.Periodic"),
        ("T3", "2025-06-10 10:00", 500, "Sample.Periodic"), ("T3", "2025-06-10 11:00", 2500, "Transaction.End"),
    ]  # fmt: skip
    for tid, ts, value, context in samples:
        db.execute(
            """INSERT INTO meter_value (ts, charge_point_id, evse_id, connector_id, transaction_id,
                   measurand, location, context, value, unit, raw_value, received_at)
               VALUES (%s, 'CP-A', 1, 1, %s, 'Energy.Active.Import.Register', 'Outlet', %s, %s,
                       'Wh', %s, %s)""",
            (T(ts), tid, context, value, str(value), T(ts)),
        )
    statuses = [
        ("CP-A", 1, "2025-06-09 21:55", "Preparing"), ("CP-A", 1, "2025-06-09 22:00", "Charging"),
        ("CP-A", 1, "2025-06-10 02:00", "Finishing"), ("CP-A", 1, "2025-06-10 02:05", "Available"),
        ("CP-A", 2, "2025-06-09 12:00", "Available"), ("CP-A", 2, "2025-06-10 10:00", "Faulted"),
        ("CP-A", 2, "2025-06-10 12:00", "Available"),
        ("CP-B", 1, "2025-06-09 12:00", "Available"), ("CP-B", 1, "2025-06-10 18:00", "Unavailable"),
        ("CP-B", 1, "2025-06-10 23:00", "Available"),
    ]  # fmt: skip
    for cp, evse, ts, status in statuses:
        db.execute(
            """INSERT INTO status_event (ts, charge_point_id, evse_id, connector_id, status,
                   error_code, ocpp_version, received_at)
               VALUES (%s, %s, %s, 1, %s, %s, '2.0.1', %s)""",
            (T(ts), cp, evse, status, "GroundFailure" if status == "Faulted" else "NoError", T(ts)),
        )
    # heartbeats every 10 minutes, except CP-A is silent 14:00-16:00 on D (offline 14:30-16:00)
    beats = []
    t = T("2025-06-09 20:00")
    while t < T("2025-06-11 01:00"):
        for cp in ("CP-A", "CP-B"):
            if not (cp == "CP-A" and T("2025-06-10 14:00") < t < T("2025-06-10 16:00")):
                beats.append((t, cp))
        t += timedelta(minutes=10)
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO connection_event (ts, charge_point_id, event) VALUES (%s, %s, 'heartbeat')",
            beats,
        )
    db.execute(
        """INSERT INTO outage_exclusion (charge_point_id, evse_id, starts_at, ends_at, reason)
           VALUES ('CP-A', 2, '2025-06-10 11:00+00', '2025-06-10 13:00+00', 'scheduled_maintenance')"""
    )


def _run(database_url: str, day: date, selection=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*ASSETS, *CHECKS],
        partition_key=day.isoformat(),
        resources={"database": DatabaseResource(url=database_url)},
        selection=selection,
        raise_on_error=False,
    )


@pytest.fixture
def scenario(db, database_url):
    _scenario(db)
    for day in (D - timedelta(days=1), D):
        result = _run(database_url, day)
        assert result.success, [
            str(e.event_specific_data.error)[:500] for e in result.get_step_failure_events()
        ]
        assert all(e.passed for e in result.get_asset_check_evaluations())
    return db


def test_definitions_have_the_whole_graph():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "connector_states", "sessions", "utilisation", "uptime", "energy", "peak_usage",
        "expected_revenue", "emissions", "stripe_payments", "reconciliation", "evchart_files",
        "uk_reliability_report", "compliance_report", "maintenance_features",
        "maintenance_model", "maintenance_scores", "operator_dashboard_daily",
        "operator_dashboard_weekly", "meter_value", "status_event", "connection_event",
    }  # fmt: skip
    for job in ("analytics_daily", "stripe_sync", "reconciliation_daily", "quarterly_reports",
                "uk_reliability_yearly", "maintenance_daily", "maintenance_weekly",
                "maintenance_features_daily", "maintenance_scores_daily",
                "operator_dashboard_daily_job", "operator_dashboard_weekly_job"):  # fmt: skip
        assert defs.resolve_job_def(job) is not None
    assert {s.name for s in defs.schedules} == {
        "previous_day", "stripe_hourly", "reconcile_recent_days", "quarterly_reports_schedule",
        "uk_reliability_yearly_schedule", "maintenance_daily", "maintenance_weekly",
        "dashboard_daily", "dashboard_weekly", "raw_freshness_every_5_min",
    }  # fmt: skip
    assert {s.name for s in defs.sensors} == {"late_data", "run_failure_alert"}


def test_checks_are_partitioned_like_their_assets():
    """So one bad day shows that day failed in the UI, not the whole asset."""
    graph = defs.resolve_asset_graph()
    partitions = {key: graph.get(key).partitions_def for key in graph.get_all_asset_keys()}
    checked = 0
    for checks_def in defs.resolve_asset_graph().assets_defs:
        for spec in checks_def.check_specs:
            assert spec.partitions_def == partitions[spec.asset_key], spec.key
            checked += spec.partitions_def is not None
    assert checked >= 14


def test_scenario_values(scenario):
    db = scenario
    sessions = {
        r[0]: r[1:]
        for r in db.execute(
            """SELECT transaction_id, day, start_ts, end_ts, energy_wh, energy_source, missing_stop,
                      meter_reset FROM analytics.sessions ORDER BY 1"""
        )
    }
    # the session crossing midnight belongs to its start day and keeps all its energy
    assert sessions["T1"] == (
        D - timedelta(days=1),
        T("2025-06-09 22:00"),
        T("2025-06-10 02:00"),
        8000.0,
        "meter",
        False,
        False,
    )
    # the missing stop: energy from samples, ended by the next session on the connector
    assert sessions["T2"] == (
        D,
        T("2025-06-10 05:00"),
        T("2025-06-10 06:00"),
        2000.0,
        "samples",
        True,
        False,
    )
    # the reset: the drop counts as zero, both sides of it count
    assert sessions["T3"] == (
        D,
        T("2025-06-10 08:00"),
        T("2025-06-10 11:00"),
        4000.0,
        "samples",
        False,
        True,
    )

    # energy on D: T1's last two hours (4 kWh) + T2 (2 kWh) + T3 (4 kWh); on D-1 T1's first two
    energy = dict(db.execute(
        "SELECT day, energy_kwh FROM analytics.energy_connector_day WHERE charge_point_id = 'CP-A' AND evse_id = 1"))  # fmt: skip
    assert energy == {D - timedelta(days=1): 4.0, D: 10.0}

    uptime = {
        (r[0], r[1]): r[2:]
        for r in db.execute(
            """SELECT charge_point_id, evse_id, outage_minutes, excluded_minutes, uptime_pct
               FROM analytics.uptime_daily WHERE day = %s""",
            (D,),
        )
    }
    # CP-A offline 14:30-16:00 (heartbeat timeout 30 min): 90 minutes on both connectors
    assert uptime[("CP-A", 1)] == (90.0, 0.0, pytest.approx(100 * (1440 - 90) / 1440))
    # + a fault 10:00-12:00 of which 11:00-12:00 is inside the maintenance exclusion
    assert uptime[("CP-A", 2)] == (210.0, 60.0, pytest.approx(100 * (1440 - 150) / 1440))
    # CP-B unavailable 18:00-23:00 UTC: after the site closed (18:00 BST = 17:00 UTC)
    assert uptime[("CP-B", 1)] == (300.0, 300.0, 100.0)
    causes = db.execute(
        """SELECT cause, excluded, coalesce(exclusion_reason, ''), sum(duration_min) FROM analytics.outages
           WHERE day = %s AND charge_point_id = 'CP-A' AND evse_id = 2 GROUP BY 1, 2, 3 ORDER BY 1, 2""",
        (D,),
    ).fetchall()
    assert causes == [
        ("faulted", False, "", 60.0),
        ("faulted", True, "scheduled_maintenance", 60.0),
        ("offline", False, "", 90.0),
    ]

    # utilisation: the first hour of D on CP-A/1 is all charging; every hour sums to 60
    assert db.execute(
        """SELECT minutes_charging, occupancy_ratio FROM analytics.utilisation_hourly
           WHERE day = %s AND charge_point_id = 'CP-A' AND evse_id = 1 AND hour_ts = %s""",
        (D, T("2025-06-10 00:00")),
    ).fetchone() == (60.0, 1.0)
    assert db.execute(
        """SELECT count(*) FROM analytics.utilisation_hourly WHERE day = %s AND abs(minutes_available
           + minutes_charging + minutes_suspended + minutes_occupied_other + minutes_faulted
           + minutes_unavailable + minutes_offline + minutes_unknown - 60) > 1e-9""",
        (D,),
    ).fetchone() == (0,)
    # UK reliability of the rapid charge point: both connectors down only while offline
    assert db.execute(
        "SELECT inoperative_minutes, reliability_pct FROM analytics.uk_reliability_daily WHERE day = %s",
        (D,),
    ).fetchone() == (90.0, pytest.approx(100 * (1440 - 90) / 1440))
    # rollups recompute from sums
    assert db.execute(
        "SELECT minutes_in_period FROM analytics.uptime_quarterly WHERE charge_point_id = 'CP-A' AND evse_id = 2"
    ).fetchone() == (2880.0,)
    assert (
        db.execute("SELECT count(*) FROM analytics.peak_usage WHERE day = %s", (D,)).fetchone()[0]
        == 48
    )


def test_rerun_replaces_the_partition(scenario, database_url):
    before = scenario.execute("SELECT count(*) FROM analytics.sessions").fetchone()
    assert _run(database_url, D).success
    assert scenario.execute("SELECT count(*) FROM analytics.sessions").fetchone() == before


BAD_ROWS = {
    "raw_timestamps_not_in_future": """INSERT INTO status_event (ts, charge_point_id, evse_id,
        connector_id, status, ocpp_version, received_at) VALUES (now() + interval '2 days', 'CP-B',
        1, 1, 'Available', '2.0.1', '2025-06-10 12:00+00')""",
    "raw_timestamps_after_registration": "UPDATE charge_point SET registered_at = '2025-06-10 12:00+00' WHERE charge_point_id = 'CP-A'",
    "sessions_valid": "UPDATE analytics.sessions SET energy_wh = -5 WHERE transaction_id = 'T2'",
    "meter_registers_monotonic": """INSERT INTO meter_value (ts, charge_point_id, evse_id, connector_id,
        transaction_id, measurand, location, context, value, unit, raw_value, received_at) VALUES
        ('2025-06-10 09:30+00', 'CP-A', 1, 1, 'T3', 'Energy.Active.Import.Register', 'Outlet',
        'Sample.Periodic', 12900, 'Wh', '12900', '2025-06-10 09:30+00')""",
    "utilisation_minutes_sum_to_hour": "UPDATE analytics.utilisation_hourly SET minutes_available = minutes_available + 5 WHERE hour_ts = '2025-06-10 03:00+00'",
    "uptime_within_bounds": "UPDATE analytics.uptime_daily SET uptime_pct = 120 WHERE charge_point_id = 'CP-B'",
    "expected_revenue_adds_up": "UPDATE analytics.expected_revenue SET tax_amount = tax_amount + 1 WHERE session_id = 'CP-A:T2'",
    "energy_adds_up": "UPDATE analytics.energy_connector_day SET energy_kwh = -1 WHERE charge_point_id = 'CP-B'",
    "sessions_unusual": "UPDATE analytics.sessions SET end_ts = start_ts, duration_min = 0 WHERE transaction_id = 'T3'",
}


@pytest.mark.parametrize("check", list(BAD_ROWS))
def test_each_check_fails_on_a_crafted_bad_row(scenario, database_url, check):
    run_check = getattr(checks, f"check_{check}")
    assert run_check(database_url, [D])[D].passed  # the scenario itself is clean
    scenario.execute(BAD_ROWS[check])
    result = run_check(database_url, [D])[D]
    assert result.passed is False
    assert "failures" in result.metadata


def test_one_charger_with_a_clock_in_2100_does_not_block_the_day(scenario, database_url):
    """A row stamped years ahead of its arrival is a warning about that charger's clock, not a
    block on everyone's day (the collector quarantines such rows; this one was stored anyway)."""
    scenario.execute(BAD_ROWS["raw_timestamps_not_in_future"])
    result = _run(database_url, D)
    assert result.success
    warned = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert warned == {"raw_timestamps_not_in_future"}
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name in warned)
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "charge_point_id=CP-B" in evaluation.metadata["failures"].value
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"utilisation", "uptime", "peak_usage"} <= materialised
    assert scenario.execute(
        "SELECT count(DISTINCT charge_point_id) FROM analytics.uptime_daily WHERE day = %s", (D,)
    ).fetchone() == (2,)


def test_blocking_check_stops_downstream_in_the_run_and_in_later_runs(scenario, database_url):
    """A blocking check failing on a day stops what depends on it in the same run (Dagster),
    and in any later run of a downstream asset for that day (analytics.partition_status)."""
    from pipelines.defs.analytics.assets import energy, sessions

    scenario.execute(BAD_ROWS["sessions_valid"])
    result = checks.check_sessions_valid(database_url, [D])[D]
    assert not result.passed
    # the sample names the session, its charger and connector, with readable values
    sample = result.metadata["failures"].value
    assert "session_id=CP-A:T2 charge_point_id=CP-A evse_id=1 connector_id=1" in sample
    assert "np.datetime64" not in sample

    # a blocking check of the sessions asset failing in a real run: downstream is skipped in
    # that run and the day is recorded failed (a check that always fails stands in for it)
    def check_always_fails(url, days):
        return {d: dg.AssetCheckResult(passed=False, metadata={"why": "crafted"}) for d in days}

    failing = daily_check(check_always_fails, asset=sessions, blocking=True)
    run = dg.materialize(
        [*ASSETS, failing],
        partition_key=D.isoformat(),
        resources={"database": DatabaseResource(url=database_url)},
        raise_on_error=False,
    )
    assert not run.success
    materialised = {e.asset_key.to_user_string() for e in run.get_asset_materialization_events()}
    assert "sessions" in materialised and "energy" not in materialised
    assert scenario.execute(
        "SELECT status, detail FROM analytics.partition_status WHERE asset = 'sessions' AND day = %s",
        (D,),
    ).fetchone() == ("failed", "blocking check always_fails failed")
    # a later run of energy alone for that day refuses, and says why
    later = _run(database_url, D, selection=[energy])
    assert not later.success
    [failure] = later.get_step_failure_events()
    assert "sessions failed for 2025-06-10 (blocking check always_fails failed)" in str(
        failure.event_specific_data.error
    )
    assert scenario.execute(
        "SELECT status FROM analytics.partition_status WHERE asset = 'energy' AND day = %s", (D,)
    ).fetchone() == ("failed",)
    # the day before is untouched
    assert scenario.execute(
        "SELECT status FROM analytics.partition_status WHERE asset = 'energy' AND day = %s",
        (D - timedelta(days=1),),
    ).fetchone() == ("ok",)
    # a clean re-run of the day lifts it: the asset and its real checks pass again
    assert _run(database_url, D).success
    assert scenario.execute(
        "SELECT count(*) FROM analytics.partition_status WHERE day = %s AND status <> 'ok'", (D,)
    ).fetchone() == (0,)


def test_an_asset_that_fails_marks_its_day_and_downstream_refuses(scenario, database_url):
    """The sessions asset itself failing (the database refuses its rows) leaves the day failed;
    energy, peak usage and expected revenue do not run on it in a later run."""
    from pipelines.defs.analytics.assets import energy, expected_revenue, sessions

    scenario.execute(
        "ALTER TABLE analytics.sessions ADD CONSTRAINT test_refuse CHECK (energy_wh < 0) NOT VALID"
    )
    try:
        first = _run(database_url, D, selection=[sessions])
    finally:
        scenario.execute("ALTER TABLE analytics.sessions DROP CONSTRAINT test_refuse")
    assert not first.success
    status, detail = scenario.execute(
        "SELECT status, detail FROM analytics.partition_status WHERE asset = 'sessions' AND day = %s",
        (D,),
    ).fetchone()
    assert status == "failed" and "test_refuse" in detail
    later = _run(database_url, D, selection=[energy, expected_revenue])
    assert not later.success and not later.get_asset_materialization_events()


def test_schedule_runs_the_day_that_just_ended():
    from pipelines.defs.analytics.jobs import previous_day

    ctx = dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 6, 11, 0, 30, tzinfo=UTC)
    )
    request = previous_day(ctx)
    assert request.partition_key == "2025-06-10"


def test_late_data_sensor_requests_the_touched_days(db, database_url):
    from pipelines.defs.analytics.jobs import late_data

    _scenario(db)
    db.execute(  # a charger that was offline sends a value from the 10th on the 12th
        """INSERT INTO meter_value (ts, charge_point_id, evse_id, connector_id, measurand,
               location, context, value, unit, raw_value, received_at)
           VALUES ('2025-06-10 20:00+00', 'CP-B', 1, 1, 'Energy.Active.Import.Register', 'Outlet',
                   'Sample.Periodic', 1, 'Wh', '1', '2025-06-12 08:00+00'),
                  -- history imported at the same time: older than LATE_DAYS, not a late day
                  ('2025-05-01 20:00+00', 'CP-B', 1, 1, 'Energy.Active.Import.Register', 'Outlet',
                   'Sample.Periodic', 1, 'Wh', '1', '2025-06-12 08:00+00')"""
    )
    ctx = dg.build_sensor_context(
        cursor="2025-06-11T00:00:00+00:00",
        resources={"database": DatabaseResource(url=database_url)},
    )
    requests = late_data(ctx)
    assert [r.partition_key for r in requests] == ["2025-06-10"]
    assert ctx.cursor.startswith("2025-06-12T08:00:00")
    # nothing new since: skipped
    again = late_data(
        dg.build_sensor_context(
            cursor=ctx.cursor, resources={"database": DatabaseResource(url=database_url)}
        )
    )
    assert isinstance(again, dg.SkipReason)
