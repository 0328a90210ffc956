"""Freshness checks on the raw tables (issue 19 item 8): silence on a network that should be
sending is a finding. Real PostgreSQL, the real checks run through Dagster."""

import dagster as dg
import pytest

from chargeops.settings import ConfigError
from pipelines.defs.raw import definitions as raw
from pipelines.resources import DatabaseResource


def _evaluations(url: str) -> dict[str, dg.AssetCheckEvaluation]:
    defs = dg.Definitions.merge(
        raw.defs, dg.Definitions(resources={"database": DatabaseResource(url=url)})
    )
    result = defs.resolve_job_def("raw_freshness").execute_in_process(raise_on_error=False)
    assert result.success
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_silent_tables_warn_and_a_recent_row_passes(db, database_url):
    db.execute("INSERT INTO charge_point (charge_point_id) VALUES ('CP-1')")
    db.execute(
        """INSERT INTO status_event (ts, charge_point_id, evse_id, connector_id, status,
               error_code, ocpp_version, received_at)
           VALUES (now(), 'CP-1', 1, 1, 'Available', 'NoError', '2.0.1', now())"""
    )
    db.execute(  # a heartbeat 40 minutes ago: older than the default 15 minutes
        "INSERT INTO connection_event (ts, charge_point_id, event) "
        "VALUES (now() - interval '40 minutes', 'CP-1', 'heartbeat')"
    )
    db.commit()
    found = _evaluations(database_url)
    assert set(found) == {"meter_value", "status_event", "connection_event"}
    assert found["status_event"].passed
    assert found["status_event"].metadata["charge_points_last_hour"].value == 1
    assert not found["connection_event"].passed
    assert found["connection_event"].metadata["minutes_since_newest"].value == pytest.approx(
        40, abs=1
    )
    meter = found["meter_value"]  # nothing at all: stale, and it says why
    assert not meter.passed and meter.severity == dg.AssetCheckSeverity.WARN
    assert "none in the last 2 days" in meter.metadata["newest_row"].value


def test_the_freshness_setting_is_validated():
    assert raw.freshness_minutes({}) == 15
    assert raw.freshness_minutes({raw.FRESHNESS_ENV: "60"}) == 60
    with pytest.raises(ConfigError, match="whole number"):
        raw.freshness_minutes({raw.FRESHNESS_ENV: "soon"})
    with pytest.raises(ConfigError, match="outside"):
        raw.freshness_minutes({raw.FRESHNESS_ENV: "0"})
