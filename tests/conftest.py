"""Fixtures that give each test session its own database on a real PostgreSQL.

With DATABASE_URL set, a fresh database is created on that server (and dropped afterwards);
without it, the embedded PostgreSQL default is started in a temporary data folder, as a new user
would get it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v201 import ChargePoint as Cp201
from websockets.asyncio.client import connect as ws_connect

# The pipelines read these when first imported (at collection): the tests' partitions start at
# 2024-01-01, whatever first day a developer's own `.data` records (`chargeops.periods`), and
# nothing the tests run in process writes into that `.data`.
os.environ.setdefault("CHARGEOPS_PARTITIONS_START", "2024-01-01")
os.environ.setdefault("CHARGEOPS_DATA_DIR", tempfile.mkdtemp(prefix="chargeops-tests-data-"))

from chargeops.db import RAW_TABLES, create_database, drop_database, resolve_database_url, upgrade
from chargeops.settings import Settings
from ingest.server import Collector


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A maintenance URL of the server the tests use."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    data_dir = tmp_path_factory.mktemp("embedded")
    return resolve_database_url(Settings(database_url=None, data_dir=data_dir))


# CHARGEOPS_TEST_TIMESCALEDB=on (CI's TimescaleDB pass): the session database must get
# TimescaleDB, or every test errors with the reason; default auto (whatever the server has)
TEST_STORAGE = os.environ.get("CHARGEOPS_TEST_TIMESCALEDB", "auto")


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    name = f"chargeops_test_{uuid.uuid4().hex[:10]}"
    url = create_database(server_url, name)
    upgrade(url, timescaledb=TEST_STORAGE)
    yield url
    drop_database(server_url, name)


def empty_database(conn: psycopg.Connection) -> None:
    """Empty the raw tables and every table in schema analytics."""
    derived = [
        f"analytics.{name}"
        for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'analytics'"
        ).fetchall()
    ]
    conn.execute(f"TRUNCATE {', '.join([*RAW_TABLES, *derived])} CASCADE")


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection to an emptied database (`empty_database`)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        empty_database(conn)
        yield conn


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(host="127.0.0.1", port=0, auto_register=True, data_dir=tmp_path)


@pytest.fixture
async def collector(
    db: psycopg.Connection, database_url: str, settings: Settings
) -> AsyncIterator[Collector]:
    async with Collector(settings, database_url) as col:
        yield col


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@contextlib.asynccontextmanager
async def charge_point(
    collector: Collector, cp_id: str, version: str = "1.6", password: str | None = None
) -> AsyncIterator[Cp16 | Cp201]:
    """A real OCPP client (the library's charge-point side) connected to the collector."""
    headers = basic_auth(cp_id, password) if password else None
    ws = await ws_connect(
        f"{collector.url()}/{cp_id}",
        subprotocols=[f"ocpp{version}"],
        additional_headers=headers,
    )
    cp = (Cp16 if version == "1.6" else Cp201)(cp_id, ws, response_timeout=10)
    task = asyncio.create_task(cp.start())
    try:
        yield cp
    finally:
        await ws.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await asyncio.sleep(0.05)  # let the collector see the close
        await collector.writer.flush()


def mark_ok(db: psycopg.Connection, assets, days) -> None:
    """Record `assets` ok for `days` in analytics.partition_status, as the assets do when they
    succeed: for tests that write an asset's rows directly instead of materialising it."""
    with db.cursor() as cur:
        cur.executemany(
            """INSERT INTO analytics.partition_status (asset, day, status) VALUES (%s, %s, 'ok')
               ON CONFLICT (asset, day) DO UPDATE SET status = 'ok', detail = ''""",
            [(a, d) for a in assets for d in days],
        )
