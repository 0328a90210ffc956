"""Scoring: risk of an outage within the horizon per connector, and what drives it.

A `MaintenanceModel` wraps the fitted scikit-learn estimator with what scoring needs beside it:
the feature list, per charger-model priors for connectors without history, and reference values
for explaining a score. A connector commissioned less than `min_history_days` ago, or any
connector when no estimator could be fitted (too little data, one class only), gets the prior
of its charger model (smoothed towards the fleet rate), never an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from models.features import CATEGORICAL_FEATURES, KEY, NUMERIC_FEATURES

FLEET = "*"  # the prior key for the whole fleet

SCORES = {  # analytics.maintenance_scores
    "day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "model": pl.String, "risk": pl.Float64, "score_source": pl.String,  # 'model' | 'prior'
    "rank": pl.Int32, "at_risk": pl.Boolean,
    "top_features": pl.String,  # JSON: [{"feature", "value", "contribution"}, ...]
    "model_version": pl.String,
}  # fmt: skip


def to_matrix(features: pl.DataFrame):
    """The estimator's input: a pandas frame of the feature columns (NaN for missing)."""
    return features.select(
        [pl.col(c).cast(pl.Float64) for c in NUMERIC_FEATURES]
        + [pl.col(c).cast(pl.String) for c in CATEGORICAL_FEATURES]
    ).to_pandas()


@dataclass
class MaintenanceModel:
    estimator: Any | None  # fitted; predict_proba over `to_matrix` frames
    priors: dict[str, float]  # charger model -> rate; FLEET -> fleet rate
    reference: dict[str, Any]  # a typical connector: medians / most frequent categories
    horizon_days: int = 7
    min_history_days: float = 1.0
    version: str = ""
    card: dict[str, Any] = field(default_factory=dict)

    def prior(self, models: pl.Series) -> np.ndarray:
        fleet = self.priors.get(FLEET, 0.0)
        return np.array([self.priors.get(m, fleet) if m else fleet for m in models], dtype=float)

    def uses_prior(self, features: pl.DataFrame) -> np.ndarray:
        if self.estimator is None:
            return np.ones(features.height, dtype=bool)
        age = features["connector_age_days"].fill_null(0).to_numpy()
        return age < self.min_history_days

    def predict(self, features: pl.DataFrame) -> np.ndarray:
        """Probability of an outage starting within the horizon, one per row."""
        if features.is_empty():
            return np.zeros(0)
        risk = self.prior(features["model"])
        learned = ~self.uses_prior(features)
        if learned.any():
            rows = features.filter(pl.Series(learned))
            risk[learned] = self.estimator.predict_proba(to_matrix(rows))[:, 1]
        return risk

    def contributions(
        self, features: pl.DataFrame, top: int = 3, base: np.ndarray | None = None
    ) -> list[list[dict]]:
        """Per row, the features whose typical value would lower the risk most: the risk minus
        the risk with that one feature set to the fleet's reference value (occlusion). `base`:
        the rows' risk when the caller has it already (`predict`)."""
        if features.is_empty():
            return []
        base = self.predict(features) if base is None else base
        learned = ~self.uses_prior(features)
        names = NUMERIC_FEATURES + CATEGORICAL_FEATURES
        out: list[list[dict]] = [[] for _ in range(features.height)]
        if not learned.any():
            return out
        rows = features.filter(pl.Series(learned))
        idx = np.flatnonzero(learned)
        variants = pl.concat(
            [
                rows.with_columns(pl.lit(self.reference.get(f)).cast(rows.schema[f]).alias(f))
                for f in names
            ]
        )
        p = self.estimator.predict_proba(to_matrix(variants))[:, 1].reshape(len(names), rows.height)
        delta = base[idx][None, :] - p
        for j, i in enumerate(idx):
            order = np.argsort(-delta[:, j], kind="stable")[:top]
            out[i] = [
                {
                    "feature": names[f],
                    "value": _plain(rows[names[f]][j]),
                    "contribution": round(float(delta[f, j]), 4),
                }
                for f in order
                if delta[f, j] > 1e-4
            ]
        return out


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return None if np.isnan(v) else round(v, 3)
    return v


def score(
    model: MaintenanceModel, features: pl.DataFrame, top_k: int = 10, top_features: int = 3
) -> pl.DataFrame:
    """Scores (contract SCORES) for one day's feature rows. At risk: among the `top_k` riskiest
    and above the fleet's base rate, so a healthy fleet does not fill the list with noise."""
    if features.is_empty():
        return pl.DataFrame(schema=SCORES)
    risk = model.predict(features)
    prior = model.uses_prior(features)
    why = model.contributions(features, top_features, base=risk)
    df = features.select("day", *KEY, "model").with_columns(
        pl.Series("risk", risk, dtype=pl.Float64),
        pl.Series("score_source", np.where(prior, "prior", "model"), dtype=pl.String),
        pl.Series("top_features", [json.dumps(w) for w in why], dtype=pl.String),
        pl.lit(model.version).alias("model_version"),
    )
    df = df.sort(["day", "risk", *KEY], descending=[False, True, False, False, False])
    df = df.with_columns(pl.int_range(1, pl.len() + 1).over("day").cast(pl.Int32).alias("rank"))
    fleet = model.priors.get(FLEET, 0.0)
    df = df.with_columns(at_risk=(pl.col("rank") <= top_k) & (pl.col("risk") > fleet))
    return df.select([pl.col(c).cast(t) for c, t in SCORES.items()])
