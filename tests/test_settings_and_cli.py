"""Settings from the environment, and the CLI's one-line errors for bad configuration."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chargeops.settings import ConfigError, Settings

CLI = [sys.executable, "-m", "chargeops.cli"]


def test_defaults_and_env():
    s = Settings.from_env({})
    assert (s.database_url, s.port, s.auto_register, s.timescaledb) == (None, 9000, False, "auto")
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://x@h/db",
            "CHARGEOPS_PORT": "9100",
            "CHARGEOPS_AUTO_REGISTER": "yes",
            "CHARGEOPS_TIMESCALEDB": "OFF",
        }
    )
    assert (s.database_url, s.port, s.auto_register, s.timescaledb) == (
        "postgresql://x@h/db",
        9100,
        True,
        "off",
    )
    assert (
        s.override(port=9200, host=None).port == 9200 and s.override(host=None).host == "127.0.0.1"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHARGEOPS_PORT": "http"}, "not a whole number"),
        ({"CHARGEOPS_PORT": "70000"}, "out of range"),
        ({"CHARGEOPS_AUTO_REGISTER": "maybe"}, "not a boolean"),
        ({"CHARGEOPS_TIMESCALEDB": "sometimes"}, "use auto, on or off"),
        ({"CHARGEOPS_TLS_CERT": "/nonexistent.pem"}, "both"),
        ({"CHARGEOPS_TLS_CERT": "/nonexistent.pem", "CHARGEOPS_TLS_KEY": "/x.key"}, "not found"),
    ],
)
def test_bad_settings(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def _run(args, env_extra, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEOPS_")}
    env.update(env_extra)
    return subprocess.run(
        CLI + args, env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )


def test_unreachable_database_is_one_clear_line(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = _run(
        ["db", "upgrade"],
        {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/nope"},
        tmp_path,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "chargeops: error: cannot connect to PostgreSQL at"
    )


def test_port_in_use_is_one_clear_line(tmp_path, database_url):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = _run(["collector", "--port", str(port)], {"DATABASE_URL": database_url}, tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"chargeops: error: cannot listen on 127.0.0.1:{port}" in res.stderr


def test_bad_env_value_is_one_clear_line(tmp_path):
    res = _run(["db", "upgrade"], {"CHARGEOPS_PORT": "abc"}, tmp_path)
    assert (
        res.returncode == 2
        and res.stderr.strip() == "chargeops: error: CHARGEOPS_PORT='abc' is not a whole number"
    )


def test_chargers_add_and_list(tmp_path, database_url, db):
    env = {"DATABASE_URL": database_url}
    res = _run(
        ["chargers", "add", "CP-CLI", "--password", "abcdefgh12", "--site", "NOPE"], env, tmp_path
    )
    assert res.returncode == 2 and res.stderr.strip() == "chargeops: error: unknown site 'NOPE'"
    res = _run(["chargers", "add", "CP-CLI", "--password", "abcdefgh12"], env, tmp_path)
    assert res.returncode == 0, res.stderr
    res = _run(["chargers", "add", "bad id!"], env, tmp_path)
    assert res.returncode == 2 and "invalid charge point id" in res.stderr
    res = _run(["chargers", "list"], env, tmp_path)
    assert "CP-CLI" in res.stdout and "yes" in res.stdout


def test_tariffs_set_supersedes_and_list(tmp_path, database_url, db):
    env = {"DATABASE_URL": database_url}
    db.execute("INSERT INTO site (site_id, name) VALUES ('S1', 'one')")
    base = ["tariffs", "set", "--site", "S1", "--currency", "gbp", "--tax-rate", "0.2"]
    res = _run(
        [*base[:2], "T-2025", *base[2:], "--energy-price", "0.40", "--valid-from", "2025-01-01"],
        env,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    res = _run(
        [*base[:2], "T-2026", *base[2:], "--energy-price", "0.50", "--valid-from", "2026-01-01"],
        env,
        tmp_path,
    )
    assert res.returncode == 0 and "T-2025 ends then" in res.stdout
    rows = db.execute(
        "SELECT tariff_id, currency, valid_from, valid_to FROM tariff ORDER BY valid_from"
    ).fetchall()
    assert [(r[0], r[1], r[2].year, r[3].year if r[3] else None) for r in rows] == [
        ("T-2025", "GBP", 2025, 2026), ("T-2026", "GBP", 2026, None),
    ]  # fmt: skip
    listing = _run(["tariffs", "list", "--site", "S1"], env, tmp_path)
    assert "T-2025" in listing.stdout and "2025-01-01 .. 2026-01-01" in listing.stdout
    for bad, message in [
        (["T-2026"], "exists"),  # tariffs are history
        (["T-X", "--energy-price", "-1"], "must not be negative"),
        (["T-Y", "--tax-rate", "20"], "fraction"),
    ]:
        args = [*base[:2], bad[0], *base[2:6], *bad[1:]]
        res = _run(args, env, tmp_path)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    res = _run(["tariffs", "set", "T-Z", "--site", "NOPE", "--currency", "USD"], env, tmp_path)
    assert res.returncode == 2 and "unknown site 'NOPE'" in res.stderr
    res = _run(
        ["tariffs", "set", "T-Z", "--charge-point", "CP-NONE", "--currency", "USD"], env, tmp_path
    )
    assert res.returncode == 2 and "unknown charge point 'CP-NONE'" in res.stderr
    assert db.execute("SELECT count(*) FROM tariff").fetchone() == (2,)
