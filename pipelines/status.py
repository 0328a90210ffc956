"""Contained failures: a daily asset runs only on days its upstream daily assets have, and records
whether it succeeded, so nothing downstream (another run, a report, the dashboard) builds on a
failed or missing day without knowing (`chargeops.completeness` reads what is recorded here).

Within one run Dagster already skips what depends on a failed step or blocking check; this
carries the same rule across runs (the demo's stages, a UI launch of one asset, a schedule).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date

import dagster as dg
import psycopg

from chargeops.completeness import DAILY_ASSETS

UPSERT = """INSERT INTO analytics.partition_status (asset, day, status, detail, run_id)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (asset, day) DO UPDATE SET status = excluded.status,
                detail = excluded.detail, run_id = excluded.run_id, updated_at = now()"""


def record(url: str, asset: str, day: date, status: str, detail: str = "", run_id=None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(UPSERT, (asset, day, status, detail[:500], run_id))


def clear_check_failure(url: str, asset: str, day: date, check: str) -> None:
    """A blocking check that passes again lifts the failure it recorded (and only that one)."""
    with psycopg.connect(url, autocommit=True) as conn:
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
    with psycopg.connect(url) as conn:
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
