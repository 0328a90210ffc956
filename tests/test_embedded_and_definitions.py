"""The embedded PostgreSQL default (no DATABASE_URL) and the Dagster code location."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest


@pytest.mark.embedded
def test_embedded_default_end_to_end(tmp_path):
    """With DATABASE_URL unset, `chargeops db upgrade` starts the embedded server and migrates it."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["CHARGEOPS_DATA_DIR"] = str(tmp_path / "data")
    cmd = [sys.executable, "-m", "chargeops.cli"]
    first = subprocess.run(
        cmd + ["db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert "applied 000_timeseries, 001_raw" in first.stdout
    second = subprocess.run(
        cmd + ["db", "status"], env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert "storage: native" in second.stdout and "001_raw" in second.stdout
    assert (tmp_path / "data" / "pg" / "PG_VERSION").read_text().strip() == "18"


def test_definitions_load():
    from pipelines.definitions import defs

    assert isinstance(defs, dg.Definitions)
    assert "database" in defs.resources
    dg.Definitions.validate_loadable(defs)
