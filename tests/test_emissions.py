"""Emissions: the README's worked example reproduced to the gram (pure and through the asset in a
real PostgreSQL), hourly against annual grid factors, the factor tables' checks, and a factor for
every grid region of the default fleet."""

import shutil
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl
import pytest

from ingest.simulator import default_fleet
from pipelines.defs.analytics.emissions_asset import CHECKS, emissions
from pipelines.resources import DatabaseResource
from reports import emissions as em
from tests.conftest import mark_ok

TS = em.TS


def T(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def _sessions(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"session_id": pl.String, "site_id": pl.String, "start_ts": TS, "end_ts": TS,
                "charging_end_ts": TS, "energy_wh": pl.Float64},
        orient="row",
    )  # fmt: skip


SITES = pl.DataFrame(
    {"site_id": ["PAS", "KNU"], "country": ["US", "GB"], "grid_region": ["CAMX", "GB"]}
)


def test_worked_example_to_the_gram():
    """README: 40 kWh at a CAMX site. Grid: 429.983 lb/MWh x 453.59237 g/lb / 1000 = 195.037 g/kWh,
    x 40 = 7,801 g. Displaced: 8,887 g/gal / 26.0 mpg = 341.808 g/mi; / 0.29 kWh/mi = 1,178.647 g
    per kWh, x 40 = 47,146 g. Net saving 47,146 - 7,801 = 39,344 g (39.3 kg)."""
    factors = em.load_factors()
    camx = factors.annual.filter(pl.col("region") == "CAMX")["g_per_kwh"].item()
    assert round(camx, 3) == 195.037
    base = factors.baselines.filter(pl.col("baseline") == "US-EPA").row(0, named=True)
    assert round(base["ice_g_per_distance"], 3) == 341.808
    assert round(base["displaced_g_per_kwh"], 3) == 1178.647

    s = _sessions([("s1", "PAS", T("2024-05-02 10:30"), T("2024-05-02 12:00"),
                    T("2024-05-02 11:30"), 40_000.0)])  # fmt: skip
    row = em.session_emissions(s, SITES, factors, date(2024, 5, 2)).row(0, named=True)
    assert row["factor_basis"] == "annual"
    assert round(row["grid_g"]) == 7801
    assert round(row["tailpipe_g"]) == 47146
    assert round(row["net_saving_g"]) == 39344


def _factors_with_gb_hourly(tmp_path) -> em.Factors:
    folder = tmp_path / "factors"
    shutil.copytree(em.FACTORS_DIR, folder)
    values = {h: 200.0 for h in range(24)} | {10: 100.0, 11: 300.0}
    lines = ["region,hour_utc,value,unit,gas,year,source"] + [
        f"GB,{h},{v},g/kWh,CO2,2023,test profile" for h, v in values.items()
    ]
    (folder / "grid_hourly.csv").write_text("\n".join(lines) + "\n")
    return em.load_factors(folder)


def test_hourly_factors_replace_the_annual_one_hour_by_hour(tmp_path):
    factors = _factors_with_gb_hourly(tmp_path)
    # 2 kWh charged 10:30-11:30 UTC: half in hour 10 (100 g/kWh), half in hour 11 (300 g/kWh)
    s = _sessions(
        [
            ("gb", "KNU", T("2024-05-02 10:30"), T("2024-05-02 12:00"), T("2024-05-02 11:30"),
             2000.0),
            ("us", "PAS", T("2024-05-02 10:30"), T("2024-05-02 12:00"), T("2024-05-02 11:30"),
             2000.0),
        ]
    )  # fmt: skip
    out = {r["session_id"]: r for r in em.session_emissions(s, SITES, factors, date(2024, 5, 2))
           .iter_rows(named=True)}  # fmt: skip
    assert out["gb"]["factor_basis"] == "hourly"
    assert out["gb"]["grid_g"] == pytest.approx(1.0 * 100 + 1.0 * 300)  # not 2 x 207.05 = 414.1
    assert out["gb"]["grid_g_per_kwh"] == pytest.approx(200.0)
    assert out["us"]["factor_basis"] == "annual"  # CAMX has no hourly table
    assert out["us"]["grid_g"] == pytest.approx(2 * 195.037008, abs=1e-3)

    # the site-day follows the load curve: 1 kWh at 10:00, 3 kWh at 11:15
    curve = pl.DataFrame(
        {"site_id": ["KNU", "KNU"], "interval_start": [T("2024-05-02 10:00"),
         T("2024-05-02 11:15")], "energy_kwh": [1.0, 3.0]},
        schema_overrides={"interval_start": TS},
    )  # fmt: skip
    site_day = pl.DataFrame({"site_id": ["KNU"], "sessions": [1]})
    row = em.site_day_emissions(curve, site_day, SITES, factors, date(2024, 5, 2)).row(
        0, named=True
    )
    assert row["energy_kwh"] == 4.0
    assert row["grid_g"] == pytest.approx(100 + 900)
    assert row["tailpipe_g"] == pytest.approx(4 * 8887 / 26.0 / 0.29)


def test_an_incomplete_hourly_table_is_refused(tmp_path):
    folder = tmp_path / "factors"
    shutil.copytree(em.FACTORS_DIR, folder)
    (folder / "grid_hourly.csv").write_text(
        "region,hour_utc,value,unit,gas,year,source\nGB,0,150,g/kWh,CO2,2023,x\n"
    )
    with pytest.raises(ValueError, match=r"hours 0\.\.23"):
        em.load_factors(folder)


def test_site_overrides_and_country_fallback(tmp_path):
    folder = tmp_path / "factors"
    shutil.copytree(em.FACTORS_DIR, folder)
    (folder / "site_overrides.csv").write_text("site_id,grid_region,baseline\nPAS,NYUP,\n")
    factors = em.load_factors(folder)
    sites = pl.DataFrame(
        {"site_id": ["PAS", "X"], "country": ["US", "DE"], "grid_region": ["CAMX", None]}
    )
    got = {r["site_id"]: r for r in em.site_factors(sites, factors).iter_rows(named=True)}
    assert got["PAS"]["grid_region"] == "NYUP"
    assert got["X"]["grid_region"] == "DE" and got["X"]["annual_g_per_kwh"] == 380.0


def test_every_default_fleet_region_has_a_factor():
    fleet = default_fleet(20, days=1, seed=42)
    sites = pl.DataFrame(
        {"site_id": [s.site_id for s in fleet.sites], "country": [s.country for s in fleet.sites],
         "grid_region": [s.grid_region for s in fleet.sites]}
    )  # fmt: skip
    resolved = em.site_factors(sites, em.load_factors())
    assert resolved["annual_g_per_kwh"].null_count() == 0, resolved
    assert set(resolved["grid_region"]) == {"CAMX", "NYUP", "GB", "DE"}


def test_asset_writes_the_worked_example(db, database_url):
    day = date(2024, 5, 2)
    db.execute(
        """INSERT INTO site (site_id, name, country, grid_region) VALUES
           ('PAS', 'Pasadena', 'US', 'CAMX'), ('KNU', 'Knutsford', 'GB', 'GB')"""
    )
    for table in ("sessions", "load_curve", "energy_site_day"):
        db.execute(f"DELETE FROM analytics.{table} WHERE day = %s", (day,))
    db.execute(
        """INSERT INTO analytics.sessions (day, session_id, charge_point_id, transaction_id, site_id,
               start_ts, end_ts, charging_end_ts, energy_wh) VALUES
           (%s, 'CP1:1', 'CP1', '1', 'PAS', '2024-05-02 10:30+00', '2024-05-02 12:00+00',
            '2024-05-02 11:30+00', 40000)""",
        (day,),
    )
    db.execute(
        """INSERT INTO analytics.load_curve (day, site_id, interval_start, energy_kwh, mean_kw) VALUES
           (%s, 'PAS', '2024-05-02 10:30+00', 20, 80), (%s, 'PAS', '2024-05-02 11:15+00', 20, 80),
           (%s, 'KNU', '2024-05-02 00:00+00', 0, 0)""",
        (day, day, day),
    )
    db.execute(
        """INSERT INTO analytics.energy_site_day (day, site_id, energy_kwh, sessions) VALUES
           (%s, 'PAS', 40, 1), (%s, 'KNU', 0, 0)""",
        (day, day),
    )
    mark_ok(db, ("sessions", "energy"), [day])  # written directly above, as the assets would
    result = dg.materialize(
        [emissions, *CHECKS],
        partition_key=day.isoformat(),
        resources={"database": DatabaseResource(url=database_url)},
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    meta = result.asset_materializations_for_node("emissions")[0].metadata
    assert meta["kg_saved"].value == pytest.approx(39.344, abs=0.001)
    session = db.execute(
        "SELECT round(grid_g), round(tailpipe_g), round(net_saving_g), factor_basis "
        "FROM analytics.emissions_session_day WHERE day = %s",
        (day,),
    ).fetchall()
    assert session == [(7801, 47146, 39344, "annual")]
    sites = dict(
        db.execute(
            "SELECT site_id, round(net_saving_g) FROM analytics.emissions_site_day WHERE day = %s",
            (day,),
        ).fetchall()
    )
    assert sites == {"PAS": 39344, "KNU": 0}


def test_hourly_profile_fills_the_table_the_way_sources_md_says(tmp_path):
    """A half-hourly series (as NESO publishes) -> the mean per UTC hour of the year, rounded to
    the gram, in the columns grid_hourly.csv takes; the table then loads and is used."""
    from datetime import UTC, datetime, timedelta

    start = datetime(2023, 1, 1, tzinfo=UTC)
    ts = [start + timedelta(minutes=30 * i) for i in range(48 * 2)]  # two days, 2023
    # hour h reads 100 + h at :00 and 102 + h at :30 on day 1, 102 + h / 104 + h on day 2
    g = [100.0 + (i // 2) % 24 + 2 * (i % 2) + 2 * (i // 48) for i in range(len(ts))]
    series = pl.DataFrame(
        {"ts": ts + [datetime(2022, 12, 31, 23, tzinfo=UTC)], "g_per_kwh": g + [9999.0]}
    )
    rows = em.hourly_profile(series, "GB", 2023, "NESO historic carbon intensity (test)")
    assert rows["hour_utc"].to_list() == list(range(24))
    assert rows["value"].to_list() == [102.0 + h for h in range(24)]  # the 2022 reading left out
    folder = tmp_path / "factors"
    shutil.copytree(em.FACTORS_DIR, folder)
    rows.write_csv(folder / "grid_hourly.csv")
    factors = em.load_factors(folder)
    assert factors.hourly.filter(pl.col("region") == "GB").height == 24
