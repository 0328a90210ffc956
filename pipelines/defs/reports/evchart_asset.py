"""EV-ChART quarterly files as a Dagster asset (one calendar quarter per partition), with a check
that re-reads the written files and validates them again against the Joint Office's rules."""

import dagster as dg

from chargeops.periods import quarter_label
from pipelines import metadata as md
from pipelines.partitions import quarterly
from pipelines.resources import DatabaseResource, ReportsResource
from reports import evchart, files
from reports import evchart_rules as R
from reports.files import period_dir


@dg.asset(
    partitions_def=quarterly,
    group_name="reports",
    kinds={"csv"},
    deps=["sessions", "uptime"],
    code_version="1",
    description="EV-ChART (NEVI, 23 CFR 680.112) Modules 2 (sessions), 3 (uptime, trailing 12 "
    "months per month) and 4 (outages) for the quarter, validated against the Joint Office's "
    f"rules ({R.SOURCE_REPO}@{R.SOURCE_COMMIT[:12]}) before anything is written.",
)
def evchart_files(
    context: dg.AssetExecutionContext, database: DatabaseResource, reports: ReportsResource
) -> dg.MaterializeResult:
    quarter = quarter_label(context.partition_key)
    report, written = evchart.produce(database.resolved_url(), reports.path(), quarter)
    metadata: dict = {
        # the data rows of every module file together; each file's rows, ports and preview below
        md.ROW_COUNT: sum(written.rows.values()),
        "folder": dg.MetadataValue.path(str(written.folder)),
    }
    for number, df in sorted(report.frames.items()):
        metadata[f"module{number}"] = dg.MetadataValue.path(str(written.files[number]))
        metadata[f"module{number}_rows"] = written.rows[number]
        metadata[f"module{number}_ports"] = df.select("station_id", "port_id").n_unique()
        metadata[f"module{number}_preview"] = md.preview(df, 5)
    metadata["module5"] = "not written: the project holds no maintenance cost data"
    metadata["short_outages_dropped"] = report.dropped_short_outages
    metadata["open_sessions_skipped"] = report.open_sessions_skipped
    metadata["template"] = R.TEMPLATE_VERSION
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    asset=evchart_files,
    partitions_def=quarterly,
    description="The written files re-validate (BOM, header, every field rule, unique keys) and "
    "match the manifest's SHA-256.",
)
def evchart_files_revalidate(
    context: dg.AssetCheckExecutionContext, reports: ReportsResource
) -> dg.AssetCheckResult:
    quarter = quarter_label(context.partition_key)
    folder = period_dir(reports.path(), quarter)
    names = [module.file_name(quarter) for module in R.MODULES.values()]
    problems = files.verify_manifest(folder, names)
    for module, name in zip(R.MODULES.values(), names, strict=True):
        if (folder / name).is_file():
            problems += [str(v) for v in evchart.validate_file(module, folder / name)]
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"quarter": quarter, "problems": dg.MetadataValue.json(problems[:50])},
    )


ASSETS = [evchart_files]
CHECKS = [evchart_files_revalidate]
