"""The robustness sweep (tests/sweep.py): 24 (seed, end date) combinations, faults, missing stops,
meter resets and offline periods at their maximum, both European and both US clock changes, a
new year and a leap day; no failed run or blocking check, and every invariant holds."""

from __future__ import annotations

import pytest

from tests import sweep

pytestmark = pytest.mark.once


def test_the_sweep_covers_what_it_promises():
    combos = sweep.combos()
    assert len(combos) >= 20
    assert len({(c.seed, c.end) for c in combos}) == len(combos)
    reasons = " ".join(why for _, why in sweep.DATES)
    for needed in ("US clocks go forward", "US clocks go back", "European clocks go forward",
                   "European clocks go back", "new year", "leap day"):  # fmt: skip
        assert needed in reasons


@pytest.mark.parametrize("end", [d for d, _ in sweep.DATES], ids=str)
def test_every_asset_on_a_faulty_fleet(db, database_url, tmp_path, end):
    combos = [c for c in sweep.combos() if c.end == end]
    outcome = sweep.run_date(database_url, tmp_path, end, combos)
    problems = sweep.invariants(database_url, outcome)
    assert problems == [], "\n".join(problems[:40])
    # the faults were there to be survived
    assert outcome.truth.height > 0
    assert outcome.truth["missing_stop"].any()
    if end == sweep.DATES[0][0]:  # the invariants can fail: break three things, see them named
        db.execute(
            "UPDATE analytics.sessions SET energy_wh = energy_wh + 1 WHERE session_id = "
            "(SELECT min(session_id) FROM analytics.sessions WHERE energy_source = 'meter')"
        )
        db.execute(
            "UPDATE analytics.utilisation_hourly SET minutes_unknown = minutes_unknown + 1 "
            "WHERE hour_ts = (SELECT min(hour_ts) FROM analytics.utilisation_hourly)"
        )
        db.execute(  # the load curve the reports' energy comes from
            "UPDATE analytics.load_curve SET energy_kwh = energy_kwh + 10 WHERE day = %s AND "
            "(site_id, interval_start) = (SELECT site_id, min(interval_start) "
            "FROM analytics.load_curve WHERE day = %s GROUP BY site_id ORDER BY site_id LIMIT 1)",
            (outcome.days[-1], outcome.days[-1]),
        )
        broken = "\n".join(sweep.invariants(database_url, outcome))
        assert "energy is not meter stop - start" in broken
        assert "do not add up to 60 minutes" in broken
        assert "energy delivered: file" in broken
