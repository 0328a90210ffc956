"""The Dagster asset that copies Stripe's payments into the raw `stripe_*` tables."""

import dagster as dg
import polars as pl

from chargeops.frames import read_table
from pipelines import metadata as md
from pipelines.payments.sync import OBJECTS, run_sync
from pipelines.resources import DatabaseResource, StripeResource


def table_rows(url: str) -> dict[str, int]:
    """Rows now in each raw stripe_<object> table."""
    sql = " UNION ALL ".join(
        f"SELECT '{o}' AS object, count(*) AS n FROM stripe_{o}" for o in OBJECTS
    )
    df = read_table(url, sql, {"object": pl.String, "n": pl.Int64})
    return dict(df.iter_rows())


@dg.asset(
    group_name="payments",
    code_version="1",
    kinds={"stripe", "postgres"},
    description="PaymentIntents, charges, refunds, disputes, balance transactions (fees, nets) and "
    "payouts from Stripe, incremental by `created` with an overlap, upserted by id into the raw "
    "stripe_* tables.",
)
def stripe_payments(
    context: dg.AssetExecutionContext, database: DatabaseResource, stripe: StripeResource
):
    config = stripe.config()
    url = database.resolved_url()
    result = run_sync(url, config, progress=False)
    rows = table_rows(url)
    tables = pl.DataFrame(
        {
            "table": [f"stripe_{o}" for o in OBJECTS],
            "upserted": [result.upserted[o] for o in OBJECTS],
            "rows": [rows[o] for o in OBJECTS],
            "cursor": [result.cursors.get(o) for o in OBJECTS],
        },
        schema={"table": pl.String, "upserted": pl.Int64, "rows": pl.Int64,
                "cursor": pl.Datetime("us", "UTC")},
    )  # fmt: skip
    context.log.info(
        "stripe sync (%s): %s",
        config.account or "platform",
        ", ".join(f"{o}={result.upserted[o]}" for o in OBJECTS),
    )
    return dg.MaterializeResult(
        metadata={
            # the six raw tables together: one row count, and per table what this run upserted
            md.ROW_COUNT: sum(rows.values()),
            "upserted": sum(result.upserted.values()),
            **{f"{o}_upserted": result.upserted[o] for o in OBJECTS},
            "tables": md.preview(tables, len(OBJECTS)),
            "cursors": dg.MetadataValue.json(
                {o: c.isoformat() if c else None for o, c in result.cursors.items()}
            ),
            "account": config.account or "(platform)",
            "api": "api.stripe.com" if not config.api_base else config.api_base,
            "rate_limit_retries": result.retries,
        }
    )


ASSETS = [stripe_payments]
