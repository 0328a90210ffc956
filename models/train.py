"""Training and evaluation: a time-based split, a calibrated gradient-boosting pipeline, and the
comparison with the obvious baseline (faults in the last 7 days as the score) on the same
holdout.

Time is never shuffled: rows are split by day into train | gap | holdout, the gap as long as
the label horizon so no outage is seen by both a training label and a holdout label. Inside the
training days the latest `calibration_share` of days calibrates the probabilities (sigmoid)
of a model fitted on the earlier ones. Class imbalance: `class_weight="balanced"` while fitting
(the trees see the rare positives), then calibration brings the probabilities back to rates.
With little history the split shrinks (and says so) or, below that, the model is fitted on
what exists without an evaluation; with one class only, scoring falls back to the priors.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from models.features import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES
from models.score import FLEET, MaintenanceModel, to_matrix

BASELINE_FEATURE = "faults_7d"


@dataclass(frozen=True)
class TrainConfig:
    horizon_days: int = 7
    holdout_days: int = 28
    min_train_days: int = 14
    calibration_share: float = 0.25
    top_k: int = 10  # precision at the top k connectors of each holdout day
    seed: int = 0
    max_iter: int = 80
    learning_rate: float = 0.08
    max_leaf_nodes: int = 8
    min_samples_leaf: int = 100
    l2_regularization: float = 1.0
    prior_strength: float = 20.0  # pseudo-rows of the fleet rate in each charger model's prior
    permutation_repeats: int = 2  # 0: no permutation importance
    refit_on_all: bool = True  # ship a model refitted on every labelled day


@dataclass(frozen=True)
class TimeSplit:
    train: list[date]
    holdout: list[date]
    gap_days: int
    reduced: bool
    notes: list[str] = field(default_factory=list)

    @property
    def evaluated(self) -> bool:
        return bool(self.train and self.holdout)


@dataclass
class TrainResult:
    model: MaintenanceModel
    metrics: dict[str, dict[str, float | None]]  # {"model": {...}, "baseline": {...}}
    split: TimeSplit
    importance: dict[str, float]
    counts: dict[str, int]
    notes: list[str]


def time_split(days: list[date], cfg: TrainConfig) -> TimeSplit:
    """Train on the past, hold out the most recent days, a gap of `horizon_days` between."""
    days = sorted(set(days))
    n, gap = len(days), cfg.horizon_days
    if n >= cfg.holdout_days + gap + cfg.min_train_days:
        h = cfg.holdout_days
        return TimeSplit(days[: n - h - gap], days[n - h :], gap, False)
    hold = max(1, n // 4)
    gap = max(0, min(gap, n - hold - 2))
    train = days[: max(0, n - hold - gap)]
    if not train:
        return TimeSplit(
            [], [], 0, True, [f"only {n} labelled day(s): fitted on all of them, not evaluated"]
        )
    return TimeSplit(
        train,
        days[n - hold :],
        gap,
        True,
        [
            f"only {n} labelled days: holdout {hold} day(s), gap {gap} day(s), train "
            f"{len(train)} day(s); figures this small are not evidence"
        ],
    )


def make_pipeline(cfg: TrainConfig):
    """Preprocessing (categories to ordinal codes, unknown and missing as NaN) and the
    gradient-boosted trees, which take NaN for a missing feature natively."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    pre = ColumnTransformer(
        [
            ("numeric", "passthrough", NUMERIC_FEATURES),
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                ),
                CATEGORICAL_FEATURES,
            ),
        ]
    )
    n = len(NUMERIC_FEATURES)
    trees = HistGradientBoostingClassifier(
        learning_rate=cfg.learning_rate,
        max_iter=cfg.max_iter,
        max_leaf_nodes=cfg.max_leaf_nodes,
        min_samples_leaf=cfg.min_samples_leaf,
        l2_regularization=cfg.l2_regularization,
        categorical_features=list(range(n, n + len(CATEGORICAL_FEATURES))),
        class_weight="balanced",
        early_stopping=False,
        random_state=cfg.seed,
    )
    return Pipeline([("features", pre), ("trees", trees)])


def _fill_empty(rows: pl.DataFrame) -> pl.DataFrame:
    """A numeric feature missing in every training row (a short history: no rated power, no
    firmware change yet) carries nothing to learn, and scikit-learn's binning fails on a column
    with no value at all; fitting on 0 instead leaves the trees no split on it, so scoring rows
    that have the feature are unaffected."""
    empty = [
        c
        for c in NUMERIC_FEATURES
        if rows.select((pl.col(c).cast(pl.Float64).fill_nan(None).is_null()).all()).item()
    ]
    return rows.with_columns(pl.lit(0.0).alias(c) for c in empty) if empty else rows


def _fit(rows: pl.DataFrame, cfg: TrainConfig) -> tuple[Any | None, list[str]]:
    """Fit on the earlier days, calibrate on the later ones; None with one class only."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    y = rows["label"].to_numpy()
    if len(np.unique(y)) < 2:
        return None, ["one class only in the training rows: scores are the priors"]
    days = sorted(rows["day"].unique().to_list())
    n_cal = max(1, round(len(days) * cfg.calibration_share)) if len(days) > 1 else 0
    fit_rows = rows.filter(pl.col("day") < days[-n_cal]) if n_cal else rows
    cal_rows = rows.filter(pl.col("day") >= days[-n_cal]) if n_cal else rows.clear()
    y_fit = fit_rows["label"].to_numpy()
    if len(np.unique(y_fit)) < 2:
        fit_rows, cal_rows, y_fit = rows, rows.clear(), y
    pipe = make_pipeline(cfg).fit(to_matrix(_fill_empty(fit_rows)), y_fit)
    y_cal = cal_rows["label"].to_numpy()
    if cal_rows.height and min(np.bincount(y_cal.astype(int), minlength=2)) >= 5:
        cal = CalibratedClassifierCV(FrozenEstimator(pipe), method="sigmoid")
        return cal.fit(to_matrix(cal_rows), y_cal), []
    return pipe, ["not calibrated: the calibration days hold fewer than 5 rows of a class"]


def priors(rows: pl.DataFrame, strength: float) -> dict[str, float]:
    """Outage rate per charger model, shrunk towards the fleet rate by `strength` pseudo-rows."""
    if rows.is_empty():
        return {FLEET: 0.0}
    fleet = float(rows["label"].mean())
    by_model = rows.group_by("model").agg(pl.col("label").sum().alias("k"), pl.len().alias("n"))
    out = {
        m: (k + strength * fleet) / (n + strength)
        for m, k, n in by_model.iter_rows()
        if m is not None
    }
    out[FLEET] = fleet
    return out


def reference(rows: pl.DataFrame) -> dict[str, Any]:
    ref: dict[str, Any] = {}
    for c in NUMERIC_FEATURES:
        v = rows[c].median() if rows.height else None
        ref[c] = None if v is None else float(v)
    for c in CATEGORICAL_FEATURES:
        mode = rows[c].drop_nulls().mode().sort() if rows.height else pl.Series([], dtype=pl.String)
        ref[c] = mode[0] if len(mode) else None
    return ref


def precision_at_k(day: np.ndarray, score: np.ndarray, y: np.ndarray, k: int) -> float | None:
    """Mean over days of the precision of the day's top k, ties at the cut broken at random
    (in expectation), so a coarse score such as a fault count is not flattered or punished by
    an arbitrary order."""
    df = pl.DataFrame({"day": day, "score": score, "y": y})
    out = []
    for _, g in df.group_by("day"):
        kk = min(k, g.height)
        if kk == 0:
            continue
        s = np.sort(g["score"].to_numpy())[::-1]
        cut = s[kk - 1]
        above = g.filter(pl.col("score") > cut)
        tied = g.filter(pl.col("score") == cut)
        take = kk - above.height
        hits = float(above["y"].sum()) + take * float(tied["y"].mean())
        out.append(hits / kk)
    return float(np.mean(out)) if out else None


def evaluate(day: np.ndarray, y: np.ndarray, score: np.ndarray, k: int) -> dict[str, float | None]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, score)) if both else None,
        "pr_auc": float(average_precision_score(y, score)) if both else None,
        f"precision_at_{k}": precision_at_k(day, score, y, k),
        "base_rate": float(np.mean(y)) if len(y) else None,
    }


def _importance(model: MaintenanceModel, rows: pl.DataFrame, cfg: TrainConfig) -> dict[str, float]:
    """Permutation importance on the holdout: the drop in PR-AUC when one feature's column is
    shuffled. All shuffled copies go through the model in one batch (fast on small machines)."""
    from sklearn.metrics import average_precision_score

    y = rows["label"].to_numpy()
    if not cfg.permutation_repeats or len(np.unique(y)) < 2 or model.estimator is None:
        return {}
    rng = np.random.default_rng(cfg.seed)
    if rows.height > 1000:
        rows = rows[np.sort(rng.choice(rows.height, 1000, replace=False))]
        y = rows["label"].to_numpy()
    base = average_precision_score(y, model.estimator.predict_proba(to_matrix(rows))[:, 1])
    blocks = [
        rows.with_columns(rows[f].gather(rng.permutation(rows.height)).alias(f))
        for _ in range(cfg.permutation_repeats)
        for f in FEATURE_COLUMNS
    ]
    p = model.estimator.predict_proba(to_matrix(pl.concat(blocks)))[:, 1]
    p = p.reshape(cfg.permutation_repeats, len(FEATURE_COLUMNS), rows.height)
    drops = [
        base - np.mean([average_precision_score(y, p[r, j]) for r in range(p.shape[0])])
        for j in range(len(FEATURE_COLUMNS))
    ]
    pairs = sorted(zip(FEATURE_COLUMNS, drops, strict=True), key=lambda q: -q[1])
    return {f: round(float(v), 4) for f, v in pairs[:15] if v > 0}


def _model(est, rows: pl.DataFrame, cfg: TrainConfig) -> MaintenanceModel:
    return MaintenanceModel(
        estimator=est,
        priors=priors(rows, cfg.prior_strength),
        reference=reference(rows),
        horizon_days=cfg.horizon_days,
    )


def train(rows: pl.DataFrame, cfg: TrainConfig = TrainConfig()) -> TrainResult:  # noqa: B008
    """`rows`: feature rows (models.features.FEATURES) with `label` and `down_at_end`
    (models.labels.label). Rows without a label (horizon not yet observed) and rows of
    connectors already down are left out."""
    usable = rows.filter(pl.col("label").is_not_null() & ~pl.col("down_at_end")).sort(
        "day", "charge_point_id", "evse_id", "connector_id"
    )
    days = usable["day"].unique().sort().to_list()
    split = time_split(days, cfg)
    notes = list(split.notes)
    k = cfg.top_k
    empty = {"roc_auc": None, "pr_auc": None, f"precision_at_{k}": None, "base_rate": None}
    metrics: dict[str, dict] = {"model": dict(empty), "baseline": dict(empty)}
    importance: dict[str, float] = {}
    counts = {
        "rows": usable.height,
        "positives": int(usable["label"].sum() or 0),
        "days": len(days),
    }
    evaluated = None
    if split.evaluated:
        tr = usable.filter(pl.col("day").is_in(split.train))
        ho = usable.filter(pl.col("day").is_in(split.holdout))
        est, why = _fit(tr, cfg)
        notes += why
        evaluated = _model(est, tr, cfg)
        y, d = ho["label"].to_numpy(), ho["day"].to_numpy()
        metrics["model"] = evaluate(d, y, evaluated.predict(ho), k)
        metrics["baseline"] = evaluate(d, y, ho[BASELINE_FEATURE].fill_null(0).to_numpy(), k)
        importance = _importance(evaluated, ho, cfg)
        counts |= {
            "train_rows": tr.height,
            "train_positives": int(tr["label"].sum() or 0),
            "holdout_rows": ho.height,
            "holdout_positives": int(ho["label"].sum() or 0),
        }
        if metrics["model"]["pr_auc"] is None:
            notes.append("the holdout holds one class only: no ROC-AUC or PR-AUC")
    if evaluated is None or cfg.refit_on_all:
        est, why = _fit(usable, cfg) if usable.height else (None, ["no labelled rows"])
        notes += [w for w in why if w not in notes]
        shipped = _model(est, usable, cfg)
    else:
        shipped = evaluated
    return TrainResult(
        model=shipped,
        metrics=metrics,
        split=split,
        importance=importance,
        counts=counts,
        notes=notes,
    )


def library_versions() -> dict[str, str]:
    import joblib
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "polars": pl.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }
