"""One seed and end date give the same demo, whatever day it runs: two runs on fresh databases
produce identical counts and totals, and the README quotes them."""

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

pytestmark = pytest.mark.sweep

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
    first = _run(server_url, tmp_path / "a")
    second = _run(server_url, tmp_path / "b")
    assert first == second
    assert first["failed checks or runs"] == "0"
    quoted = readme_figures()
    assert quoted, "README.md has no demo-figures table"
    assert {k: first.get(k) for k in quoted} == quoted
