"""Predictive maintenance in Dagster: daily features, a weekly model, daily risk scores.

Thin assets around `models/`: the readers here fill the frames `models.features` documents,
from the raw tables and the derived ones; the model artifacts live in a `ModelStoreResource`
folder (default `<CHARGEOPS_DATA_DIR>/models`), one version per training.
"""

from datetime import UTC, date, timedelta

import dagster as dg
import polars as pl

from chargeops.frames import connect, read_frame, read_table
from chargeops.settings import ConfigError, Settings
from models import artifacts
from models import features as feats
from models.labels import OUTAGES, label
from models.score import SCORES, score, to_matrix
from models.train import TrainConfig, train
from models.train import _importance as permutation_importance
from pipelines import metadata as md
from pipelines.defs.analytics.assets import daily_asset, sessions, uptime, utilisation
from pipelines.jobmeta import job_args, run_request
from pipelines.partitions import partition_day
from pipelines.raw import day_bounds, ts_literal
from pipelines.resources import DatabaseResource, ModelStoreResource
from pipelines.status import daily_run
from pipelines.store import replace_partition

GROUP = "maintenance"
FEATURES_PREVIEW = [*feats.KEY, "faults_7d", "failed_start_rate_7d", "peak_ratio_7d",
                    "offline_min_7d", "model"]  # fmt: skip


# -- readers -----------------------------------------------------------------------------------


def read_inputs(url: str, first: date, last: date) -> feats.FeatureInputs:
    """Everything the feature builder needs for days [first, last], with LOOKBACK_DAYS of
    history before `first`."""
    lo, _ = day_bounds(first - timedelta(days=feats.LOOKBACK_DAYS))
    _, hi = day_bounds(last)
    window = f"ts >= {ts_literal(lo)} AND ts < {ts_literal(hi)}"
    with connect(url) as conn:

        def read(sql: str, schema: dict) -> pl.DataFrame:
            return read_frame(conn, sql, schema)

        return feats.FeatureInputs(
            connectors=read(
                """SELECT c.charge_point_id, c.evse_id, c.connector_id, cp.model, cp.firmware_version,
                          coalesce(c.max_power_w, cp.max_power_w) AS rated_power_w,
                          least(c.first_seen_at, cp.registered_at) AS first_seen_at
                   FROM connector c JOIN charge_point cp USING (charge_point_id)
                   WHERE c.connector_id > 0""",
                feats.CONNECTORS,
            ),
            faults=read(
                f"""SELECT ts, charge_point_id, evse_id, connector_id, error_code FROM status_event
                    WHERE status = 'Faulted' AND {window}""",
                feats.FAULTS,
            ),
            sessions=read(
                f"""SELECT charge_point_id, evse_id, connector_id, start_ts, duration_min, energy_wh,
                           peak_power_w FROM analytics.sessions
                    WHERE day >= '{lo.date()}' AND day <= '{last}'""",
                feats.SESSIONS,
            ),
            connection=read(
                f"""SELECT ts, charge_point_id, event FROM connection_event
                    WHERE event IN ('connect', 'disconnect', 'boot', 'heartbeat') AND {window}""",
                feats.CONNECTION,
            ),
            # BootNotification stores the firmware in charge_point (latest only) and in the boot
            # event's detail: the history comes from the events, all of them (few rows)
            firmware=read(
                f"""SELECT ts, charge_point_id, detail->>'firmware_version' AS firmware_version
                    FROM connection_event
                    WHERE event = 'boot' AND ts < {ts_literal(hi)} AND detail ? 'firmware_version'""",
                feats.FIRMWARE,
            ),
            offline=read(
                f"""SELECT day, charge_point_id, evse_id, connector_id,
                           sum(minutes_offline) AS minutes_offline
                    FROM analytics.utilisation_hourly
                    WHERE day >= '{lo.date()}' AND day <= '{last}'
                    GROUP BY 1, 2, 3, 4""",
                feats.OFFLINE,
            ),
        )


def read_features(url: str, where: str) -> pl.DataFrame:
    cols = ", ".join(feats.FEATURES)
    return read_table(
        url, f"SELECT {cols} FROM analytics.maintenance_features WHERE {where}", feats.FEATURES
    )


def read_outages(url: str, first: date) -> pl.DataFrame:
    cols = ", ".join(OUTAGES)
    return read_table(url, f"SELECT {cols} FROM analytics.outages WHERE day >= '{first}'", OUTAGES)


def observed_until(url: str) -> date | None:
    """The last day whose outages are known (uptime has a row for every port and day)."""
    df = read_table(url, "SELECT max(day) AS day FROM analytics.uptime_daily", {"day": pl.Date})
    return df["day"][0] if df.height else None


# -- assets ------------------------------------------------------------------------------------


@daily_asset(
    deps=[sessions, utilisation, uptime],
    group_name=GROUP,
    code_version="1",
    description="Per connector and day: faults by error code over 1/7/30 days, failed starts, "
    "derating (peak power against rated), reconnects, offline minutes, heartbeat gaps, sessions "
    "and energy, days since the last fault and firmware change, charger model and firmware, age.",
)
def maintenance_features(context: dg.AssetExecutionContext, database: DatabaseResource):
    day = partition_day(context)
    url = database.resolved_url()
    with daily_run(context, url, day):
        df = feats.build_features(read_inputs(url, day, day), day, day)
        written = replace_partition(url, day, {"maintenance_features": df})
        return dg.MaterializeResult(
            metadata={
                **md.table_metadata(df, preview=FEATURES_PREVIEW),
                "connectors": written["maintenance_features"],
                "with_faults_7d": int((df["faults_7d"] > 0).sum()),
                "failed_starts_7d": int(df["failed_starts_7d"].sum() or 0),
            }
        )


class TrainingConfig(dg.Config):
    window_days: int = 365  # feature days used, counted back from the last labelled one
    horizon_days: int = 7
    holdout_days: int = 28
    top_k: int = 10
    seed: int = 0


METRIC_DIGITS = 3  # as the metrics table shows them


def _span(days: list[str] | None) -> str:
    return f"{days[0]}..{days[1]}" if days else "none"


def _constant(model, rows: pl.DataFrame) -> bool:
    """The model gives every row the same score (no estimator, or trees that never split)."""
    if model.estimator is None or rows.is_empty():
        return True
    p = model.estimator.predict_proba(to_matrix(rows))[:, 1]
    return bool(p.max() == p.min())


def importance_metadata(result, labelled: pl.DataFrame, cfg: TrainConfig) -> dict:
    """`importance`: the permutation importance (drop in PR-AUC when one feature is shuffled),
    largest first, as a table, and `importance_source`: where it was measured.

    On the holdout when it shows anything. It shows nothing when the evaluated model's score is
    one constant: trained on fewer than 2 x min_samples_leaf rows (the demo's 14 days leave about
    80), its trees cannot split, so no shuffle changes a score and every drop is 0. Then the
    shipped model (refitted on every labelled day) is measured on those rows, and says so; on
    the demo's data it is one constant as well (about 240 rows, and no split worth its leaves),
    so the table stays empty and `importance_source` says why."""
    importance, source = result.importance, "holdout"
    if not importance:
        train_rows = result.counts.get("train_rows")
        why = (
            f"the evaluated model cannot split ({train_rows} training rows, "
            f"min_samples_leaf {cfg.min_samples_leaf}): its score is one constant"
            if train_rows is not None and train_rows < 2 * cfg.min_samples_leaf
            else "no feature's shuffling lowers the holdout PR-AUC"
            if train_rows is not None
            else "not evaluated (too few labelled days)"
        )
        usable = labelled.filter(pl.col("label").is_not_null() & ~pl.col("down_at_end"))
        importance = permutation_importance(result.model, usable, cfg)
        if importance:
            source = f"{why}; measured on the shipped model's own training rows (in-sample)"
        elif _constant(result.model, usable):
            source = (
                f"{why}; the shipped model's score is one constant too ({usable.height} "
                "labelled rows): it has learned from no feature yet, so none has an importance"
            )
        else:
            source = f"{why}; no feature's shuffling lowers the shipped model's PR-AUC either"
    df = pl.DataFrame(
        {"feature": list(importance), "pr_auc_drop": list(importance.values())},
        schema={"feature": pl.String, "pr_auc_drop": pl.Float64},
    )
    return {"importance": md.preview(df, df.height, digits=4), "importance_source": source}


def _metrics_table(metrics: dict) -> str:
    names = list(metrics["model"])
    lines = ["| metric | model | baseline (faults 7d) |", "|---|---|---|"]
    for n in names:
        m, b = metrics["model"][n], metrics["baseline"][n]
        lines.append(
            f"| {n} | {'n/a' if m is None else f'{m:.3f}'} | {'n/a' if b is None else f'{b:.3f}'} |"
        )
    return "\n".join(lines)


@dg.asset(
    deps=[maintenance_features],
    group_name=GROUP,
    code_version="1",
    kinds={"scikitlearn", "postgres"},
    description="Weekly: a calibrated gradient-boosting model of 'an outage starts within 7 "
    "days', trained on the past and compared with the faults-in-the-last-7-days baseline on "
    "the most recent weeks; saved as a versioned artifact (joblib + JSON card).",
)
def maintenance_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    database: DatabaseResource,
    model_store: ModelStoreResource,
):
    url = database.resolved_url()
    until = observed_until(url)
    cfg = TrainConfig(
        horizon_days=config.horizon_days,
        holdout_days=config.holdout_days,
        top_k=config.top_k,
        seed=config.seed,
    )
    if until is None:
        rows = pl.DataFrame(schema=feats.FEATURES)
    else:
        first = until - timedelta(days=config.window_days)
        rows = read_features(url, f"day >= '{first}' AND day <= '{until}'")
    first_day = rows["day"].min() if rows.height else None
    last_day = rows["day"].max() if rows.height else None
    labelled = (
        label(rows, read_outages(url, first_day), until, cfg.horizon_days)
        if rows.height
        else rows.with_columns(
            pl.lit(None, pl.Int8).alias("label"), pl.lit(False).alias("down_at_end")
        )
    )
    result = train(labelled, cfg)
    card = artifacts.build_card(result, cfg, first_day, last_day)
    folder = artifacts.save(result.model, card, model_store.path())
    for note in result.notes:
        context.log.warning(note)
    m, b = result.metrics["model"], result.metrics["baseline"]
    k = f"precision_at_{cfg.top_k}"
    split = card["split"]
    return dg.MaterializeResult(
        metadata={
            "version": folder.name,
            "path": dg.MetadataValue.path(str(folder)),
            "metrics": dg.MetadataValue.md(_metrics_table(result.metrics)),
            # model_pr_auc, baseline_pr_auc, ...: null where not evaluated (one class only)
            **md.numbers(m, "model_", digits=METRIC_DIGITS),
            **md.numbers(b, "baseline_", digits=METRIC_DIGITS),
            "beats_baseline": md.flag(card["beats_baseline"]),
            "top_k": cfg.top_k,
            "precision_metric": k,
            # rows, positives, days, train_rows, ...: the labelled rows used
            **md.numbers(result.counts),
            "train_days": _span(split["train"]),
            "holdout_days": _span(split["holdout"]),
            "gap_days": split["gap_days"],
            "split_reduced": md.flag(split["reduced"]),
            "shipped_model": split["shipped_model"],
            **importance_metadata(result, labelled, cfg),
            "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes) or "_none_"),
        }
    )


@dg.asset_check(
    asset=maintenance_model,
    description="The latest model beats the baseline (faults in the last 7 days) on PR-AUC on "
    "the same time-based holdout. A warning: too little history or a weak week should not stop "
    "the scores, but someone should look.",
)
def maintenance_model_beats_baseline(model_store: ModelStoreResource) -> dg.AssetCheckResult:
    card = artifacts.load_card(model_store.path())
    if card is None:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"reason": "no model trained yet"},
        )
    m, b = card["metrics"]["model"], card["metrics"]["baseline"]
    passed = card["beats_baseline"] is True
    reason = "not evaluated: " + "; ".join(card["notes"]) if card["beats_baseline"] is None else ""
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "version": card["version"],
            "model_pr_auc": m.get("pr_auc"),
            "baseline_pr_auc": b.get("pr_auc"),
            "model_roc_auc": m.get("roc_auc"),
            "baseline_roc_auc": b.get("roc_auc"),
            "reason": reason or ("beats the baseline" if passed else "does not beat the baseline"),
        },
    )


@daily_asset(
    deps=[maintenance_features, maintenance_model],
    group_name=GROUP,
    code_version="1",
    description="Risk per connector of an outage within 7 days from the latest model, with the "
    "features that raise it most; connectors without history get their charger model's prior. "
    "The at-risk list is the view analytics.maintenance_at_risk (CLI: chargeops maintenance top).",
)
def maintenance_scores(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    model_store: ModelStoreResource,
):
    day = partition_day(context)
    url = database.resolved_url()
    with daily_run(context, url, day):
        model = artifacts.load(model_store.path())
        if model is None:
            context.log.warning("no maintenance model yet: materialise maintenance_model first")
            empty = pl.DataFrame(schema=SCORES)
            replace_partition(url, day, {"maintenance_scores": empty})
            return dg.MaterializeResult(
                metadata={
                    **md.table_metadata(empty),
                    "scored": 0,
                    "status": "no model trained yet",
                }
            )
        df = score(model, read_features(url, f"day = '{day}'"), top_k=model.card["config"]["top_k"])
        written = replace_partition(url, day, {"maintenance_scores": df})
        at_risk = df.filter("at_risk")
        return dg.MaterializeResult(
            metadata={
                **md.table_metadata(
                    df, preview=["rank", *feats.KEY, "risk", "score_source", "at_risk"], digits=4
                ),
                "scored": written["maintenance_scores"],
                "at_risk": at_risk.height,
                "scored_by_prior": int((df["score_source"] == "prior").sum()),
                "model_version": model.version,
                "mean_risk": md.number(df["risk"].mean(), 4),
                "at_risk_list": md.preview(
                    at_risk, 20, ["rank", *feats.KEY, "risk", "top_features"], digits=4
                ),
            }
        )


ASSETS = [maintenance_features, maintenance_model, maintenance_scores]
CHECKS = [maintenance_model_beats_baseline]

maintenance_weekly_job = dg.define_asset_job(
    "maintenance_weekly",
    selection=dg.AssetSelection.assets(maintenance_model),
    **job_args(
        "maintenance",
        "Retrain the outage-risk model on every feature day up to the last labelled one; a new "
        "model version in the model store. Schedule maintenance_weekly (Mondays 02:00 UTC).",
    ),
)
maintenance_daily_job = dg.define_asset_job(
    "maintenance_daily",
    selection=dg.AssetSelection.assets(maintenance_features, maintenance_scores),
    **job_args(
        "maintenance",
        "One UTC day's maintenance features per connector and its risk scores with the latest "
        "model. Schedule maintenance_daily (01:30 UTC, after the day's analytics).",
    ),
)


@dg.schedule(
    job=maintenance_weekly_job,
    cron_schedule="0 2 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Mondays 02:00 UTC: maintenance_weekly retrains the model on everything up to "
    "the last complete day.",
)
def maintenance_weekly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    week = context.scheduled_execution_time.astimezone(UTC).date().isoformat()
    return run_request("maintenance_weekly", f"maintenance-{week}")


@dg.schedule(
    job=maintenance_daily_job,
    cron_schedule="30 1 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="01:30 UTC, after the analytics of the day that ended (00:30): maintenance_daily "
    "for that day, its features and scores.",
)
def maintenance_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date()
    return run_request("maintenance_daily", f"maintenance-{day}", day.isoformat())


# the two halves of maintenance_daily apart: a backfill (the demo's) computes every day's features
# before the first training, and scores every day after it
maintenance_features_job = dg.define_asset_job(
    "maintenance_features_daily",
    selection=dg.AssetSelection.assets(maintenance_features),
    **job_args(
        "maintenance",
        "One UTC day's maintenance features alone (backfills: every day's features before the "
        "first training).",
    ),
)
maintenance_scores_job = dg.define_asset_job(
    "maintenance_scores_daily",
    selection=dg.AssetSelection.assets(maintenance_scores),
    **job_args(
        "maintenance",
        "One UTC day's risk scores alone, with the latest model (backfills: every day after a "
        "training).",
    ),
)

SCHEDULES = [maintenance_weekly, maintenance_daily]
JOBS = [
    maintenance_weekly_job,
    maintenance_daily_job,
    maintenance_features_job,
    maintenance_scores_job,
]


# -- the demo's stage and the CLI --------------------------------------------------------------


def _short(top_features: str | None) -> str:
    import json

    items = json.loads(top_features) if top_features else []
    return ", ".join(f"{i['feature']}={i['value']} (+{i['contribution']:.2f})" for i in items)


def cli_top(args, settings: Settings) -> int:
    """`chargeops maintenance top --n 20 [--day D]`: the riskiest connectors of a scored day."""
    from chargeops.db import connect, resolve_database_url

    n = args.n
    if n is None or n < 1:
        raise ConfigError(f"--n must be a positive whole number, got {n}")
    day = None
    if args.day:
        try:
            day = date.fromisoformat(args.day)
        except ValueError:
            raise ConfigError(f"--day {args.day!r} is not an ISO date such as 2024-05-14") from None
    with connect(resolve_database_url(settings)) as conn:
        if day is None:
            day = conn.execute("SELECT max(day) FROM analytics.maintenance_scores").fetchone()[0]
        rows = conn.execute(
            """SELECT rank, charge_point_id, evse_id, connector_id, coalesce(model, ''), risk,
                      score_source, at_risk, top_features::text
               FROM analytics.maintenance_scores WHERE day = %s ORDER BY rank LIMIT %s""",
            (day, n),
        ).fetchall()
    if not rows:
        where = f" for {day}" if day else ""
        print(
            f"no maintenance scores{where} yet: materialise maintenance_features, "
            "maintenance_model and maintenance_scores (the demo does)"
        )
        return 1
    print(f"connectors most at risk of an outage within 7 days, scored for {day}")
    print(f"{'#':>3} {'charge point':18} {'evse':>4} {'conn':>4} {'model':16} {'risk':>6} "
          f"{'source':6} {'at risk':7} top features")  # fmt: skip
    for rank, cp, evse, conn_id, model, risk, source, at_risk, top in rows:
        print(
            f"{rank:>3} {cp:18} {evse:>4} {conn_id:>4} {model[:16]:16} {risk:6.3f} {source:6} "
            f"{'yes' if at_risk else 'no':7} {_short(top)}"
        )
    return 0
