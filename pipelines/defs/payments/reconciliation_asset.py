"""The daily `reconciliation` asset: expected revenue against the synced Stripe objects, written
to analytics.reconciliation_lines / reconciliation_site_day, with the day's exceptions as a CSV
in the reports folder (`<reports>/<YYYY-MM-DD>/reconciliation_exceptions.csv` + manifest.json).

The amount tolerance is run config (`tolerance_minor_units`), falling back to the environment
variable CHARGEOPS_RECONCILE_TOLERANCE, then 0: exact to the cent (or yen)."""

import functools
import os
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from chargeops.completeness import gaps
from chargeops.frames import connect, read_frame, read_table
from pipelines import metadata as md
from pipelines.partitions import daily, partition_day
from pipelines.payments import reconcile as logic
from pipelines.quality import CheckResults, Validation, by_day, daily_check, days_sql
from pipelines.raw import day_bounds, ts_literal
from pipelines.resources import DatabaseResource, ReportsResource
from pipelines.status import daily_run
from pipelines.store import replace_partition
from reports import csvsafe, files

TOLERANCE_ENV = "CHARGEOPS_RECONCILE_TOLERANCE"
EXCEPTIONS_CSV = "reconciliation_exceptions.csv"
LINES_PREVIEW = ["category", "session_id", "site_id", "currency", "expected_gross", "captured",
                 "net", "payment_intent_ids"]  # fmt: skip


class ReconciliationConfig(dg.Config):
    tolerance_minor_units: int | None = Field(
        default=None,
        ge=0,
        description="How far (in minor units, any currency) the captured amount may differ from "
        f"the expected gross and still match; unset: ${TOLERANCE_ENV}, else 0.",
    )


def resolve_tolerance(configured: int | None = None) -> int:
    if configured is not None:
        return configured
    text = os.environ.get(TOLERANCE_ENV, "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(f"{TOLERANCE_ENV}={text!r} is not a whole number of minor units >= 0")
    return int(text)


def _cols(schema: dict, alias: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in schema)


def read_inputs(url: str, day: date) -> tuple[pl.DataFrame, logic.StripeFrames, pl.DataFrame]:
    """The day's expected sessions, the Stripe objects of every payment intent that names one
    of them or was created in the day, and the imported payments (fees in imported history)
    of the day's sessions or paid in the day."""
    lo, hi = (ts_literal(t) for t in day_bounds(day))
    scope = f"""WITH pis AS (
        SELECT * FROM stripe_payment_intent
        WHERE session_id IN (SELECT session_id FROM analytics.expected_revenue WHERE day = '{day}')
           OR (created >= {lo} AND created < {hi})),
      charges AS (SELECT * FROM stripe_charge WHERE payment_intent IN (SELECT id FROM pis)),
      refunds AS (SELECT * FROM stripe_refund
        WHERE payment_intent IN (SELECT id FROM pis) OR charge IN (SELECT id FROM charges))
    """
    with connect(url) as conn:
        expected = read_frame(
            conn,
            f"SELECT {_cols(logic.EXPECTED, 'e')} FROM analytics.expected_revenue e "
            f"WHERE e.day = '{day}'",
            logic.EXPECTED,
        )
        pis = read_frame(
            conn,
            f"""{scope}
            SELECT p.id, p.created, p.amount, p.amount_received, p.currency, p.status,
                   p.session_id, cp.site_id,
                   EXISTS (SELECT 1 FROM analytics.expected_revenue e
                           WHERE e.session_id = p.session_id) AS session_known
            FROM pis p LEFT JOIN charge_point cp ON cp.charge_point_id = p.charge_point_id""",
            logic.PAYMENT_INTENTS,
        )
        charges = read_frame(
            conn, f"{scope} SELECT {_cols(logic.CHARGES, 'c')} FROM charges c", logic.CHARGES
        )
        refunds = read_frame(
            conn, f"{scope} SELECT {_cols(logic.REFUNDS, 'r')} FROM refunds r", logic.REFUNDS
        )
        disputes = read_frame(
            conn,
            f"""{scope} SELECT {_cols(logic.DISPUTES, "d")} FROM stripe_dispute d
                WHERE d.payment_intent IN (SELECT id FROM pis)
                   OR d.charge IN (SELECT id FROM charges)""",
            logic.DISPUTES,
        )
        balance = read_frame(
            conn,
            f"""{scope} SELECT {_cols(logic.BALANCE_TRANSACTIONS, "b")}
                FROM stripe_balance_transaction b
                WHERE b.source IN (SELECT id FROM charges) OR b.source IN (SELECT id FROM refunds)""",
            logic.BALANCE_TRANSACTIONS,
        )
        imported = read_frame(
            conn,
            f"""SELECT p.session_id, p.paid_at, p.amount, p.currency, cp.site_id,
                   EXISTS (SELECT 1 FROM analytics.expected_revenue e
                           WHERE e.session_id = p.session_id) AS session_known
            FROM import_payment p
            LEFT JOIN charge_point cp ON cp.charge_point_id = p.charge_point_id
            WHERE p.session_id IN (SELECT session_id FROM analytics.expected_revenue
                                   WHERE day = '{day}')
               OR (p.paid_at >= {lo} AND p.paid_at < {hi})""",
            logic.IMPORTED_PAYMENTS,
        )
    return expected, logic.StripeFrames(pis, charges, refunds, disputes, balance), imported


def write_exceptions_csv(exceptions: pl.DataFrame, path: Path) -> int:
    """Write `logic.exceptions(lines)` (header always, one row per exception); return the rows."""
    files.write_text(Path(path), csvsafe.frame_csv(exceptions, null_value=""))
    return exceptions.height


def _totals_by_currency(lines: pl.DataFrame) -> pl.DataFrame:
    """Per currency, the day's money in minor units (one row a currency)."""
    return (
        lines.group_by("currency")
        .agg(pl.col("expected_gross", *logic.MONEY).sum().cast(pl.Int64))
        .sort("currency")
    )


def _figures(lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """The categories' line counts and the totals by currency, as tables, and as one numeric
    entry each (`lines_matched`, `EUR_net`: what the UI plots over partitions)."""
    counts = dict(lines["category"].value_counts().iter_rows())
    categories = pl.DataFrame(
        {"category": logic.CATEGORIES, "lines": [int(counts.get(c, 0)) for c in logic.CATEGORIES]},
        schema={"category": pl.String, "lines": pl.Int64},
    )
    totals = _totals_by_currency(lines)
    per_currency = {r.pop("currency"): r for r in totals.iter_rows(named=True)}
    figures = md.numbers(dict(categories.iter_rows()), "lines_") | md.numbers(per_currency)
    return categories, totals, figures


@functools.partial(
    dg.asset,
    partitions_def=daily,
    group_name="payments",
    kinds={"polars", "postgres", "stripe"},
    deps=["expected_revenue", "stripe_payments"],
    code_version="1",
)
def reconciliation(
    context: dg.AssetExecutionContext,
    config: ReconciliationConfig,
    database: DatabaseResource,
    reports: ReportsResource,
):
    """Each expected session of the day matched to its Stripe payment(s) or its imported fee,
    plus the orphan payments of the day, categorised; per site and currency the day's money; the exceptions as a
    CSV with a reason per line."""
    day = partition_day(context)
    url = database.resolved_url()
    with daily_run(context, url, day):
        tolerance = resolve_tolerance(config.tolerance_minor_units)
        expected, stripe, imported = read_inputs(url, day)
        payments = pl.concat([logic.payment_totals(stripe), logic.imported_payments(imported)])
        lines = logic.reconcile(expected, payments, day, tolerance)
        per_site = logic.site_day(lines)
        written = replace_partition(
            url, day, {"reconciliation_lines": lines, "reconciliation_site_day": per_site}
        )
        folder = files.period_dir(reports.path(), day.isoformat())
        csv_path = folder / EXCEPTIONS_CSV
        exceptions = logic.exceptions(lines)
        write_exceptions_csv(exceptions, csv_path)
        files.write_manifest(folder)
        categories, totals, figures = _figures(lines)
        return dg.MaterializeResult(
            metadata={
                # analytics.reconciliation_lines: row count, schema, preview
                **md.table_metadata(lines, preview=LINES_PREVIEW),
                "lines": written["reconciliation_lines"],
                "site_days": written["reconciliation_site_day"],
                "exceptions": exceptions.height,
                "tolerance_minor_units": tolerance,
                "categories": md.preview(categories, len(logic.CATEGORIES)),
                "totals_by_currency": md.preview(totals, totals.height),
                **figures,
                "exceptions_csv": dg.MetadataValue.path(str(csv_path)),
                "exceptions_preview": md.preview(
                    exceptions, 10, ["category", "session_id", "payment_intent_ids", "reason"]
                ),
            }
        )


def export_exceptions(url: str, start: date, end: date, path: str | Path) -> int:
    """Write the exceptions of the days start..end (inclusive) as one CSV; return the rows. Days
    that were not reconciled (the asset failed, or its upstream did) are named in a companion
    note beside it (`<name>.INCOMPLETE.txt`)."""
    lines = read_table(
        url,
        f"SELECT {', '.join(logic.LINES)} FROM analytics.reconciliation_lines "
        f"WHERE day BETWEEN '{start}' AND '{end}' AND category <> 'matched'",
        logic.LINES,
    )
    rows = write_exceptions_csv(logic.exceptions(lines), Path(path))
    found = gaps(url, start, end, ["reconciliation"], clip_to_recorded=True)
    files.incomplete_note(Path(path), found, f"{Path(path).name} ({start}..{end})")
    return rows


RECONCILIATION_TOTALS = Validation(
    "reconciliation_totals",
    lambda E: [
        E.ExpectColumnPairValuesToBeEqual(column_A="net", column_B="computed_net"),
        E.ExpectColumnPairValuesToBeEqual(
            column_A="net", column_B="bt_net", ignore_row_if="either_value_is_missing"
        ),
        E.ExpectColumnPairValuesToBeEqual(column_A="net", column_B="lines_net"),
    ],
    ids=["site_id", "currency"],
)


def check_reconciliation_totals_balance(url: str, days: list[date]) -> CheckResults:
    df = read_table(
        url,
        f"""SELECT s.day, s.site_id, s.currency, s.net,
                   s.captured - s.refunded - s.fees AS computed_net,
                   CASE WHEN s.settled_elsewhere = 0 THEN s.bt_net END AS bt_net,
                   s.settled_elsewhere, coalesce(l.net, 0) AS lines_net
            FROM analytics.reconciliation_site_day s
            LEFT JOIN (SELECT day, site_id, currency, sum(net)::bigint AS net
                       FROM analytics.reconciliation_lines WHERE {days_sql(days)}
                       GROUP BY day, site_id, currency) l
              ON l.day = s.day AND l.site_id IS NOT DISTINCT FROM s.site_id
             AND l.currency = s.currency
            WHERE {days_sql(days, "s.day")}""",
        {"day": pl.Date, "site_id": pl.String, "currency": pl.String, "net": pl.Int64,
         "computed_net": pl.Int64, "bt_net": pl.Int64, "settled_elsewhere": pl.Int64,
         "lines_net": pl.Int64},
    )  # fmt: skip
    # rows with balance transactions converted to another currency cannot match bt_net exactly
    extra = by_day(
        df, days, balance_transactions_settled_elsewhere=pl.col("settled_elsewhere").sum()
    )
    return RECONCILIATION_TOTALS.run(df, days, extra=extra)


RECONCILIATION_KEYS = Validation(
    "reconciliation_keys",
    lambda E: [E.ExpectCompoundColumnsToBeUnique(column_list=["day", "key"])],
    ids=["key", "line_day"],
)


def check_reconciliation_no_session_twice(url: str, days: list[date]) -> CheckResults:
    """Per day checked, every line (of any day) that holds one of the day's payment intents or
    sessions: a key twice is a payment or session on two lines."""
    df = read_table(
        url,
        f"""WITH day_pis AS (
                SELECT DISTINCT l.day, u.pi
                FROM analytics.reconciliation_lines l
                CROSS JOIN LATERAL unnest(string_to_array(l.payment_intent_ids, ',')) AS u(pi)
                WHERE {days_sql(days, "l.day")}),
            day_sessions AS (
                SELECT DISTINCT day, session_id FROM analytics.reconciliation_lines
                WHERE {days_sql(days)} AND category <> 'orphan_payment')
            SELECT d.day, 'payment ' || u.pi AS key, l.day AS line_day
            FROM analytics.reconciliation_lines l
            CROSS JOIN LATERAL unnest(string_to_array(l.payment_intent_ids, ',')) AS u(pi)
            JOIN day_pis d ON d.pi = u.pi
            UNION ALL
            SELECT d.day, 'session ' || l.session_id, l.day
            FROM analytics.reconciliation_lines l JOIN day_sessions d USING (session_id)
            WHERE l.category <> 'orphan_payment'""",
        {"day": pl.Date, "key": pl.String, "line_day": pl.Date},
    )
    return RECONCILIATION_KEYS.run(df, days)


ASSETS = [reconciliation]
CHECKS = [
    daily_check(
        check_reconciliation_totals_balance,
        asset=reconciliation,
        description="Per site, day and currency: net = captured - refunded - fees, equal to the "
        "sum of the Stripe balance transactions' nets (where none was converted to another "
        "settlement currency) and to the sum of the lines. Not blocking: "
        "a sync that has not fetched every balance transaction yet fails it until the next run.",
    ),
    daily_check(
        check_reconciliation_no_session_twice,
        asset=reconciliation,
        blocking=True,
        description="No session and no payment intent of the day is on more than one line, "
        "across all days.",
    ),
]
