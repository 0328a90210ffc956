"""Site-local days (issue 17, row 4): the daily figures a person reads per site are on the site's
local day, while the analytics stay partitioned by UTC day.

The fixture site is Palo Alto-like (America/Los_Angeles) with sessions around the fall-back of
Sun 2 Nov 2025 (a 25-hour day) and the spring-forward of Sun 8 Mar 2026 (a 23-hour day), several
near local midnight so their UTC and local dates differ; beside it a Berlin site (east of UTC).
The expected figures are computed here, independently, from the raw rows with `zoneinfo`.

- pure: day lengths, the UTC partitions of a local day, the split at local midnight, gaps;
- on PostgreSQL, rows as the assets write them: the dashboard's local-day totals across both
  changes equal the sessions counted by local start date (and the load curve by local date);
- end to end (marker `once`): raw OCPP rows, the real assets materialised through Dagster for
  each UTC partition, then the dashboard and the compliance report's per-site table on local
  days, and a local day marked incomplete when one of its UTC partitions failed.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import psycopg
import pytest

from chargeops import local_days as ld
from chargeops.completeness import Gap
from chargeops.periods import day_period, parse_period
from reports import compliance
from reports import dashboard_data as dd
from tests.conftest import mark_ok

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


# -- the scenario ---------------------------------------------------------------------------------
# (site, charge point, local start, minutes): sessions of 30 minutes, 1 kWh per quarter hour;
# the comments give the local and the UTC date where they differ
SESSIONS = [
    ("PA", "CP-PA", local(2025, 11, 1, 12, 0), 30),
    ("PA", "CP-PA", local(2025, 11, 1, 23, 45), 30),  # across local midnight; UTC 2 Nov
    ("PA", "CP-PA", local(2025, 11, 2, 1, 30), 30),  # 01:30 PDT
    ("PA", "CP-PA", local(2025, 11, 2, 1, 30, fold=1), 30),  # 01:30 PST, the repeated hour
    ("PA", "CP-PA", local(2025, 11, 2, 16, 45), 30),  # UTC 3 Nov
    ("PA", "CP-PA", local(2025, 11, 2, 23, 45), 30),  # across local midnight; UTC 3 Nov
    ("PA", "CP-PA", local(2025, 11, 3, 0, 30), 30),
    ("PA", "CP-PA", local(2025, 11, 3, 18, 0), 30),  # UTC 4 Nov
    ("BER", "CP-BER", local(2025, 11, 2, 0, 30, BERLIN), 30),  # UTC 1 Nov
    ("BER", "CP-BER", local(2025, 11, 2, 23, 45, BERLIN), 30),
    ("PA", "CP-PA", local(2026, 3, 7, 10, 0), 30),
    ("PA", "CP-PA", local(2026, 3, 7, 23, 45), 30),  # across local midnight; UTC 8 Mar
    ("PA", "CP-PA", local(2026, 3, 8, 1, 45), 30),  # ends at 03:15 PDT, over the skipped hour
    ("PA", "CP-PA", local(2026, 3, 8, 3, 30), 30),
    ("PA", "CP-PA", local(2026, 3, 8, 17, 0), 30),  # UTC 9 Mar
    ("PA", "CP-PA", local(2026, 3, 8, 23, 45), 30),  # across local midnight; UTC 9 Mar
    ("PA", "CP-PA", local(2026, 3, 9, 0, 30), 30),
    ("PA", "CP-PA", local(2026, 3, 9, 20, 0), 30),  # UTC 10 Mar
]
ZONES = {"PA": LA, "BER": BERLIN}
# a fault on PA's second port: across UTC midnight (both pieces on local 1 Nov), and across
# local midnight (22:00 PST on 2 Nov to 02:00 PST on 3 Nov, all in UTC 3 Nov)
FAULTS = [
    (local(2025, 11, 1, 16, 0), local(2025, 11, 1, 18, 0)),
    (local(2025, 11, 2, 22, 0), local(2025, 11, 3, 2, 0)),
]
QUARTER = timedelta(minutes=15)


def by_local_date(pairs) -> dict:
    """{(site, local date): total} of (site, UTC instant, amount) pairs, with zoneinfo."""
    out: Counter = Counter()
    for site, ts, amount in pairs:
        out[(site, ts.astimezone(ZoneInfo(ZONES[site])).date())] += amount
    return dict(out)


def expected_sessions() -> dict:
    return by_local_date((site, start, 1) for site, _, start, _ in SESSIONS)


def expected_energy() -> dict:
    """kWh by the local date of each quarter hour of charging (1 kWh each)."""
    return by_local_date(
        (site, start + i * QUARTER, 1.0)
        for site, _, start, minutes in SESSIONS
        for i in range(minutes // 15)
    )


def expected_occupied() -> dict:
    """Hours occupied by the local date of each minute of charging."""
    return by_local_date(
        (site, start + timedelta(minutes=i), 1 / 60)
        for site, _, start, minutes in SESSIONS
        for i in range(minutes)
    )


def sites_rows(conn) -> None:
    conn.execute(
        """INSERT INTO site (site_id, name, timezone, country, grid_region) VALUES
           ('PA', 'Palo Alto Bryant St', 'America/Los_Angeles', 'US', 'CAMX'),
           ('BER', 'Berlin Mitte', 'Europe/Berlin', 'DE', 'DE')"""
    )
    conn.execute(
        """INSERT INTO charge_point (charge_point_id, site_id, max_power_w, current_type,
               registered_at)
           VALUES ('CP-PA', 'PA', 7400, 'AC', '2025-01-01'),
                  ('CP-BER', 'BER', 7400, 'AC', '2025-01-01')"""
    )


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


NOV = days_between(date(2025, 11, 1), date(2025, 11, 4))
MAR = days_between(date(2026, 3, 6), date(2026, 3, 10))


# -- on PostgreSQL, rows as the assets write them -------------------------------------------------
def test_local_day_totals_across_dst_equal_sessions_by_local_start_date(db, database_url):
    """analytics.sessions and the load curve as the sessions and energy assets write them (each
    row on the UTC day of its start or interval): the dashboard's per-site figures per local day
    equal the sessions counted by local start date, and the energy of each local date."""
    sites_rows(db)
    with db.cursor() as cur:
        cur.executemany(
            """INSERT INTO analytics.sessions (day, session_id, charge_point_id, transaction_id,
                   site_id, evse_id, connector_id, start_ts, end_ts, energy_wh)
               VALUES (%s, %s, %s, %s, %s, 1, 1, %s, %s, 2000)""",
            [
                (start.date(), f"{cp}:{i}", cp, str(i), site, start,
                 start + timedelta(minutes=minutes))
                for i, (site, cp, start, minutes) in enumerate(SESSIONS)
            ],
        )  # fmt: skip
        cur.executemany(
            """INSERT INTO analytics.load_curve (day, site_id, interval_start, energy_kwh, mean_kw)
               VALUES (%s, %s, %s, 1.0, 4.0)""",
            [
                (t.date(), site, t)
                for site, _, start, minutes in SESSIONS
                for t in (start + i * QUARTER for i in range(minutes // 15))
            ],
        )
    mark_ok(db, ["sessions", "energy"], [*NOV, *MAR])

    for period, changes in (("2025-11-01..2025-11-03", FALL), ("2026-03-07..2026-03-09", SPRING)):
        p = parse_period(period)
        data = dd.read(database_url, p)
        got_sessions = {
            (r["site_id"], r["day"]): r["sessions"]
            for r in data.sessions.filter(pl.col("day").is_between(p.start, p.end)).to_dicts()
        }
        got_energy = {
            (r["site_id"], r["day"]): pytest.approx(r["energy_kwh"])
            for r in data.energy.filter(pl.col("day").is_between(p.start, p.end)).to_dicts()
        }
        in_period = {k for k in expected_sessions() if p.start <= k[1] <= p.end}
        assert got_sessions == {k: expected_sessions()[k] for k in in_period}
        assert got_energy == {
            k: v for k, v in expected_energy().items() if p.start <= k[1] <= p.end
        }
        # the change day is counted whole, and its UTC day would say otherwise
        utc = Counter(start.date() for site, _, start, _ in SESSIONS if site == "PA")
        assert got_sessions[("PA", changes)] != utc[changes]
        # the network's day adds up its sites' local days; coverage is whole
        series = dd.daily_series(data).filter(pl.col("in_period"))
        for day, n in zip(series["day"], series["sessions"], strict=True):
            assert n == sum(v for (_, d), v in got_sessions.items() if d == day)
        assert dd.coverage(data, "sessions", p) == "complete"
        assert dd.days_note(data).startswith(
            "Days are each site's local day (America/Los_Angeles, Europe/Berlin)"
        )


# -- end to end: raw OCPP rows, the assets through Dagster ----------------------------------------
def _raw(conn) -> None:
    sites_rows(conn)
    conn.execute("INSERT INTO evse VALUES ('CP-PA', 1), ('CP-PA', 2), ('CP-BER', 1)")
    conn.execute(
        """INSERT INTO connector (charge_point_id, evse_id, connector_id) VALUES
           ('CP-PA', 1, 1), ('CP-PA', 2, 1), ('CP-BER', 1, 1)"""
    )
    tx, samples, statuses = [], [], []
    for i, (_, cp, start, minutes) in enumerate(SESSIONS):
        stop = start + timedelta(minutes=minutes)
        tx.append((cp, f"T{i}", start, 10_000 * i, stop, 10_000 * i + 2000))
        for k in range(minutes // 15 + 1):
            samples.append((start + k * QUARTER, cp, f"T{i}", 10_000 * i + 1000 * k))
        statuses += [(cp, 1, start, "Occupied"), (cp, 1, stop, "Available")]
    for a, b in FAULTS:
        statuses += [("CP-PA", 2, a, "Faulted"), ("CP-PA", 2, b, "Available")]
    beats = []
    for first, last in ((NOV[0], NOV[-1]), (MAR[0], MAR[-1])):
        t0 = datetime.combine(first, datetime.min.time(), UTC) - timedelta(hours=4)
        for cp, evse in (("CP-PA", 1), ("CP-PA", 2), ("CP-BER", 1)):
            statuses.append((cp, evse, t0, "Available"))
        t = t0
        while t < datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC):
            beats += [(t, "CP-PA"), (t, "CP-BER")]
            t += timedelta(minutes=10)
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO transaction (charge_point_id, transaction_id, ocpp_version, evse_id,
                   connector_id, start_ts, meter_start_wh, stop_ts, meter_stop_wh)
               VALUES (%s, %s, '2.0.1', 1, 1, %s, %s, %s, %s)""",
            tx,
        )
        cur.executemany(
            """INSERT INTO meter_value (ts, charge_point_id, evse_id, connector_id,
                   transaction_id, measurand, location, context, value, unit, raw_value,
                   received_at)
               VALUES (%s, %s, 1, 1, %s, 'Energy.Active.Import.Register', 'Outlet',
                       'Sample.Periodic', %s, 'Wh', '', %s)""",
            [(ts, cp, t, v, ts) for ts, cp, t, v in samples],
        )
        cur.executemany(
            """INSERT INTO status_event (ts, charge_point_id, evse_id, connector_id, status,
                   error_code, ocpp_version, received_at)
               VALUES (%s, %s, %s, 1, %s, 'NoError', '2.0.1', %s)""",
            [(ts, cp, evse, s, ts) for cp, evse, ts, s in statuses],
        )
        cur.executemany(
            "INSERT INTO connection_event (ts, charge_point_id, event) VALUES (%s, %s, 'heartbeat')",
            beats,
        )


@pytest.fixture(scope="module")
def world(database_url):
    """The raw scenario, and every UTC partition of both weeks materialised by the real assets
    (the ones the dashboard's local-day figures read)."""
    from pipelines.defs.analytics import assets
    from pipelines.defs.analytics.emissions_asset import emissions
    from pipelines.resources import DatabaseResource
    from tests.conftest import empty_database

    with psycopg.connect(database_url, autocommit=True) as conn:
        empty_database(conn)
        _raw(conn)
    chosen = [
        assets.connector_states, assets.sessions, assets.utilisation, assets.uptime,
        assets.energy, assets.peak_usage, emissions,
    ]  # fmt: skip
    for day in (*NOV, *MAR):
        result = dg.materialize(
            chosen,
            partition_key=day.isoformat(),
            resources={"database": DatabaseResource(url=database_url)},
            raise_on_error=False,
        )
        assert result.success, [
            str(e.event_specific_data.error)[:500] for e in result.get_step_failure_events()
        ]
    return database_url


@pytest.mark.once
def test_dashboard_figures_are_local_days_from_the_real_assets(world):
    """Sessions, energy, utilisation, uptime and outages per site and local day, computed by the
    real assets on UTC partitions and rolled up: equal to the raw rows' own local dates."""
    for period in ("2025-11-01..2025-11-03", "2026-03-07..2026-03-09"):
        p = parse_period(period)
        data = dd.read(world, p)

        def per_site_day(df: pl.DataFrame, col: str, p=p) -> dict:
            rows = df.filter(pl.col("day").is_between(p.start, p.end))
            totals = rows.group_by("site_id", "day").agg(pl.col(col).sum())
            return {(r["site_id"], r["day"]): r[col] for r in totals.to_dicts() if r[col]}

        def expected(table: dict, p=p) -> dict:
            return {k: pytest.approx(v) for k, v in table.items() if p.start <= k[1] <= p.end}

        assert per_site_day(data.sessions, "sessions") == expected(expected_sessions())
        assert per_site_day(data.energy, "energy_kwh") == expected(expected_energy())
        assert per_site_day(data.utilisation, "occupied_hours") == expected(expected_occupied())
        # a port's local day is 25 or 23 hours long on the change day
        pa = data.uptime.filter(pl.col("site_id") == "PA")
        minutes = {
            (r["evse_id"], r["day"]): r["minutes_in_period"]
            for r in pa.group_by("evse_id", "day").agg(pl.col("minutes_in_period").sum()).to_dicts()
        }
        for day in days_between(p.start, p.end):
            assert minutes[(1, day)] == ld.day_minutes(day, LA)
        # CO2 follows the energy of the local day (annual factors: a site's grams per kWh are
        # the same every day)
        saved = per_site_day(data.emissions, "net_saving_g")
        energy = per_site_day(data.energy, "energy_kwh")
        assert set(saved) == set(energy)
        for site in {k[0] for k in energy}:
            ratios = [saved[k] / v for k, v in energy.items() if k[0] == site]
            assert max(ratios) == pytest.approx(min(ratios), rel=1e-9)

    # the faults: 120 minutes on each of 1, 2 and 3 Nov local; the one across UTC midnight is
    # one piece again, the one across local midnight two
    data = dd.read(world, parse_period("2025-11-01..2025-11-03"))
    pieces = data.outages.filter(pl.col("evse_id") == 2).sort("start_ts")
    assert pieces.select("day", "duration_min").rows() == [
        (date(2025, 11, 1), pytest.approx(120.0)),
        (FALL, pytest.approx(120.0)),
        (date(2025, 11, 3), pytest.approx(120.0)),
    ]
    port2 = data.uptime.filter((pl.col("evse_id") == 2) & (pl.col("day") == FALL)).row(
        0, named=True
    )
    assert (port2["minutes_in_period"], port2["outage_minutes"]) == (1500, pytest.approx(120.0))


@pytest.mark.once
def test_dashboard_and_compliance_tables_show_the_local_day(world):
    """The fall-back Sunday: 4 sessions started at Palo Alto on the local day, though the UTC day
    has 2 of them (and 3 sessions): the dashboard's site row and the compliance report's per-site
    table say 4, with the local day's energy and its 1,500 port minutes."""
    want_pa = expected_sessions()[("PA", FALL)]
    assert want_pa == 4
    with psycopg.connect(world) as conn:
        utc_pa = conn.execute(
            "SELECT count(*) FROM analytics.sessions WHERE site_id = 'PA' AND day = %s", (FALL,)
        ).fetchone()[0]
    assert utc_pa == 3  # what the UTC day would have said

    data = dd.read(world, day_period(FALL))
    rows = {r["site_id"]: r for r in dd.sites(data)}
    assert rows["PA"]["sessions"] == 4
    assert rows["PA"]["energy"]["value"] == pytest.approx(expected_energy()[("PA", FALL)])
    assert rows["BER"]["sessions"] == expected_sessions()[("BER", FALL)] == 2
    assert dd.headline(data)["sessions"]["value"] == 6
    assert dd.coverage(data, "sessions", data.period) == "complete"

    c = compliance.read(world, "2025-11-02", FALL, FALL)
    ports = compliance.port_uptime(c)
    table = {r["site_id"]: r for r in compliance.site_figures(c, ports).to_dicts()}
    assert table["PA"]["sessions"] == 4
    assert table["PA"]["energy_kwh"] == pytest.approx(expected_energy()[("PA", FALL)])
    assert table["BER"]["sessions"] == 2
    assert compliance.network_figures(c, ports)["sessions"] == 6
    pa_ports = ports.filter(pl.col("site_id") == "PA")
    assert pa_ports["minutes_in_period"].to_list() == [1500.0, 1500.0]
    assert pa_ports.filter(pl.col("evse_id") == 2)["outage_minutes"][0] == pytest.approx(120.0)
    ctx = compliance.context(c, compliance.em.load_factors(), datetime.now(UTC))
    html = compliance.render_html(ctx)
    assert "each site's local days: America/Los_Angeles, Europe/Berlin" in html


@pytest.mark.once
def test_a_local_day_with_a_failed_utc_partition_is_incomplete_not_zero(world):
    """The sessions of UTC 4 Nov failed: Palo Alto's 3 Nov (which ends at 08:00 UTC on 4 Nov) is
    incomplete, shown from the UTC day that exists and marked; Berlin's 3 Nov is whole."""
    with psycopg.connect(world, autocommit=True) as conn:
        conn.execute(
            "UPDATE analytics.partition_status SET status = 'failed', detail = 'test' "
            "WHERE asset = 'sessions' AND day = '2025-11-04'"
        )
        try:
            data = dd.read(world, day_period(date(2025, 11, 3)))
            sessions = dd.headline(data)["sessions"]
            assert sessions["status"] == "partial" and sessions["change_pct"] is None
            # the banner names the UTC day (revenue and reconciliation were not materialised)
            lines = [line for line in dd.banner(data) if line.startswith("sessions")]
            assert lines == ["sessions: failed on 2025-11-04 (test)"]
            pa = dd.scoped(data, ("PA",))
            assert dd.coverage(pa, "sessions", pa.period) == "partial"
            assert dd.coverage(dd.scoped(data, ("BER",)), "sessions", pa.period) == "complete"
            # the trend leaves Palo Alto's day blank rather than drawing part of it
            series = dd.daily_series(pa).filter(pl.col("day") == date(2025, 11, 3))
            assert series["sessions"].to_list() == [None]

            c = compliance.read(world, "2025-11-03", date(2025, 11, 3), date(2025, 11, 3))
            assert [(g.asset, g.day) for g in c.gaps] == [("sessions", date(2025, 11, 4))]
        finally:
            conn.execute(
                "UPDATE analytics.partition_status SET status = 'ok', detail = '' "
                "WHERE asset = 'sessions' AND day = '2025-11-04'"
            )
