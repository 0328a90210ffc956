"""EV-ChART quarterly files as a Dagster asset (one calendar quarter per partition), with a check
that re-reads the written files and validates them again against the Joint Office's rules."""

import json

import dagster as dg

from chargeops.periods import quarter_label
from pipelines.partitions import quarterly
from pipelines.resources import DatabaseResource, ReportsResource
from reports import evchart
from reports import evchart_rules as R
from reports.files import MANIFEST, period_dir


@dg.asset(
    partitions_def=quarterly,
    group_name="reports",
    kinds={"csv"},
    deps=["sessions", "uptime"],
    description="EV-ChART (NEVI, 23 CFR 680.112) Modules 2 (sessions), 3 (uptime, trailing 12 "
    "months per month) and 4 (outages) for the quarter, validated against the Joint Office's "
    f"rules ({R.SOURCE_REPO}@{R.SOURCE_COMMIT[:12]}) before anything is written.",
)
def evchart_files(
    context: dg.AssetExecutionContext, database: DatabaseResource, reports: ReportsResource
) -> dg.MaterializeResult:
    quarter = quarter_label(context.partition_key)
    report, written = evchart.produce(database.resolved_url(), reports.path(), quarter)
    metadata: dict = {"folder": dg.MetadataValue.path(str(written.folder))}
    for number, df in sorted(report.frames.items()):
        metadata[f"module{number}"] = dg.MetadataValue.json(
            {
                "rows": written.rows[number],
                "ports": df.select("station_id", "port_id").n_unique(),
                "path": str(written.files[number]),
            }
        )
    metadata["module5"] = "not written: the project holds no maintenance cost data"
    metadata["short_outages_dropped"] = report.dropped_short_outages
    metadata["open_sessions_skipped"] = report.open_sessions_skipped
    metadata["template"] = R.TEMPLATE_VERSION
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    asset=evchart_files,
    description="The written files re-validate (BOM, header, every field rule, unique keys) and "
    "match the manifest's SHA-256.",
)
def evchart_files_revalidate(
    context: dg.AssetCheckExecutionContext, reports: ReportsResource
) -> dg.AssetCheckResult:
    import hashlib

    quarter = quarter_label(context.partition_key)
    folder = period_dir(reports.path(), quarter)
    manifest_path = folder / MANIFEST
    listed = {}
    if manifest_path.exists():
        listed = {e["file"]: e["sha256"] for e in json.loads(manifest_path.read_text())["files"]}
    problems: list[str] = []
    for module in R.MODULES.values():
        path = folder / module.file_name(quarter)
        if not path.exists():
            problems.append(f"{path.name}: missing")
            continue
        problems += [str(v) for v in evchart.validate_file(module, path)]
        if listed.get(path.name) != hashlib.sha256(path.read_bytes()).hexdigest():
            problems.append(f"{path.name}: SHA-256 differs from {MANIFEST}")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"quarter": quarter, "problems": dg.MetadataValue.json(problems[:50])},
    )


ASSETS = [evchart_files]
CHECKS = [evchart_files_revalidate]
