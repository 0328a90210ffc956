"""Contained failures: a daily asset runs only on days its upstream daily assets have, and records
whether it succeeded, so nothing downstream (another run, a report, the dashboard) builds on a
failed or missing day without knowing (`chargeops.completeness` reads what is recorded here).

Within one run Dagster already skips what depends on a failed step or blocking check; this
carries the same rule across runs (the demo's stages, a UI launch of one asset, a schedule).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import date

import dagster as dg

from chargeops.completeness import DAILY_ASSETS
from chargeops.db import pooled
from pipelines.partitions import partition_days
from pipelines.raw import same_reference

UPSERT = """INSERT INTO analytics.partition_status (asset, day, status, detail, run_id)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (asset, day) DO UPDATE SET status = excluded.status,
                detail = excluded.detail, run_id = excluded.run_id, updated_at = now()"""


def record(url: str, asset: str, day: date, status: str, detail: str = "", run_id=None) -> None:
    with pooled(url) as conn:
        conn.execute(UPSERT, (asset, day, status, detail[:500], run_id))


def clear_check_failure(url: str, asset: str, day: date, check: str) -> None:
    """A blocking check that passes again lifts the failure it recorded (and only that one)."""
    with pooled(url) as conn:
        conn.execute(
            """UPDATE analytics.partition_status SET status = 'ok', detail = '', updated_at = now()
               WHERE asset = %s AND day = %s AND status = 'failed' AND detail = %s""",
            (asset, day, check_detail(check)),
        )


def check_detail(check: str) -> str:
    return f"blocking check {check} failed"


def upstream_daily(context: dg.AssetExecutionContext) -> list[str]:
    """The daily assets this asset depends on, as Dagster's graph has them."""
    deps = context.assets_def.asset_deps.get(context.asset_key, set())
    names = {key.to_user_string() for key in deps}
    return [a for a in DAILY_ASSETS if a in names]


def not_ok(url: str, assets: list[str], day: date) -> list[str]:
    """`assets` whose `day` is not recorded ok, each with why."""
    if not assets:
        return []
    with pooled(url) as conn:
        rows = dict(
            conn.execute(
                """SELECT asset, CASE WHEN status = 'ok' THEN ''
                          ELSE coalesce(nullif(detail, ''), 'failed') END
                   FROM analytics.partition_status WHERE day = %s AND asset = ANY(%s)""",
                (day, assets),
            ).fetchall()
        )
    out = []
    for a in assets:
        if a not in rows:
            out.append(f"{a} has not been materialised for {day}")
        elif rows[a]:
            out.append(f"{a} failed for {day} ({rows[a]})")
    return out


@contextlib.contextmanager
def daily_run(context: dg.AssetExecutionContext, url: str, day: date) -> Iterator[None]:
    """Around a daily asset's body: refuse when an upstream day is not ok; record the outcome."""
    asset = context.asset_key.to_user_string()
    run_id = context.run.run_id
    problems = not_ok(url, upstream_daily(context), day)
    if problems:
        detail = "upstream " + "; ".join(problems)
        record(url, asset, day, "failed", detail, run_id)
        raise dg.Failure(
            description=f"{asset} for {day} not computed: {detail}",
            metadata={"upstream": dg.MetadataValue.json(problems)},
            allow_retries=False,
        )
    try:
        yield
    except BaseException as e:
        record(url, asset, day, "failed", f"{type(e).__name__}: {e}", run_id)
        raise
    record(url, asset, day, "ok", "", run_id)


def each_day(
    context: dg.AssetExecutionContext, url: str, compute: Callable[[date], dict]
) -> dg.MaterializeResult:
    """A daily asset's body over the days of its run: `compute(day)` returns the day's metadata.

    One partition: its metadata, as Dagster shows it for that partition. A backfill's range
    (`BackfillPolicy.multi_run`): every day computed in turn, each recorded ok or failed on its
    own (`daily_run`), each day's figures the metadata of that partition's materialization
    (`add_asset_metadata(partition_key=...)`), so the UI plots them over partitions as it does
    for runs of one day; a day that fails does not stop the others, and the run fails at the
    end naming the days, so that day is re-run on its own (`chargeops backfill` does) and shows
    failed alone."""
    from pipelines.quality import prefetch  # (quality imports this module)

    prefetch()  # the run's checks need Great Expectations: import it while this asset works
    days = partition_days(context)
    if len(days) == 1:
        with daily_run(context, url, days[0]):
            return dg.MaterializeResult(metadata=compute(days[0]))
    figures: dict[date, dict] = {}
    failed: dict[date, str] = {}
    with same_reference():
        for day in days:
            try:
                with daily_run(context, url, day):
                    figures[day] = compute(day)
            except Exception as e:  # recorded for the day by daily_run; the other days go on
                failed[day] = (
                    e.description if isinstance(e, dg.Failure) else f"{type(e).__name__}: {e}"
                )
    asset = context.asset_key.to_user_string()
    if failed:
        raise dg.Failure(
            description=f"{asset}: {len(failed)} of {len(days)} days failed: "
            + "; ".join(f"{d}: {why}" for d, why in sorted(failed.items()))[:2000],
            metadata={
                "failed_days": dg.MetadataValue.json(sorted(d.isoformat() for d in failed)),
                "days_ok": len(figures),
            },
            allow_retries=False,
        )
    last = max(figures, default=None)
    for day, metadata in figures.items():
        context.add_asset_metadata(
            metadata if day == last else _figures_only(metadata), partition_key=day.isoformat()
        )
    return dg.MaterializeResult(metadata=range_summary(days))


def _figures_only(metadata: dict) -> dict:
    """A day's figures without its tables (preview, column schema): in a range only the last
    day, the one the asset's page shows as latest, carries them. Each table is most of an
    event's size, and a month of them cost a range run as much as its checks."""
    tables = dg.TableMetadataValue | dg.TableSchemaMetadataValue
    return {k: v for k, v in metadata.items() if not isinstance(v, tables)}


def range_summary(days: list[date]) -> dict:
    """What every partition of a range run carries besides its own figures: the run's range."""
    return {"range_days": len(days), "range": f"{days[0]}..{days[-1]}"}
