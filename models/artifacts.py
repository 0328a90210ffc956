"""Versioned model artifacts: one folder per training under a root, `model.joblib` (the
`MaintenanceModel`) beside `card.json` (what it was trained on, how it did against the
baseline, with which libraries), and a `LATEST` file naming the newest folder.

joblib pickles: load only artifacts this deployment wrote (the card records the library
versions, and `load` warns in the card's `notes` when they differ from the running ones).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from models.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from models.labels import HORIZON_DAYS, LABEL_CAUSES
from models.score import MaintenanceModel
from models.train import BASELINE_FEATURE, TrainConfig, TrainResult, library_versions

LATEST = "LATEST"
CARD_FIELDS = (
    "version", "created_at", "training_window", "split", "label", "features", "baseline",
    "metrics", "beats_baseline", "counts", "importance", "priors", "config", "libraries",
    "notes",
)  # fmt: skip


def build_card(
    result: TrainResult, cfg: TrainConfig, first_day: date | None, last_day: date | None
) -> dict[str, Any]:
    s, m = result.split, result.metrics
    pr_model, pr_base = m["model"].get("pr_auc"), m["baseline"].get("pr_auc")
    return {
        "version": "",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_window": {
            "first_day": first_day.isoformat() if first_day else None,
            "last_day": last_day.isoformat() if last_day else None,
        },
        "split": {
            "train": [s.train[0].isoformat(), s.train[-1].isoformat()] if s.train else None,
            "holdout": [s.holdout[0].isoformat(), s.holdout[-1].isoformat()] if s.holdout else None,
            "gap_days": s.gap_days,
            "reduced": s.reduced,
            "shipped_model": "refitted on every labelled day"
            if cfg.refit_on_all
            else "the evaluated one",
        },
        "label": {
            "horizon_days": cfg.horizon_days or HORIZON_DAYS,
            "causes": list(LABEL_CAUSES),
            "excluded_outages_count": False,
        },
        "features": {"numeric": NUMERIC_FEATURES, "categorical": CATEGORICAL_FEATURES},
        "baseline": f"{BASELINE_FEATURE}: faults in the last 7 days as the score",
        "metrics": m,
        "beats_baseline": None if pr_model is None or pr_base is None else bool(pr_model > pr_base),
        "counts": result.counts,
        "importance": result.importance,
        "priors": result.model.priors,
        "config": dataclasses.asdict(cfg),
        "libraries": library_versions(),
        "notes": result.notes,
    }


def save(model: MaintenanceModel, card: dict[str, Any], root: Path) -> Path:
    """Write a new version folder and point LATEST at it; returns the folder."""
    digest = hashlib.sha256(json.dumps(card, sort_keys=True, default=str).encode()).hexdigest()
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{digest[:8]}"
    folder = Path(root) / version
    folder.mkdir(parents=True, exist_ok=False)
    card = {**card, "version": version}
    model.version, model.card = version, card
    import joblib  # here, not at import: the Dagster code location loads this module

    joblib.dump(model, folder / "model.joblib")
    (folder / "card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    tmp = Path(root) / f".{LATEST}.tmp"
    tmp.write_text(version + "\n")
    tmp.replace(Path(root) / LATEST)  # atomic: a reader sees the old or the new version
    return folder


def latest_version(root: Path) -> str | None:
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    version = pointer.read_text().strip()
    return version if (Path(root) / version / "model.joblib").is_file() else None


def load_card(root: Path, version: str | None = None) -> dict[str, Any] | None:
    version = version or latest_version(root)
    if version is None:
        return None
    return json.loads((Path(root) / version / "card.json").read_text())


def load(root: Path, version: str | None = None) -> MaintenanceModel | None:
    """The model of `version` (default the latest), or None when none was trained yet."""
    version = version or latest_version(root)
    if version is None:
        return None
    import joblib

    model: MaintenanceModel = joblib.load(Path(root) / version / "model.joblib")
    trained_with = model.card.get("libraries", {})
    now = library_versions()
    differ = [k for k in ("scikit-learn", "numpy") if trained_with.get(k) != now.get(k)]
    if differ:
        model.card.setdefault("notes", []).append(f"library versions differ: {', '.join(differ)}")
    return model
