"""One broken or hostile charger costs no other charger its figures: real OCPP clients against
the collector, then the day's assets, checks and the EV-ChART files in a real PostgreSQL.

Observed before: a StatusNotification stamped 2100 failed the blocking raw-timestamp check, so
uptime, utilisation and peak usage were missing that day for every charger; a meter value of
"1e308" kWh was stored as Infinity, session energy became inf and `chargeops report evchart`
crashed with decimal.InvalidOperation, writing no file for anyone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from ocpp.v16 import call

from chargeops.periods import quarter_label, quarter_start
from ingest.registry import add_charge_point
from pipelines.defs.analytics import emissions_asset
from pipelines.defs.analytics.assets import ASSETS
from pipelines.defs.analytics.checks import CHECKS
from pipelines.resources import DatabaseResource
from reports import evchart
from tests.conftest import charge_point

# the collector, every asset and the files on one server; CI runs these once (marker `once`)
pytestmark = pytest.mark.once


def _z(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _session(cp, start: datetime, meter: list[tuple[int, str, str]]) -> None:
    """A 1.6 session on connector 1: Preparing, start, samples (minutes after start, value,
    unit), stop at the last one, Available."""
    await cp.call(call.StatusNotification(1, "NoError", "Preparing", timestamp=_z(start)))
    started = await cp.call(call.StartTransaction(1, "TAG", meter_start=1000, timestamp=_z(start)))
    tx = started.transaction_id
    await cp.call(call.StatusNotification(1, "NoError", "Charging", timestamp=_z(start)))
    for minutes, value, unit in meter:
        ts = start + timedelta(minutes=minutes)
        await cp.call(
            call.MeterValues(
                1,
                [{"timestamp": _z(ts), "sampledValue": [{"value": value, "unit": unit}]}],
                transaction_id=tx,
            )
        )
    stop = start + timedelta(minutes=meter[-1][0])
    await cp.call(call.StopTransaction(meter_stop=4000, timestamp=_z(stop), transaction_id=tx))
    await cp.call(call.StatusNotification(1, "NoError", "Available", timestamp=_z(stop)))


async def test_a_clock_in_2100_and_an_infinite_register_cost_no_one_else(
    collector, db, database_url, tmp_path
):
    now = datetime.now(UTC).replace(microsecond=0)
    day = now.date() if now.hour >= 3 else now.date() - timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(minutes=30)
    db.execute(
        "INSERT INTO site (site_id, name, country, timezone) VALUES ('S1', 'depot', 'US', 'UTC')"
    )
    for cp_id in ("GOOD", "BAD"):
        add_charge_point(db, cp_id, None, "S1")

    async with charge_point(collector, "GOOD") as good:
        await _session(good, start, [(10, "2000", "Wh"), (20, "3000", "Wh"), (30, "4000", "Wh")])
    async with charge_point(collector, "BAD") as bad:
        # a clock set to 2100, answered like any StatusNotification
        answer = await bad.call(
            call.StatusNotification(1, "NoError", "Faulted", timestamp="2100-01-01T00:00:00Z")
        )
        assert answer is not None
        await _session(bad, start, [(10, "2000", "Wh"), (20, "1e308", "kWh"), (30, "4000", "Wh")])
    await collector.writer.flush()

    # quarantined at ingest, with the reason; never stored as data
    quarantined = db.execute(
        "SELECT charge_point_id, kind, what, raw_value, reason FROM quarantine ORDER BY kind"
    ).fetchall()
    assert [(q[0], q[1], q[2], q[3]) for q in quarantined] == [
        ("BAD", "meter_value", "Energy.Active.Import.Register", "1e308"),
        ("BAD", "status_event", "Faulted", ""),
    ]
    assert "not finite" in quarantined[0][4] and "after it arrived" in quarantined[1][4]
    assert db.execute("SELECT count(*) FROM status_event WHERE ts > '2099-01-01'").fetchone() == (
        0,
    )
    assert db.execute(
        "SELECT count(*) FROM meter_value WHERE value = 'Infinity'::float8"
    ).fetchone() == (0,)

    # the day's assets run, no blocking check fails, both chargers have their figures
    result = dg.materialize(
        [*ASSETS, *CHECKS, *emissions_asset.ASSETS, *emissions_asset.CHECKS],
        partition_key=day.isoformat(),
        resources={"database": DatabaseResource(url=database_url)},
        raise_on_error=False,
    )
    assert result.success
    errors = [
        e.check_name
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert errors == []
    energy = dict(
        db.execute(
            "SELECT charge_point_id, energy_wh FROM analytics.sessions WHERE day = %s", (day,)
        ).fetchall()
    )
    assert energy == {"GOOD": 3000.0, "BAD": 3000.0}
    assert db.execute(
        "SELECT count(DISTINCT charge_point_id) FROM analytics.uptime_daily WHERE day = %s", (day,)
    ).fetchone() == (2,)
    assert db.execute(
        "SELECT count(DISTINCT charge_point_id) FROM analytics.utilisation_hourly WHERE day = %s",
        (day,),
    ).fetchone() == (2,)

    # and the regulator's files are written for everyone
    quarter = quarter_label(quarter_start(day).isoformat())
    report, written = evchart.produce(database_url, tmp_path, quarter)
    module2 = report.frames[2]
    assert set(module2["charger_id"].to_list()) == {"GOOD", "BAD"}
    assert set(module2["energy_kwh"].to_list()) == {"3.00"}
    assert written.files[2].is_file()


async def test_a_stored_infinity_from_before_the_fix_is_quarantined_at_reconstruction(
    collector, db, database_url
):
    """Rows stored before ingest screened them: the reconstruction leaves them out and lists
    them in analytics.quarantine, and the sessions check stays green."""
    from pipelines.defs.analytics.checks import check_sessions_unusual, check_sessions_valid

    now = datetime.now(UTC).replace(microsecond=0)
    day = now.date() if now.hour >= 3 else now.date() - timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=1)
    add_charge_point(db, "OLD", None)
    async with charge_point(collector, "OLD") as cp:
        await _session(cp, start, [(10, "2000", "Wh"), (30, "4000", "Wh")])
    await collector.writer.flush()
    db.execute(
        """INSERT INTO meter_value (ts, charge_point_id, evse_id, connector_id, transaction_id,
               measurand, location, context, value, unit, raw_value, received_at)
           SELECT %s, 'OLD', 1, 1, transaction_id, 'Energy.Active.Import.Register', 'Outlet',
                  'Sample.Periodic', 'Infinity', 'Wh', '1e308', now()
           FROM transaction WHERE charge_point_id = 'OLD'""",
        (start + timedelta(minutes=20),),
    )
    result = dg.materialize(
        ASSETS[:2],
        partition_key=day.isoformat(),
        resources={"database": DatabaseResource(url=database_url)},
        raise_on_error=False,
    )
    assert result.success
    assert db.execute("SELECT energy_wh FROM analytics.sessions").fetchone() == (3000.0,)
    [(reason,)] = db.execute("SELECT reason FROM analytics.quarantine").fetchall()
    assert "not finite" in reason
    assert check_sessions_valid(database_url, [day])[day].passed
    unusual = check_sessions_unusual(database_url, [day])[day]
    assert unusual.metadata["quarantined_values"].value == 1
