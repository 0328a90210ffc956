"""`chargeops demo` end to end, as a user runs it, and reproducible: one seed and end date give
the same demo whatever day it runs. The command on a fresh database exits 0 under --strict, writes
the dashboards, and prints every count and total the README quotes, which an earlier run recorded
(so this compares run with run, across days and machines)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from chargeops.db import create_database, drop_database

pytestmark = pytest.mark.once

# the configuration the README quotes
REFERENCE = ["--end", "2026-11-30", "--charge-points", "4", "--days", "3", "--seed", "42"]
README = Path(__file__).resolve().parent.parent / "README.md"


def readme_figures() -> dict[str, str]:
    text = README.read_text()
    block = text.split("<!-- demo-figures:start -->")[1].split("<!-- demo-figures:end -->")[0]
    rows = re.findall(r"^\| (.+?) \| (.+?) \|$", block, flags=re.M)
    return {
        k.strip(): v.strip().replace(",", "")
        for k, v in rows
        if k.strip() != "what" and not k.startswith("-")
    }


def printed_figures(stdout: str) -> dict[str, str]:
    """The summary table as the command prints it (rich's box characters)."""
    rows = re.findall(r"^│ (.+?) +│ +(.+?) │$", stdout, flags=re.M)
    return {k.strip(): v.strip().replace(",", "") for k, v in rows if k.strip() != "what"}


def test_the_demo_command_is_reproducible_and_the_readme_quotes_it(server_url, tmp_path):
    name = f"chargeops_demo_{uuid.uuid4().hex[:8]}"
    env = dict(
        os.environ,
        DATABASE_URL=create_database(server_url, name),
        CHARGEOPS_DATA_DIR=str(tmp_path),
        COLUMNS="200",  # one line per row of the summary
    )
    try:
        res = subprocess.run(
            [sys.executable, "-m", "chargeops.cli", "demo", *REFERENCE, "--strict"],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "10/10 summary" in res.stdout
        assert "every daily asset is complete for 2026-11-28..2026-11-30" in res.stdout
        # the operator dashboards of the last day whole in every site's local time (29 Nov: the
        # Los Angeles site's 30 Nov ends at 08:00 UTC on 1 Dec, not simulated) and its week, for
        # the network and each site
        emails = sorted(tmp_path.glob("reports/*/dashboard/*/dashboard.eml"))
        assert {p.parent.name for p in emails} >= {"operator-chargeops-network"}
        assert {p.parents[2].name for p in emails} == {"2026-11-29", "2026-W48"}
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            versions = conn.execute("SELECT count(DISTINCT ocpp_version) FROM charge_point")
            assert versions.fetchone()[0] == 2
    finally:
        drop_database(server_url, name)
    figures = printed_figures(res.stdout)
    quoted = readme_figures()
    assert figures["failed checks or runs"] == "0"
    assert set(quoted) == set(figures), "the README's table lists every figure of the summary"
    assert figures == quoted
