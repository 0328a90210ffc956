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
    ids: list[str] | None = None,
) -> dg.AssetCheckResult:
    """Validate `df` against `expectations` (GX expectation objects). `ids`: the columns that
    name a failing row in the samples (session, charger, connector), beside its values."""
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
        result_format={
            "result_format": "SUMMARY",
            "partial_unexpected_count": 5,
            **({"unexpected_index_column_names": ids} if ids else {}),
        },
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
            rows = r.result.get("partial_unexpected_index_list") if ids else None
            sample = (
                [_row(v) for v in rows]
                if rows
                else [_value(v) for v in (r.result.get("partial_unexpected_list") or [])]
            )[:5]
            failures.append(
                f"| {label} | {column} | {r.result.get('unexpected_count')} | {', '.join(sample)} |"
            )
    if failures:
        metadata["failures"] = dg.MetadataValue.md(
            "| expectation | column | failing rows | sample |\n|---|---|---|---|\n"
            + "\n".join(failures)
        )
        metadata["failing_rows"] = int(
            sum((r.result.get("unexpected_count") or 0) for r in result.results if not r.success)
        )
    metadata.update(extra or {})
    return dg.AssetCheckResult(passed=bool(result.success), severity=severity, metadata=metadata)


def _value(v) -> str:
    """A sample value as a person reads it: timestamps in ISO minutes UTC, tuples spelled out."""
    if isinstance(v, tuple | list):
        return "(" + ", ".join(_value(x) for x in v) + ")"
    if hasattr(v, "isoformat"):
        import pandas as pd

        ts = pd.Timestamp(v)
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        return ts.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%SZ")
    if type(v).__module__ == "numpy":
        return _value(v.item()) if hasattr(v, "item") else str(v)
    return str(v)


def _row(row: dict) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in row.items())


def combine(*results: dg.AssetCheckResult) -> dg.AssetCheckResult:
    """One check result of several validations: passed when all passed; metadata side by side,
    the failures tables joined."""
    metadata: dict = {}
    failures = []
    for r in results:
        for k, v in (r.metadata or {}).items():
            if k == "failures":
                failures.append(v.value if hasattr(v, "value") else str(v))
            elif k in ("rows", "evaluated", "successful", "failing_rows") and k in metadata:
                metadata[k] = _number(metadata[k]) + _number(v)
            else:
                metadata[k] = v
    if failures:
        head = "| expectation | column | failing rows | sample |\n|---|---|---|---|\n"
        metadata["failures"] = dg.MetadataValue.md(
            head + "\n".join(f.split("\n", 2)[2] for f in failures)
        )
    return dg.AssetCheckResult(
        passed=all(r.passed for r in results),
        severity=results[0].severity,
        metadata=metadata,
    )


def _number(v) -> int:
    return int(v.value if hasattr(v, "value") else v)
