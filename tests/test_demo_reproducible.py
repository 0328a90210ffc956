"""One seed and end date give the same demo, whatever day it runs: a run on a fresh database
produces every count and total the README quotes, which an earlier run recorded (so this compares
run with run, across days and machines)."""

from __future__ import annotations

import re
import uuid
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console

from chargeops.db import create_database, drop_database
from chargeops.demo import DemoOptions, run_demo
from chargeops.settings import Settings

pytestmark = pytest.mark.once

# the configuration the README quotes: `chargeops demo --end 2026-11-30 --charge-points 4 --days 3`
REFERENCE = DemoOptions(charge_points=4, days=3, seed=42, end=date(2026, 11, 30), reset=True)
README = Path(__file__).resolve().parent.parent / "README.md"


def _run(server_url: str, data_dir: Path) -> dict:
    name = f"chargeops_repro_{uuid.uuid4().hex[:8]}"
    url = create_database(server_url, name)
    try:
        settings = Settings(database_url=url, data_dir=data_dir, auto_register=True)
        result = run_demo(settings, REFERENCE, Console(quiet=True))
    finally:
        drop_database(server_url, name)
    return {k: str(v).replace(",", "") for k, v in result["figures"].items()}


def readme_figures() -> dict[str, str]:
    text = README.read_text()
    block = text.split("<!-- demo-figures:start -->")[1].split("<!-- demo-figures:end -->")[0]
    rows = re.findall(r"^\| (.+?) \| (.+?) \|$", block, flags=re.M)
    return {
        k.strip(): v.strip().replace(",", "")
        for k, v in rows
        if k.strip() != "what" and not k.startswith("-")
    }


def test_the_demo_is_reproducible_and_the_readme_quotes_it(server_url, tmp_path):
    figures = _run(server_url, tmp_path)
    assert figures["failed checks or runs"] == "0"
    quoted = readme_figures()
    assert set(quoted) == set(figures), "the README's table lists every figure of the summary"
    assert figures == quoted
