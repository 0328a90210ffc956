"""The daily data-quality checks over a backfill's range of days: one validation for the range,
one result per day equal to what the day's own call gives, one evaluation per partition through
Dagster (a bad row fails its day and only its day), and Great Expectations' objects built once
per process, with the clock as a suite parameter.

The raw scenario is the hand-built one of test_analytics_pipeline (three UTC days around
2025-06-10), materialised a day at a time; the checks then run over the three days at once, as a
backfill's range run (`BackfillPolicy.multi_run`) runs them."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

import pipelines.definitions  # noqa: F401  (defines every daily check)
from pipelines import quality
from pipelines.defs.analytics import checks, emissions_asset
from pipelines.defs.analytics.assets import ASSETS
from pipelines.defs.analytics.checks import CHECKS
from pipelines.defs.payments import reconciliation_asset as rec
from pipelines.resources import DatabaseResource
from tests.test_analytics_pipeline import BAD_ROWS, D, _scenario

DAYS = [D - timedelta(days=1), D, D + timedelta(days=1)]
D0, D1, D2 = DAYS
FUNCTIONS = list(quality.DAILY_CHECK_FUNCTIONS)
assert len(FUNCTIONS) == 12  # every daily check, from the code location
# a bad row on D (the middle day) for a blocking check of each kind: a pair comparison (GX) and
# a sum computed in SQL against bounds (GX)
BAD_ON_D = {
    "sessions_valid": "UPDATE analytics.sessions SET end_ts = start_ts - interval '1 hour' "
    "WHERE transaction_id = 'T3'",
    "utilisation_minutes_sum_to_hour": BAD_ROWS["utilisation_minutes_sum_to_hour"],
}
UNDO = {
    "sessions_valid": "UPDATE analytics.sessions SET end_ts = start_ts + interval '3 hours' "
    "WHERE transaction_id = 'T3'",
    "utilisation_minutes_sum_to_hour": "UPDATE analytics.utilisation_hourly SET "
    "minutes_available = minutes_available - 5 WHERE hour_ts = '2025-06-10 03:00+00'",
}
ASSET_OF = {"sessions_valid": "sessions", "utilisation_minutes_sum_to_hour": "utilisation"}


def _range_tags(days) -> dict:
    return {
        "dagster/asset_partition_range_start": days[0].isoformat(),
        "dagster/asset_partition_range_end": days[-1].isoformat(),
    }


def _materialize(url, instance, selection=None, days=DAYS, **kw) -> dg.ExecuteInProcessResult:
    if len(days) > 1:
        kw["tags"] = _range_tags(days)
    elif selection is None:
        kw["partition_key"] = days[0].isoformat()
    else:  # `partition_key` wants a selection of assets; a run of checks alone takes the tag
        kw["tags"] = {"dagster/partition": days[0].isoformat()}
    return dg.materialize(
        [*ASSETS, *emissions_asset.ASSETS, *CHECKS, *emissions_asset.CHECKS],
        instance=instance,
        selection=selection,
        resources={"database": DatabaseResource(url=url)},
        raise_on_error=False,
        **kw,
    )


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def three_days(db, database_url, instance):
    """The scenario's three days materialised (a run per day), then every check run once for the
    three days: each passes on each day, one evaluation per check and day."""
    _scenario(db)
    for day in DAYS:
        result = _materialize(database_url, instance, days=[day])
        assert result.success, [str(e.event_specific_data.error)[:500] for e in result.get_step_failure_events()]  # fmt: skip
    result = _materialize(database_url, instance, dg.AssetSelection.all_asset_checks())
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert all(e.passed for e in evaluations), [
        (e.check_name, e.partition) for e in evaluations if not e.passed
    ]
    names = {k.name for c in [*CHECKS, *emissions_asset.CHECKS] for k in c.check_keys}
    assert sorted((e.check_name, e.partition) for e in evaluations) == sorted(
        (n, d.isoformat()) for n in names for d in DAYS
    )
    return db


def _status(db, asset: str) -> dict:
    rows = db.execute(
        "SELECT day, status, detail FROM analytics.partition_status WHERE asset = %s", (asset,)
    )
    return {day: (status, detail) for day, status, detail in rows.fetchall()}


@pytest.mark.parametrize("check", list(BAD_ON_D))
def test_a_range_run_fails_the_day_with_the_bad_row_and_only_that_day(
    three_days, database_url, instance, check
):
    db = three_days
    db.execute(BAD_ON_D[check])
    asset = ASSET_OF[check]
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    ranged = _materialize(database_url, instance, dg.AssetSelection.checks(key))
    # blocking: the failed day fails the step (so the run), the others are green
    assert not ranged.success
    evaluations = {e.partition: e for e in ranged.get_asset_check_evaluations()}
    assert {p: e.passed for p, e in evaluations.items()} == {
        D0.isoformat(): True,
        D1.isoformat(): False,
        D2.isoformat(): True,
    }
    bad = evaluations[D1.isoformat()]
    assert bad.blocking is True and bad.severity == dg.AssetCheckSeverity.ERROR
    # the session; the hour of each of the three connectors
    assert bad.metadata["failing_rows"].value == {"sessions_valid": 1}.get(check, 3)
    sample = bad.metadata["failures"].value
    assert "charge_point_id=CP-A" in sample and "np.datetime64" not in sample
    if check == "sessions_valid":  # names the session, with readable UTC times
        assert "session_id=CP-A:T3 charge_point_id=CP-A evse_id=1 connector_id=1" in sample
        assert "start_ts=2025-06-10 08:00:00Z" in sample
    assert evaluations[D0.isoformat()].metadata["rows"].value > 0
    assert "failures" not in evaluations[D0.isoformat()].metadata
    # stored per partition, each the current one of its day's materialization
    [info] = [
        i
        for i in instance.event_log_storage.get_asset_check_partition_info([key])
        if i.partition_key == D1.isoformat()
    ]
    assert info.latest_execution_status.value == "FAILED" and info.is_current
    statuses = {
        i.partition_key: i.latest_execution_status.value
        for i in instance.event_log_storage.get_asset_check_partition_info([key])
    }
    assert statuses == {D0.isoformat(): "SUCCEEDED", D1.isoformat(): "FAILED",
                        D2.isoformat(): "SUCCEEDED"}  # fmt: skip
    # the failed day is recorded failed for its asset; the others stay ok
    assert _status(db, asset) == {
        D0: ("ok", ""),
        D1: ("failed", f"blocking check {check} failed"),
        D2: ("ok", ""),
    }

    # a one-day run of the same check: one result for its partition, the same as the range's
    single = _materialize(database_url, instance, dg.AssetSelection.checks(key), days=[D1])
    [one] = single.get_asset_check_evaluations()
    assert (one.partition, one.passed) == (D1.isoformat(), False)
    assert one.metadata == bad.metadata

    # put right, the range passes again and lifts the failure it recorded
    db.execute(UNDO[check])
    again = _materialize(database_url, instance, dg.AssetSelection.checks(key))
    assert again.success and all(e.passed for e in again.get_asset_check_evaluations())
    assert _status(db, asset)[D1] == ("ok", "")


def _line(db, day, key, session, pis, category="missing_payment"):
    db.execute(
        """INSERT INTO analytics.reconciliation_lines VALUES (%s, %s, %s, 'S1', 'GBP', 2,
               100, 0, 0, 0, 0, 0, 0, 0, %s, 0, 0, 0, %s, 'crafted')""",
        (day, key, session, pis, category),
    )


def _site_day(db, day, net, captured=0):
    db.execute(
        """INSERT INTO analytics.reconciliation_site_day (day, site_id, currency, sessions,
               expected_gross, captured, refunded, disputed, fees, net, bt_net, paid_out,
               settled_elsewhere, n_matched, n_amount_mismatch, n_missing_payment,
               n_orphan_payment, n_duplicate_payment, n_refunded, n_partially_refunded,
               n_disputed, n_failed)
           VALUES (%s, 'S1', 'GBP', 1, 100, %s, 0, 0, 0, %s, %s, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)""",
        (day, captured, net, net),
    )


def test_per_day_results_of_a_range_equal_the_days_own(three_days, database_url):
    """Every daily check: one call for the three days gives each day what a call for that day
    alone gives, with bad rows on several days, a key on two days (not a key twice in a day)
    and a payment and a session reconciled on two days (a key twice for both)."""
    db = three_days
    db.execute(  # T2's key on D+1 as well: unique within each day
        """INSERT INTO analytics.sessions (day, session_id, charge_point_id, transaction_id,
               evse_id, connector_id, start_ts, end_ts, duration_min, energy_wh)
           SELECT %s, session_id, charge_point_id, 'T2b', evse_id, connector_id,
                  start_ts + interval '1 day', end_ts + interval '1 day', duration_min, energy_wh
           FROM analytics.sessions WHERE transaction_id = 'T2'""",
        (D2,),
    )
    for check, sql in BAD_ROWS.items():
        if check != "raw_timestamps_after_registration":  # that one would fail every day
            db.execute(sql)
    db.execute(BAD_ON_D["sessions_valid"])
    db.execute(  # D-1: a negative energy too
        "UPDATE analytics.sessions SET energy_wh = -1 WHERE day = %s AND transaction_id = 'T1'",
        (D0,),
    )
    _line(db, D0, "CP-A:T1", "CP-A:T1", "pi_a")
    _line(db, D1, "CP-A:T1", "CP-A:T1", "")  # the session of D-1 again
    _line(db, D1, "CP-A:T2", "CP-A:T2", "pi_b")
    _line(db, D2, "pi_b", None, "pi_b", "orphan_payment")  # the payment of D again
    _line(db, D2 + timedelta(days=3), "CP-A:T9", "CP-A:T9", "")
    _line(db, D2, "CP-A:T9", "CP-A:T9", "pi_c")  # a session also on a day outside the range
    _site_day(db, D0, 0)
    _site_day(db, D1, 5)  # not what its lines add up to
    _site_day(db, D2, 0)

    failing = set()
    for fn in FUNCTIONS:
        ranged = fn(database_url, DAYS)
        assert list(ranged) == DAYS, fn.__name__
        for day in DAYS:
            [(only, alone)] = fn(database_url, [day]).items()
            assert only == day
            got = ranged[day]
            assert (got.passed, got.severity, got.metadata) == (
                alone.passed,
                alone.severity,
                alone.metadata,
            ), (fn.__name__, day)
            if not got.passed:
                failing.add((fn.__name__.removeprefix("check_"), day))
    assert {
        ("sessions_valid", D0),
        ("sessions_valid", D1),
        ("reconciliation_no_session_twice", D0),
        ("reconciliation_no_session_twice", D1),
        ("reconciliation_no_session_twice", D2),
        ("reconciliation_totals_balance", D1),
    } <= failing
    assert ("sessions_valid", D2) not in failing
    assert ("reconciliation_totals_balance", D0) not in failing
    # each day's figures are its own
    unusual = checks.check_sessions_unusual(database_url, DAYS)
    assert {d: r.metadata["zero_length"].value for d, r in unusual.items()} == {D0: 0, D1: 1, D2: 0}
    twice = rec.check_reconciliation_no_session_twice(database_url, DAYS)
    # the key and the day of each line it is on
    assert "key=session CP-A:T1 line_day=2025-06-10" in twice[D0].metadata["failures"].value
    assert "key=payment pi_b" in twice[D2].metadata["failures"].value


def test_a_day_without_rows_passes_with_zero_rows(db, database_url):
    days = [D0, D1]
    for fn in FUNCTIONS:
        results = fn(database_url, days)
        assert list(results) == days
        assert all(r.passed and r.metadata["rows"].value == 0 for r in results.values())


def _session(db, day, tid, start):
    db.execute(
        """INSERT INTO analytics.sessions (day, session_id, charge_point_id, transaction_id,
               evse_id, connector_id, start_ts, end_ts, duration_min, energy_wh)
           VALUES (%s, %s, 'CP-A', %s, 1, 1, %s, %s, 30, 1000)""",
        (day, f"CP-A:{tid}", tid, start, start + timedelta(minutes=30)),
    )


def test_great_expectations_objects_are_built_once_and_the_clock_is_a_parameter(
    db, database_url, monkeypatch
):
    """One data source, suite and validation definition per check for the process, reused by
    every call; `now + 5 min` reaches the suite as a parameter at each run; a passing range is
    one validation."""
    now = datetime.now(UTC)
    _session(db, D0, "T1", now - timedelta(minutes=1))
    _session(db, D1, "T2", now + timedelta(hours=1))  # a start ahead of the clock
    validation = checks.SESSIONS_UNUSUAL
    definition = validation.definition()
    [expectation] = definition.suite.expectations
    assert expectation.max_value == {"$PARAMETER": "now_plus_5"}

    runs = []
    cls = type(definition)
    original = cls.run
    monkeypatch.setattr(cls, "run", lambda self, **kw: runs.append(kw) or original(self, **kw))
    results = checks.check_sessions_unusual(database_url, [D0, D1])
    assert results[D0].passed and not results[D1].passed
    assert "start_ts=" in results[D1].metadata["failures"].value
    # the verdict, then the failing rows with their days (only because one failed)
    assert [kw["result_format"] if isinstance(kw["result_format"], str) else "COMPLETE"
            for kw in runs] == ["BOOLEAN_ONLY", "COMPLETE"]  # fmt: skip
    assert runs[0]["expectation_parameters"]["now_plus_5"] > now
    runs.clear()
    assert checks.check_sessions_valid(database_url, [D0, D1])[D1].passed
    assert len(runs) == 1  # a passing range: one validation

    for _ in range(5):
        checks.check_sessions_unusual(database_url, [D0])
        checks.check_sessions_unusual(database_url, [D0, D1])
    assert validation.definition() is definition
    ctx = quality._context()
    for name in ("sessions_unusual", "sessions"):
        assert [s.name for s in ctx.suites.all()].count(f"{name}_suite") == 1
        assert [v.name for v in ctx.validation_definitions.all()].count(name) == 1
        assert list(ctx.data_sources.all()).count(f"chargeops_{name}") == 1


def test_the_code_location_loads_without_great_expectations():
    code = "import sys, pipelines.definitions; print('great_expectations' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
