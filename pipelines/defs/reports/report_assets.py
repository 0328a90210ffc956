"""Report files as Dagster assets, so they appear in the UI with their partitions: the UK
reliability report per calendar year and the compliance report (HTML + PDF) per quarter. Both
write into the reports folder (ReportsResource), one folder per period, with a manifest."""

from pathlib import Path

import dagster as dg
import polars as pl

from chargeops.periods import quarter_label
from pipelines import metadata as md
from pipelines.partitions import quarterly, yearly
from pipelines.resources import DatabaseResource, ReportsResource
from reports import compliance, files, uk_reliability

GROUP = "reports"
UK_PREVIEW = ["charge_point_id", "site_name", "accessible_minutes", "reliability_pct",
              "meets_99pct"]  # fmt: skip
PCT_DIGITS = 3  # percentages against 97 % / 99 % targets: 99.995 must not read as 100


def _paths(paths: list[Path]) -> dict:
    return {f"file_{p.suffix.lstrip('.')}_{i}": dg.MetadataValue.path(str(p))
            for i, p in enumerate(paths)}  # fmt: skip


@dg.asset(
    partitions_def=yearly,
    group_name=GROUP,
    kinds={"csv", "json"},
    deps=["uptime"],
    code_version="1",
    description="The UK Public Charge Point Regulations 2023 (reg. 6) reliability of each rapid "
    "charge point at UK sites for the calendar year, in its accessible hours, and the network "
    "average against 99%: uk_reliability_<year>.csv + summary JSON + manifest.",
)
def uk_reliability_report(
    context: dg.AssetExecutionContext, database: DatabaseResource, reports: ReportsResource
):
    year = int(context.partition_key[:4])
    paths, report = uk_reliability.run(database.resolved_url(), reports.path(), year)
    net = report.network
    return dg.MaterializeResult(
        metadata={
            # the CSV: one row per rapid UK charge point
            **md.table_metadata(report.per_cp, preview=UK_PREVIEW, n=10, digits=PCT_DIGITS),
            "folder": dg.MetadataValue.path(str(paths[0].parent)),
            **_paths(paths),
            "charge_points": net["charge_points"],
            "network_average_pct": md.number(net["network_average_pct"], PCT_DIGITS),
            "min_pct": md.number(net["min_pct"], PCT_DIGITS),
            "meets_99pct": md.flag(net["meets_target"]),
            "charge_points_below_99pct": dg.MetadataValue.json(net["below_99pct"]),
            "if_offline_unknown_pct": md.number(net["if_offline_unknown_pct"], PCT_DIGITS),
        }
    )


@dg.asset(
    partitions_def=quarterly,
    group_name=GROUP,
    kinds={"html", "pdf"},
    deps=["uptime", "energy", "sessions", "emissions"],
    code_version="1",
    description="The compliance report for the quarter: network, site and port uptime against "
    "97% (NEVI) and 99% (UK rapid), outages and exclusions, energy, sessions and emissions saved, "
    "as HTML and PDF (headless Chromium) + manifest.",
)
def compliance_report(
    context: dg.AssetExecutionContext, database: DatabaseResource, reports: ReportsResource
):
    label = quarter_label(context.partition_key)
    paths, ctx = compliance.run(database.resolved_url(), reports.path(), label)
    net, uk = ctx["network"], ctx["uk"]
    below_97 = [
        f"{p['charge_point_id']}/{p['evse_id']}/{p['connector_id']}"
        for p in ctx["ports"]
        if not p["meets_97pct"]
    ]
    sites = pl.from_dicts(ctx["sites"]) if ctx["sites"] else pl.DataFrame()
    shown = [c for c in SITE_COLUMNS if c in sites.columns]
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(paths[0].parent)),
            **_paths(paths),
            # a document, not a table: its network figures as numbers, its site table as a table
            **md.numbers({k: net[k] for k in NETWORK_FIGURES}),
            "uptime_pct": md.number(net["uptime_pct"], PCT_DIGITS),
            "ports_below_97pct": dg.MetadataValue.json(below_97),
            "uk_network_average_pct": md.number(uk["network_average_pct"], PCT_DIGITS),
            "uk_charge_points_below_99pct": dg.MetadataValue.json(uk["below_99pct"]),
            "kg_co2_saved": md.number(net["saved_kg"]),
            "sites": md.preview(sites, sites.height, shown, digits=PCT_DIGITS),
        }
    )


NETWORK_FIGURES = ("ports", "ports_below_97", "outage_hours", "excluded_hours", "energy_kwh",
                   "sessions", "grid_kg", "tailpipe_kg", "trailing_days")  # fmt: skip
SITE_COLUMNS = ("site_id", "name", "country", "ports", "ports_below_97", "uptime_pct",
                "energy_kwh", "sessions", "saved_kg")  # fmt: skip


def check_report_files(folder: Path, names: list[str]) -> dg.AssetCheckResult:
    """Every file named exists, is non-empty and is listed in the folder's manifest with its
    checksum."""
    problems = files.verify_manifest(folder, names)
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"folder": str(folder), "problems": dg.MetadataValue.json(problems)},
    )


@dg.asset_check(
    asset=uk_reliability_report,
    name="uk_reliability_files_in_manifest",
    partitions_def=yearly,
    description="The year's CSV and summary exist, are non-empty and match the manifest.",
)
def uk_reliability_files_in_manifest(
    context: dg.AssetCheckExecutionContext, reports: ReportsResource
) -> dg.AssetCheckResult:
    year = context.partition_key[:4]
    return check_report_files(
        reports.path() / year, [f"uk_reliability_{year}.csv", f"uk_reliability_{year}_summary.json"]
    )


@dg.asset_check(
    asset=compliance_report,
    name="compliance_files_in_manifest",
    partitions_def=quarterly,
    description="The quarter's HTML and PDF exist, are non-empty and match the manifest.",
)
def compliance_files_in_manifest(
    context: dg.AssetCheckExecutionContext, reports: ReportsResource
) -> dg.AssetCheckResult:
    label = quarter_label(context.partition_key)
    return check_report_files(
        reports.path() / label, [f"compliance_{label}.html", f"compliance_{label}.pdf"]
    )


ASSETS = [uk_reliability_report, compliance_report]
CHECKS = [uk_reliability_files_in_manifest, compliance_files_in_manifest]
