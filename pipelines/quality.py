"""Data-quality validations over any number of days, and the Dagster asset checks around them.

`dagster-ge` still pins GX < 1.0, so this runs Great Expectations 1.x itself, as its users do:
one (ephemeral) data context for the process, and per check one pandas data source, data asset,
batch definition, `ExpectationSuite` and `ValidationDefinition`, built on first use and reused by
every run (`Validation`). Values that vary per run (the clock) are suite parameters
(`{"$PARAMETER": name}`), given at `run`. GX reads pandas, so a frame is converted once per run.

A frame covers the days of a run (a `day` column) and is validated once for all of them: GX's
verdict alone (result format BOOLEAN_ONLY) when everything passes; when an expectation failed, the
failing rows' index columns with the day among them (COMPLETE), so each day gets its own
`AssetCheckResult`, with its rows, failing rows and samples that name the row (session, charger,
connector, hour) with readable UTC timestamps. What GX would only re-check (a boolean or a
difference computed in polars) is a plain polars `Rule` beside the expectations.

`daily_check` makes a Dagster asset check of a check function `(url, days) -> {day: result}`:
one result for a one-day run, one evaluation per day for a backfill's range run.

`great_expectations` is imported on first validation, not with this module, so the Dagster code
location loads without it.
"""

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any

import dagster as dg
import polars as pl

from pipelines import status
from pipelines.partitions import partition_days
from pipelines.resources import DatabaseResource

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
logging.getLogger("great_expectations").setLevel(logging.WARNING)

SAMPLES = 5  # failing rows named per expectation and day
HEAD = "| expectation | column | failing rows | sample |\n|---|---|---|---|\n"

CheckResults = dict[date, dg.AssetCheckResult]


@cache
def prefetch() -> None:
    """Import Great Expectations in a background thread, once per process: a run launched from
    the UI is a new process whose first check would otherwise wait 4 to 5 s for the import;
    started with the run's first asset, it overlaps that asset's reads and writes."""
    import sys

    if "great_expectations" not in sys.modules:
        threading.Thread(target=_import_gx, name="gx-import", daemon=True).start()


def _import_gx() -> None:
    try:
        import great_expectations  # noqa: F401
    except Exception:  # the check's own import says what is wrong, where it matters
        return


@cache
def _context():
    """The process's one GX data context."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return ctx


@dataclass(frozen=True)
class Rule:
    """A plain polars rule: a row fails where `ok` is false (null counts as passing, as GX
    ignores missing values). `column` is sampled beside the ids and named in the failures."""

    name: str
    column: str
    ok: pl.Expr


@dataclass
class _Failure:
    label: str
    column: str
    rows: int
    sample: list[str]

    def line(self) -> str:
        return f"| {self.label} | {self.column} | {self.rows} | {', '.join(self.sample)} |"


@dataclass
class Validation:
    """One check's validation: GX `expectations` (a function of `great_expectations.expectations`
    returning the expectation objects, called once) and polars `rules`, over frames with a `day`
    column. `ids`: the columns that name a failing row in the samples."""

    name: str
    expectations: Callable[[Any], list] | None = None
    rules: Sequence[Rule] = ()
    ids: Sequence[str] = ()
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
    _definition: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def checks(self) -> int:
        """Expectations and rules: what each day is evaluated on."""
        gx = len(self.definition().suite.expectations) if self.expectations else 0
        return gx + len(self.rules)

    def definition(self):
        """The GX `ValidationDefinition` (batch definition and suite), built on first use."""
        if self._definition is None:
            with self._lock:
                if self._definition is None:
                    self._definition = self._build()
        return self._definition

    def _build(self):
        import great_expectations as gx

        ctx = _context()
        source, suite_name, vd_name = f"chargeops_{self.name}", f"{self.name}_suite", self.name
        # a Validation made again under a name (a re-imported module) replaces the old objects
        for store, key in ((ctx.validation_definitions, vd_name), (ctx.suites, suite_name)):
            if any(o.name == key for o in store.all()):
                store.delete(key)
        if source in ctx.data_sources.all():
            ctx.data_sources.delete(source)
        batch = (
            ctx.data_sources.add_pandas(source)
            .add_dataframe_asset(self.name)
            .add_batch_definition_whole_dataframe("whole")
        )
        suite = ctx.suites.add(
            gx.ExpectationSuite(name=suite_name, expectations=self.expectations(gx.expectations))
        )
        return ctx.validation_definitions.add(
            gx.ValidationDefinition(data=batch, suite=suite, name=vd_name)
        )

    def run(
        self,
        df: pl.DataFrame,
        days: Iterable[date],
        *,
        parameters: Mapping[str, Any] | None = None,
        extra: Mapping[date, Mapping[str, Any]] | None = None,
    ) -> CheckResults:
        """Validate `df` (rows of `days`, a `day` column) once; a result per day. `parameters`:
        the suite parameters' values for this run; `extra`: metadata per day."""
        days = sorted(set(days))
        df = df.filter(pl.col("day").is_in(days))
        failures: dict[date, list[_Failure]] = {d: [] for d in days}
        if df.height:
            if self.expectations is not None:
                self._run_gx(df, parameters, failures)
            for rule in self.rules:
                self._run_rule(df, rule, failures)
        rows = dict(df.group_by("day").len().iter_rows())
        evaluated = self.checks
        results = {}
        for d in days:
            failed = failures[d]
            metadata: dict = {
                "rows": int(rows.get(d, 0)),
                "evaluated": evaluated,
                "successful": evaluated - len(failed),
            }
            if failed:
                metadata["failures"] = dg.MetadataValue.md(
                    HEAD + "\n".join(f.line() for f in failed)
                )
                metadata["failing_rows"] = sum(f.rows for f in failed)
            metadata.update((extra or {}).get(d, {}))
            results[d] = dg.AssetCheckResult(
                passed=not failed, severity=self.severity, metadata=metadata
            )
        return results

    def _run_gx(self, df: pl.DataFrame, parameters, failures: dict[date, list[_Failure]]) -> None:
        """GX's verdict first (result format BOOLEAN_ONLY: about half the cost of a full result,
        and what a passing run needs); only when an expectation failed, the failing rows with
        their index columns, the day first (COMPLETE), to attribute them to their days."""
        frame = df.with_columns(pl.col(pl.Date).cast(pl.String)).to_pandas()  # days as ISO text
        params = dict(parameters) if parameters else None
        definition = self.definition()
        result = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=params,
            result_format="BOOLEAN_ONLY",
        )
        if result.success:
            return
        index = ["day", *(c for c in self.ids if c != "day")]
        result = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=params,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": index},
        )
        for r in result.results:
            if r.success:
                continue
            kw = r.expectation_config.kwargs
            label = r.expectation_config.type
            if "column_list" in kw:
                column = ", ".join(c for c in kw["column_list"] if c != "day")
            else:
                column = kw.get("column") or f"{kw.get('column_A')}>{kw.get('column_B')}"
            found = r.result.get("unexpected_index_list")
            if found is None:  # GX raised, or not a row-wise expectation: every day fails
                raised = (r.exception_info or {}).get("exception_message")
                for failed in failures.values():
                    count = r.result.get("unexpected_count")
                    failed.append(_Failure(label, column, count or 0, [str(raised or "")[:200]]))
                continue
            by_day: dict[date, list[dict]] = {}
            for row in found:
                by_day.setdefault(date.fromisoformat(str(row["day"])), []).append(row)
            for d, found_rows in by_day.items():
                sample = [
                    _row({k: v for k, v in row.items() if k != "day"})
                    for row in found_rows[:SAMPLES]
                ]
                failures[d].append(_Failure(label, column, len(found_rows), sample))

    def _run_rule(self, df: pl.DataFrame, rule: Rule, failures: dict[date, list[_Failure]]) -> None:
        cols = [*(c for c in self.ids if c != "day")]
        cols += [rule.column] if rule.column not in cols else []
        bad = df.filter(~rule.ok.fill_null(True))
        for (d,), part in bad.group_by("day", maintain_order=True):
            sample = [_row(r) for r in part.head(SAMPLES).select(cols).iter_rows(named=True)]
            failures[d].append(_Failure(rule.name, rule.column, part.height, sample))


def by_day(df: pl.DataFrame, days: Iterable[date], **figures: pl.Expr) -> dict[date, dict]:
    """Per day, integer figures of `df` (its `day` column) for the metadata: 0 on a day with no
    rows."""
    out = {d: dict.fromkeys(figures, 0) for d in days}
    if df.height:
        for row in df.group_by("day").agg(**figures).iter_rows(named=True):
            d = row.pop("day")
            if d in out:
                out[d] = {k: int(v or 0) for k, v in row.items()}
    return out


def days_sql(days: Sequence[date], column: str = "day") -> str:
    """`column = ANY('{...}'::date[])` for the days (our own dates, never user text)."""
    return f"{column} = ANY('{{{','.join(d.isoformat() for d in days)}}}'::date[])"


def _value(v) -> str:
    """A sample value as a person reads it: timestamps in ISO seconds UTC, tuples spelled out."""
    if isinstance(v, tuple | list):
        return "(" + ", ".join(_value(x) for x in v) + ")"
    if isinstance(v, date) and not isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "isoformat") or type(v).__name__ == "datetime64":
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
        metadata["failures"] = dg.MetadataValue.md(
            HEAD + "\n".join(f.split("\n", 2)[2] for f in failures)
        )
    return dg.AssetCheckResult(
        passed=all(r.passed for r in results),
        severity=results[0].severity,
        metadata=metadata,
    )


def combine_days(*per_day: CheckResults) -> CheckResults:
    """`combine` day by day."""
    return {d: combine(*(results[d] for results in per_day)) for d in per_day[0]}


def _number(v) -> int:
    return int(v.value if hasattr(v, "value") else v)


# -- as Dagster asset checks -------------------------------------------------------------------


# every plain check function behind a `daily_check`, in definition order (the bench and the
# tests call them directly over ranges of days)
DAILY_CHECK_FUNCTIONS: list[Callable[[str, list[date]], CheckResults]] = []


def daily_check(
    run: Callable[[str, list[date]], CheckResults],
    *,
    asset: dg.AssetsDefinition,
    blocking: bool = False,
    name: str | None = None,
    **spec,
) -> dg.AssetChecksDefinition:
    """A Dagster asset check around a check function of (database URL, days), partitioned like
    its daily asset, so the day that fails is the day shown failed. A one-day run returns that
    day's result; a backfill's range run (`BackfillPolicy.multi_run`) validates its days at once
    and reports one evaluation per day (its partition). A blocking check that fails marks its
    asset's day failed in analytics.partition_status (`pipelines.status`), so later runs and
    reports know, as Dagster's own run does; one that passes lifts the failure it recorded."""
    name = name or run.__name__.removeprefix("check_")
    asset_name = asset.key.to_user_string()
    DAILY_CHECK_FUNCTIONS.append(run)

    @dg.asset_check(
        name=name, asset=asset, blocking=blocking, partitions_def=asset.partitions_def, **spec
    )
    def _check(context: dg.AssetCheckExecutionContext, database: DatabaseResource):
        url, days = database.resolved_url(), partition_days(context)
        results = run(url, days)
        if blocking:
            for day, result in results.items():
                if not result.passed:
                    detail = status.check_detail(name)
                    status.record(url, asset_name, day, "failed", detail, context.run.run_id)
                else:
                    status.clear_check_failure(url, asset_name, day, name)
        if not context.has_partition_key_range:
            return results[days[0]]
        return _evaluations(context, asset.key, name, blocking, results)

    return _check


def _evaluations(
    context: dg.AssetCheckExecutionContext,
    asset_key: dg.AssetKey,
    name: str,
    blocking: bool,
    results: CheckResults,
) -> Iterator:
    """A range run's results as one evaluation per day (then the check's output, which Dagster
    expects of the step), each targeting its partition's latest materialization."""
    targets = _targets(context, asset_key, [d.isoformat() for d in results])
    for day, result in results.items():
        key = day.isoformat()
        yield dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=name,
            passed=result.passed,
            partition=key,
            metadata=result.metadata,
            severity=result.severity,
            blocking=blocking,
            description=result.description,
            target_materialization_data=targets.get(key),
        )
    yield dg.Output(
        None, output_name=next(iter(context.op_execution_context.selected_output_names))
    )


def _targets(context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, partitions: list):
    """Each partition's latest materialization (what Dagster records for a one-partition check),
    so the UI shows the evaluation as the current one for that day. One query when, as after a
    range run of the asset, the latest materializations of the range come one per partition;
    a query per partition left over otherwise."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData as Target,
    )

    def latest(keys: list[str], limit: int) -> list:
        return context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=keys), limit=limit
        ).records

    found: dict[str, Target] = {}
    for record in latest(partitions, len(partitions)):  # newest first
        found.setdefault(
            record.partition_key,
            Target(run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp),
        )
    for partition in set(partitions) - set(found):
        for record in latest([partition], 1):
            found[partition] = Target(
                run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp
            )
    return found
