"""Great Expectations 1.x suites run inside Dagster asset checks.

`dagster-ge` still pins GX < 1.0, so the checks build an ephemeral GX context, validate a pandas
frame (GX does not read polars) against a suite, and map the result to an `AssetCheckResult`
whose metadata carries GX's statistics and samples of the failing values.
"""

from __future__ import annotations

import contextlib
import logging
import os
from functools import cache

import dagster as dg
import polars as pl

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
logging.getLogger("great_expectations").setLevel(logging.WARNING)


@cache
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return ctx


def validate(
    name: str,
    df: pl.DataFrame,
    expectations: list,
    *,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    extra: dict | None = None,
) -> dg.AssetCheckResult:
    """Validate `df` against `expectations` (GX expectation objects)."""
    import great_expectations as gx

    ctx = _context()
    source_name = f"chargeops_{name}"
    try:
        ds = ctx.data_sources.get(source_name)
    except (KeyError, ValueError):
        ds = ctx.data_sources.add_pandas(source_name)
    try:
        batch = ds.get_asset(name).get_batch_definition("whole")
    except (KeyError, LookupError, ValueError):
        batch = ds.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
    suite_name = f"{name}_suite"
    with contextlib.suppress(Exception):  # absent on first use
        ctx.suites.delete(suite_name)
    suite = ctx.suites.add(gx.ExpectationSuite(name=suite_name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    vd_name = f"{name}_validation"
    with contextlib.suppress(Exception):
        ctx.validation_definitions.delete(vd_name)
    vd = ctx.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name=vd_name)
    )
    result = vd.run(
        batch_parameters={"dataframe": df.to_pandas()},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5},
    )
    metadata: dict = {
        "rows": df.height,
        "evaluated": result.statistics["evaluated_expectations"],
        "successful": result.statistics["successful_expectations"],
    }
    failures = []
    for r in result.results:
        label = r.expectation_config.type
        kw = r.expectation_config.kwargs
        column = kw.get("column") or f"{kw.get('column_A')}>{kw.get('column_B')}"
        if not r.success:
            sample = [str(v) for v in (r.result.get("partial_unexpected_list") or [])][:5]
            failures.append(
                f"| {label} | {column} | {r.result.get('unexpected_count')} | {', '.join(sample)} |"
            )
    if failures:
        metadata["failures"] = dg.MetadataValue.md(
            "| expectation | column | failing rows | sample |\n|---|---|---|---|\n"
            + "\n".join(failures)
        )
    metadata.update(extra or {})
    return dg.AssetCheckResult(passed=bool(result.success), severity=severity, metadata=metadata)
