"""The `emissions` asset: grid emissions of the energy delivered, the tailpipe emissions displaced
and the net saving per session and per site and day (method in reports/emissions.py), and its
check."""

from datetime import date

import dagster as dg
import polars as pl

from chargeops.frames import read_table
from pipelines.analytics import frames
from pipelines.defs.analytics.assets import _read_day, ranged_asset
from pipelines.metadata import number, preview, table_metadata
from pipelines.quality import CheckResults, Rule, Validation, daily_check, days_sql
from pipelines.resources import DatabaseResource
from pipelines.status import each_day
from pipelines.store import replace_partition
from reports import emissions as logic


def read_sites(url: str) -> pl.DataFrame:
    return read_table(url, "SELECT site_id, country, grid_region FROM site", logic.SITES)


def compute_day(url: str, day: date, factors: logic.Factors | None = None):
    """(per session, per site) emissions frames of one day, from the analytics tables."""
    factors = factors or logic.load_factors()
    sites = read_sites(url)
    sessions = _read_day(url, "sessions", frames.SESSIONS, day)
    curve = _read_day(url, "load_curve", frames.LOAD_CURVE, day)
    site_day = _read_day(url, "energy_site_day", frames.ENERGY_SITE_DAY, day)
    per_session = logic.session_emissions(sessions, sites, factors, day)
    per_site = logic.site_day_emissions(curve, site_day, sites, factors, day)
    return per_session, per_site


@ranged_asset(
    deps=["sessions", "energy"],
    description="Per session and per site and day: grid emissions of the energy delivered (grid "
    "region's hourly or annual factor), tailpipe CO2 displaced (EV efficiency and a combustion "
    "baseline) and the net saving, in grams. Factor tables: reports/emissions_factors/.",
)
def emissions(context: dg.AssetExecutionContext, database: DatabaseResource):
    url = database.resolved_url()

    def compute(day: date) -> dict:
        per_session, per_site = compute_day(url, day)
        written = replace_partition(
            url, day, {"emissions_session_day": per_session, "emissions_site_day": per_site}
        )
        missing = per_site.filter(pl.col("grid_g").is_null())["grid_region"].unique().to_list()
        if missing:
            context.log.warning(f"no grid factor for regions {missing}: their grams are null")

        def kg(col: str) -> float:
            return round(float(per_site[col].sum() or 0) / 1000, 3)

        return {
            **table_metadata(per_session),
            "sessions": written["emissions_session_day"],
            "sites": written["emissions_site_day"],
            "energy_kwh": number(per_site["energy_kwh"].sum() or 0, 3),
            "grid_kg": kg("grid_g"),
            "tailpipe_kg": kg("tailpipe_g"),
            "kg_saved": kg("net_saving_g"),
            "regions_without_factor": len(missing),
            "per_site": preview(
                per_site,
                20,
                [
                    "site_id",
                    "grid_region",
                    "factor_basis",
                    "energy_kwh",
                    "grid_g",
                    "tailpipe_g",
                    "net_saving_g",
                ],
            ),  # fmt: skip
        }

    return each_day(context, url, compute)


EMISSIONS = Validation(
    "emissions",
    lambda E: [
        E.ExpectColumnValuesToBeBetween(column="grid_g", min_value=0),
        E.ExpectColumnValuesToBeBetween(column="tailpipe_g", min_value=0),
    ],
    rules=[Rule("net = tailpipe - grid (1 mg)", "diff", pl.col("diff") <= 0.001)],
    ids=["row", "grid_g", "tailpipe_g", "net_saving_g"],
)


def check_emissions_add_up(url: str, days: list[date]) -> CheckResults:
    """Grid and tailpipe grams non-negative; net = tailpipe - grid (to a milligram)."""
    grams = ("grid_g", "tailpipe_g", "net_saving_g")
    schema = {"day": pl.Date, "row": pl.String, **{c: logic.SITE_DAY[c] for c in grams}}
    df = pl.concat(
        [
            read_table(
                url,
                f"SELECT day, '{kind} ' || {key} AS row, {', '.join(grams)} "
                f"FROM analytics.{table} WHERE {days_sql(days)}",
                schema,
            )
            for table, kind, key in (
                ("emissions_site_day", "site", "site_id"),
                ("emissions_session_day", "session", "session_id"),
            )
        ]
    ).with_columns(diff=(pl.col("net_saving_g") - (pl.col("tailpipe_g") - pl.col("grid_g"))).abs())
    return EMISSIONS.run(df, days)


ASSETS = [emissions]
CHECKS = [
    daily_check(
        check_emissions_add_up,
        asset=emissions,
        blocking=True,
        description="Grid and tailpipe emissions are never negative and net saving = tailpipe - "
        "grid.",
    )
]
