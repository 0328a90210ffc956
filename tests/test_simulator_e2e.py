"""The simulated fleet against the real collector and PostgreSQL, and the demo command."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from chargeops.settings import Settings
from ingest.clock import SimClock
from ingest.registry import register_fleet
from ingest.server import Collector
from ingest.simulator import default_fleet, run_fleet


def ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


@pytest.fixture
def fleet():
    base = default_fleet(6, days=2, seed=7, start=datetime(2025, 5, 5, tzinfo=UTC))
    # more offline windows than usual, so queued-and-late messages are certain in two days
    return dataclasses.replace(base, offline_rate_per_day=1.5, validate_messages=False)


async def test_seeded_fleet_lands_consistently(db, database_url, tmp_path, fleet):
    register_fleet(db, fleet)
    clock = SimClock(fleet.start)
    settings = Settings(port=0, auto_register=False, data_dir=tmp_path)
    async with Collector(settings, database_url, clock=clock) as col:
        summary = await run_fleet(fleet, col.url(), clock=clock, progress=False)
        await col.writer.flush()
    assert summary.errors == 0, summary.error_samples
    assert summary.late_messages > 0

    # both OCPP versions spoke and booted
    versions = dict(
        db.execute(
            "SELECT ocpp_version, count(*) FROM charge_point WHERE last_boot_at IS NOT NULL GROUP BY 1"
        )
    )
    assert set(versions) == {"1.6", "2.0.1"}

    # every simulated session is one transaction, with the energy the simulator delivered
    truth = [s for s in summary.sessions]
    rows = db.execute(
        """SELECT charge_point_id, transaction_id, ocpp_version, evse_id, start_ts, stop_ts,
                  meter_start_wh, meter_stop_wh FROM transaction"""
    ).fetchall()
    assert len(rows) == len(truth) > 10
    by_201 = {(r[0], r[1]): r for r in rows if r[2] == "2.0.1"}
    by_16 = {(r[0], r[3], r[4]): r for r in rows if r[2] == "1.6"}
    checked = 0
    for s in truth:
        start, stop = ms(s.start), ms(s.stop) if s.stop else None  # OCPP carries milliseconds
        if s.ocpp_version == "2.0.1":
            row = by_201[(s.charge_point_id, s.transaction_id)]
        else:
            row = by_16[(s.charge_point_id, s.evse_id, start)]
        assert row[4] == start
        assert row[6] == s.meter_start
        if s.stop is not None and not s.missing_stop:
            assert row[5] == stop and row[7] - row[6] == s.energy_wh
            checked += 1
        else:
            assert row[5] is None
    assert checked > 10

    # the register samples inside each completed session agree with its start and stop
    mismatches = db.execute(
        """SELECT t.charge_point_id, t.transaction_id, t.meter_start_wh, t.meter_stop_wh,
                  min(m.value), max(m.value)
           FROM transaction t JOIN meter_value m
             ON m.charge_point_id = t.charge_point_id AND m.transaction_id = t.transaction_id
            AND m.measurand = 'Energy.Active.Import.Register' AND m.phase = ''
           WHERE t.stop_ts IS NOT NULL
           GROUP BY 1, 2, 3, 4
           HAVING min(m.value) < t.meter_start_wh OR max(m.value) > t.meter_stop_wh"""
    ).fetchall()
    assert mismatches == []

    # late (offline-queued) messages keep their original timestamps: received well after they
    # were taken, in simulated time
    late = db.execute(
        "SELECT count(*) FROM meter_value WHERE received_at - ts > interval '10 minutes'"
    ).fetchone()[0]
    assert late > 0
    assert db.execute("SELECT count(*) FROM transaction_event WHERE offline").fetchone()[0] > 0
    # connection events follow simulated time, inside the simulated period
    lo, hi = db.execute("SELECT min(ts), max(ts) FROM connection_event").fetchone()
    assert fleet.start <= lo and hi <= fleet.start + timedelta(days=fleet.days, minutes=5)
    offline = db.execute(
        "SELECT count(*) FROM connection_event WHERE event = 'disconnect'"
    ).fetchone()[0]
    assert offline >= len(summary.offline_windows)
