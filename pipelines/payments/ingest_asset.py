"""The Dagster asset that copies Stripe's payments into the raw `stripe_*` tables."""

import dagster as dg

from pipelines.payments.sync import OBJECTS, run_sync
from pipelines.resources import DatabaseResource, StripeResource


@dg.asset(
    group_name="payments",
    kinds={"stripe", "postgres"},
    description="PaymentIntents, charges, refunds, disputes, balance transactions (fees, nets) and "
    "payouts from Stripe, incremental by `created` with an overlap, upserted by id into the raw "
    "stripe_* tables.",
)
def stripe_payments(
    context: dg.AssetExecutionContext, database: DatabaseResource, stripe: StripeResource
):
    config = stripe.config()
    result = run_sync(database.resolved_url(), config, progress=False)
    context.log.info(
        "stripe sync (%s): %s",
        config.account or "platform",
        ", ".join(f"{o}={result.upserted[o]}" for o in OBJECTS),
    )
    return dg.MaterializeResult(
        metadata={
            **{f"{o}_upserted": result.upserted[o] for o in OBJECTS},
            "cursors": dg.MetadataValue.json(
                {o: c.isoformat() if c else None for o, c in result.cursors.items()}
            ),
            "account": config.account or "(platform)",
            "api": "api.stripe.com" if not config.api_base else config.api_base,
            "rate_limit_retries": result.retries,
        }
    )


ASSETS = [stripe_payments]
