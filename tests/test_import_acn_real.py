"""The real ACN-Data file (JPL, May-September 2021, in ../shared; never copied into the project):
all 2,114 sessions imported, totals checked against a direct computation from the JSON.

Its days are before the default first Dagster partition (2024-01-01), so for a few days the
sessions and energy are computed with the same read + pure functions the assets call
(`read_window`, `build_sessions`, `energy_connector_day`) rather than through `dg.materialize`."""

import json
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from chargeops.cli import main
from pipelines.analytics import energy as energy_logic
from pipelines.analytics import sessions as sessions_logic
from pipelines.raw import REGISTER, read_window

ACN_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "acn-jpl-2021"
ACN_FILE = ACN_DIR / "acndata_sessions.json"
DAYS = [date(2021, 5, 4), date(2021, 7, 20), date(2021, 9, 13)]

pytestmark = pytest.mark.skipif(not ACN_FILE.is_file(), reason=f"{ACN_FILE} not present")


def _direct() -> list[dict]:
    """Each session straight from the JSON: UTC start/stop, kWh, and where charging ended."""
    out = []
    for item in json.loads(ACN_FILE.read_text()):
        start = parsedate_to_datetime(item["connectionTime"]).astimezone(UTC)
        stop = parsedate_to_datetime(item["disconnectTime"]).astimezone(UTC)
        done = item["doneChargingTime"]
        done = parsedate_to_datetime(done).astimezone(UTC) if done else None
        end = done if done is not None and start < done < stop else stop
        out.append({"start": start, "stop": stop, "kwh": item["kWhDelivered"], "end": end})
    return out


def _kwh_in_day(s: dict, day: date) -> float:
    """Energy delivered in the UTC day: spread evenly from the start to the end of charging."""
    d0 = datetime.combine(day, time(0), tzinfo=UTC)
    d1 = d0 + timedelta(days=1)
    overlap = (min(s["end"], d1) - max(s["start"], d0)).total_seconds()
    return s["kwh"] * max(overlap, 0.0) / (s["end"] - s["start"]).total_seconds()


def test_real_acn_file_imports_every_session_with_its_energy(db, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    direct = _direct()
    assert main(["import", "acn", str(ACN_FILE)]) == 0

    n, kwh, first, last, cps = db.execute(
        """SELECT count(*), sum(meter_stop_wh - meter_start_wh) / 1000, min(start_ts),
                  max(stop_ts), count(DISTINCT charge_point_id)
           FROM transaction WHERE source = 'acn'"""
    ).fetchone()
    assert n == len(direct) == 2114
    assert kwh == pytest.approx(sum(s["kwh"] for s in direct), abs=1e-6)
    assert first == min(s["start"] for s in direct)
    assert last == max(s["stop"] for s in direct)
    assert cps == 42
    # the register samples of every transaction end at its energy
    assert db.execute(
        """SELECT sum(v) / 1000 FROM (SELECT max(value) v FROM meter_value
           GROUP BY charge_point_id, transaction_id) t"""
    ).fetchone()[0] == pytest.approx(kwh, abs=1e-6)

    for day in DAYS:
        started = [s for s in direct if s["start"].date() == day]
        assert started, day
        window = read_window(database_url, day, meter="sessions", connections=False)
        sessions = sessions_logic.build_sessions(window)
        assert sessions.height == len(started)
        assert sessions["energy_wh"].sum() / 1000 == pytest.approx(
            sum(s["kwh"] for s in started), abs=1e-6
        )
        assert sessions["energy_mismatch"].sum() == 0
        meter = read_window(
            database_url, day, meter="day", statuses=False, connections=False,
            measurands=(REGISTER,),
        )  # fmt: skip
        per_connector = energy_logic.energy_connector_day(meter, sessions)
        assert per_connector["energy_kwh"].sum() == pytest.approx(
            sum(_kwh_in_day(s, day) for s in direct), abs=1e-6
        )
        assert per_connector["sessions"].sum() == len(started)
