"""Nothing acknowledged is lost, nothing is counted twice: database outages, kill -9, bursts.

These run real processes: the collector as a subprocess where it is killed, real websockets
clients that retry unanswered frames like chargers, and a TCP proxy that cuts the database off.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chargeops.settings import Settings
from ingest.server import Collector
from tests.netutil import RetryingChargePoint, meter_payload, proxied_url, proxy_for

OUTAGE_SECONDS = float(os.environ.get("CHARGEOPS_TEST_OUTAGE_SECONDS", "30"))
BASE = datetime(2025, 6, 1, tzinfo=UTC)


def _ts(i: int, k: int) -> str:
    return (BASE + timedelta(seconds=i * 100_000 + k)).isoformat().replace("+00:00", "Z")


async def _meter_load(
    cp: RetryingChargePoint, i: int, stop: asyncio.Event, start_k: int = 0
) -> None:
    k = start_k
    while not stop.is_set():
        await cp.call("MeterValues", meter_payload(1, _ts(i, k), float(k)))
        k += 1


def _assert_exactly_acked(db, clients: list[RetryingChargePoint]) -> int:
    """Every acknowledged MeterValues is stored once; returns how many were checked."""
    total = 0
    for cp in clients:
        acked = {
            a["payload"]["meterValue"][0]["timestamp"]
            for a in cp.acked
            if a["action"] == "MeterValues"
        }
        rows = db.execute(
            "SELECT ts, count(*) FROM meter_value WHERE charge_point_id = %s GROUP BY ts",
            (cp.cp_id,),
        ).fetchall()
        stored = {ts.isoformat().replace("+00:00", "Z"): n for ts, n in rows}
        missing = acked - set(stored)
        assert not missing, f"{cp.cp_id}: {len(missing)} acknowledged messages lost"
        assert all(n == 1 for n in stored.values())
        assert not cp.errors, cp.errors[:3]
        total += len(acked)
    return total


async def test_database_outage_spools_then_replays_exactly_once(db, database_url, tmp_path):
    proxy = proxy_for(database_url)
    settings = Settings(port=0, auto_register=True, data_dir=tmp_path)
    try:
        async with Collector(settings, proxied_url(database_url, proxy)) as col:
            url = col.url()
            meters = [RetryingChargePoint(url, f"OUT-{i}") for i in range(12)]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(_meter_load(cp, i, stop)) for i, cp in enumerate(meters)]
            await asyncio.sleep(1.5)
            proxy.cut()
            await asyncio.sleep(1.0)
            # during the outage: a 1.6 transaction starts; a new charger connects and is accepted
            tx_cp = RetryingChargePoint(url, "OUT-TX")
            started = await tx_cp.call(
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": "T1",
                    "meterStart": 100,
                    "timestamp": "2025-06-02T10:00:00Z",
                },
                timeout=20,
            )
            tx_id = started[2]["transactionId"]
            health = col.health()
            assert health["database_online"] is False and health["status"] == "spooling"
            assert health["spool_bytes"] > 0 and health["connected_charge_points"] >= 12
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - 1.0))
            proxy.restore()
            await asyncio.sleep(2.0)
            await tx_cp.call(
                "StopTransaction",
                {"transactionId": tx_id, "meterStop": 900, "timestamp": "2025-06-02T11:00:00Z"},
            )
            stop.set()
            await asyncio.gather(*tasks)
            for cp in [*meters, tx_cp]:
                await cp.close()
            await col.writer.flush()
            for _ in range(100):
                if col.health()["spool_segments"] == 0:
                    break
                await asyncio.sleep(0.1)
            health = col.health()
            assert health["spool_segments"] == 0 and health["database_online"] is True
            assert health["spooled_requests"] > 0 and health["replayed_segments"] >= 1
    finally:
        proxy.close()
    assert _assert_exactly_acked(db, meters) > 50
    assert db.execute(
        "SELECT start_ts, meter_start_wh, stop_ts, meter_stop_wh FROM transaction "
        "WHERE charge_point_id = 'OUT-TX' AND transaction_id = %s",
        (str(tx_id),),
    ).fetchone() == (
        datetime(2025, 6, 2, 10, tzinfo=UTC),
        100.0,
        datetime(2025, 6, 2, 11, tzinfo=UTC),
        900.0,
    )
    assert not list((tmp_path / "spool").glob("seg-*"))


# -- real processes -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_collector(database_url: str, data_dir: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=database_url, CHARGEOPS_DATA_DIR=str(data_dir),
               CHARGEOPS_AUTO_REGISTER="1", CHARGEOPS_LOG_LEVEL="WARNING")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "chargeops.cli", "collector", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                return proc if r.status == 200 else proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode()) from None
            time.sleep(0.1)
    raise RuntimeError("collector did not come up")


def _health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
        return json.loads(r.read())


async def test_kill_9_mid_load_loses_nothing_acknowledged(db, database_url, tmp_path):
    port = _free_port()
    proc = _start_collector(database_url, tmp_path, port)
    url = f"ws://127.0.0.1:{port}/ocpp"
    clients = [RetryingChargePoint(url, f"K9-{i}", "1.6") for i in range(30)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_meter_load(cp, i, stop)) for i, cp in enumerate(clients)]
    try:
        await asyncio.sleep(2.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await asyncio.sleep(0.5)
        proc = await asyncio.to_thread(_start_collector, database_url, tmp_path, port)
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*tasks)
        assert sum(cp.reconnects for cp in clients) >= len(clients)  # everyone saw the crash
    finally:
        for cp in clients:
            await cp.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert _assert_exactly_acked(db, clients) > 100


async def test_restart_with_a_spool_replays_it_first(db, database_url, tmp_path):
    proxy = proxy_for(database_url)
    port = _free_port()
    via_proxy = proxied_url(database_url, proxy)
    proc = _start_collector(via_proxy, tmp_path, port)
    url = f"ws://127.0.0.1:{port}/ocpp"
    clients = [RetryingChargePoint(url, f"SP-{i}", "1.6") for i in range(10)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_meter_load(cp, i, stop)) for i, cp in enumerate(clients)]
    try:
        await asyncio.sleep(1.0)
        proxy.cut()
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*tasks)
        assert _health(port)["spool_bytes"] > 0
        proc.send_signal(signal.SIGKILL)  # dies holding a spool
        proc.wait()
        assert list((tmp_path / "spool").glob("seg-*"))
        proxy.restore()
        proc = await asyncio.to_thread(_start_collector, via_proxy, tmp_path, port)
        health = _health(port)
        assert health["spool_segments"] == 0 and health["replayed_segments"] >= 1
    finally:
        for cp in clients:
            await cp.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        proxy.close()
    assert _assert_exactly_acked(db, clients) > 20
    assert db.execute("SELECT count(*) FROM spool_replay").fetchone()[0] >= 1


async def test_burst_larger_than_queue_backpressure_no_loss(db, database_url, tmp_path):
    settings = Settings(port=0, auto_register=True, data_dir=tmp_path, queue_size=8)
    async with Collector(settings, database_url) as col:
        clients = [RetryingChargePoint(col.url(), f"BURST-{i}") for i in range(200)]

        async def five(i: int, cp: RetryingChargePoint) -> None:
            for k in range(5):
                await cp.call("MeterValues", meter_payload(1, _ts(i, k), float(k)))

        await asyncio.gather(*(five(i, cp) for i, cp in enumerate(clients)))
        assert col.writer.queue_depth <= 8
        for cp in clients:
            await cp.close()
    assert _assert_exactly_acked(db, clients) == 1000
    assert db.execute("SELECT count(*) FROM meter_value").fetchone() == (1000,)


STORM_CHARGERS = int(os.environ.get("CHARGEOPS_TEST_STORM_CHARGERS", "1000"))
STORM_MESSAGES = int(os.environ.get("CHARGEOPS_TEST_STORM_MESSAGES", "100"))


@pytest.mark.once  # a load test of the collector; the database part is the spool test's
async def test_reconnect_storm_every_queued_message_stored_once(db, database_url, tmp_path):
    """After a site power cut or a collector restart: every charger reconnects within 10 s and
    replays its queued MeterValues (old timestamps). None is refused, all are stored once."""
    import random

    port = _free_port()
    proc = _start_collector(database_url, tmp_path, port)
    url = f"ws://127.0.0.1:{port}/ocpp"
    rng = random.Random(3)
    week_ago = datetime.now(UTC) - timedelta(days=7)

    async def charger(i: int) -> RetryingChargePoint:
        cp = RetryingChargePoint(url, f"STORM-{i:04d}", "1.6" if i % 2 else "2.0.1")
        await asyncio.sleep(rng.uniform(0, 10))
        if cp.version == "1.6":
            await cp.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        else:
            await cp.call(
                "BootNotification",
                {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
            )
        for k in range(STORM_MESSAGES):
            # queued during the last week: stamped in the past (a row stamped more than a day
            # ahead of its arrival would be quarantined, see ingest/quarantine.py)
            ts = (week_ago + timedelta(seconds=i * 500 + k)).isoformat().replace("+00:00", "Z")
            if cp.version == "1.6":
                await cp.call("MeterValues", meter_payload(1, ts, float(k)), timeout=300)
            else:
                payload = {
                    "evseId": 1,
                    "meterValue": [{"timestamp": ts, "sampledValue": [{"value": float(k)}]}],
                }
                await cp.call("MeterValues", payload, timeout=300)
        await cp.close()
        return cp

    try:
        clients = await asyncio.gather(*(charger(i) for i in range(STORM_CHARGERS)))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert sum(cp.refusals for cp in clients) == 0
    assert sum(len(cp.errors) for cp in clients) == 0
    per_cp = dict(
        db.execute(
            "SELECT charge_point_id, count(*) FROM meter_value WHERE charge_point_id LIKE 'STORM-%%' GROUP BY 1"
        ).fetchall()
    )
    assert len(per_cp) == STORM_CHARGERS and set(per_cp.values()) == {STORM_MESSAGES}
