"""Site-local days (issue 17, row 4): the daily figures a person reads per site are on the site's
local day, while the analytics stay partitioned by UTC day.

Pure: day lengths around the fall-back of Sun 2 Nov 2025 (25 hours) and the spring-forward of
Sun 8 Mar 2026 (23 hours) in America/Los_Angeles, the UTC partitions of a local day, the split at
local midnight, gaps mapped to local days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from chargeops import local_days as ld
from chargeops.completeness import Gap

LA, BERLIN = "America/Los_Angeles", "Europe/Berlin"
FALL, SPRING = date(2025, 11, 2), date(2026, 3, 8)


def local(y, mo, d, h, mi, tz=LA, fold=0) -> datetime:
    """A local wall time as a UTC instant (`fold=1`: the second of a repeated hour)."""
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)


# -- pure -----------------------------------------------------------------------------------------
def test_local_days_are_23_24_or_25_hours_and_overlap_two_utc_days():
    assert ld.day_minutes(FALL, LA) == 1500 and ld.day_minutes(SPRING, LA) == 1380
    assert ld.day_minutes(date(2025, 11, 3), LA) == 1440 and ld.day_minutes(FALL, "UTC") == 1440
    assert ld.bounds(FALL, LA) == (
        datetime(2025, 11, 2, 7, tzinfo=UTC), datetime(2025, 11, 3, 8, tzinfo=UTC),
    )  # fmt: skip
    # west of UTC a local day ends in the next UTC day, east of it it starts in the one before
    assert ld.utc_days(FALL, FALL, LA) == (FALL, date(2025, 11, 3))
    assert ld.utc_days(FALL, FALL, BERLIN) == (date(2025, 11, 1), FALL)
    assert ld.utc_span(FALL, FALL, [LA, BERLIN, None]) == (date(2025, 11, 1), date(2025, 11, 3))
    assert ld.touched(FALL, LA) == (date(2025, 11, 1), FALL)
    # the dashboard of a morning: yesterday, or the day before with a site west of UTC
    today = date(2025, 11, 4)
    assert ld.last_whole_day(today, ["UTC", BERLIN]) == date(2025, 11, 3)
    assert ld.last_whole_day(today, ["UTC", LA]) == FALL


def test_intervals_are_cut_at_local_midnight_and_gaps_mapped_to_local_days():
    sites = pl.DataFrame({"site_id": ["PA"], "timezone": [LA]})
    # 22:00 PST on 2 Nov to 02:00 PST on 3 Nov: 120 minutes on each local day
    df = pl.DataFrame(
        {"site_id": ["PA"], "start_ts": [local(2025, 11, 2, 22, 0)],
         "end_ts": [local(2025, 11, 3, 2, 0)], "duration_min": [240.0]},
    ).with_columns(pl.col("start_ts", "end_ts").cast(ld.TS))  # fmt: skip
    cut = ld.split_local_days(df, sites).sort("day")
    assert cut["day"].to_list() == [FALL, date(2025, 11, 3)]
    assert cut["share"].to_list() == [0.5, 0.5]
    assert cut["end_ts"][0] == datetime(2025, 11, 3, 8, tzinfo=UTC)  # local midnight

    # UTC 3 Nov failed: LA's 2 Nov (2-3 Nov UTC) is partial, its 3 Nov missing only if 4 Nov is
    found = [Gap("sessions", date(2025, 11, 3), "failed")]
    got = ld.local_gaps(found, [LA], FALL, date(2025, 11, 3))
    assert [(g.day, g.status) for g in got] == [(FALL, "partial"), (date(2025, 11, 3), "partial")]
    both = [*found, Gap("sessions", date(2025, 11, 4), "missing")]
    got = ld.local_gaps(both, [LA], date(2025, 11, 3), date(2025, 11, 3))
    assert [(g.day, g.status) for g in got] == [(date(2025, 11, 3), "missing")]
    # with a Berlin site too (its 3 Nov is 2-3 Nov UTC), the day is missing only where it is
    # missing everywhere
    got = ld.local_gaps(both, [LA, BERLIN], date(2025, 11, 3), date(2025, 11, 3))
    assert [g.status for g in got] == ["partial"]
    assert ld.relevant(found, ["UTC"], FALL, FALL) == []
    assert ld.relevant(found, [LA], FALL, FALL) == found

    with pytest.raises(ValueError, match="site PA: unknown time zone 'Mars/Olympus'"):
        ld.with_local_day(df, sites.with_columns(timezone=pl.lit("Mars/Olympus")), "start_ts")
