"""Faults between the collector and its database: poison in the spool, a cut, a frozen and a slow
path, a restart while the database is down, and 1.6 transaction ids assigned without it.

After each fault every acknowledged message is stored exactly once. The database path goes
through `tests.netutil.TcpProxy`, which the tests drive themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chargeops.settings import Settings
from ingest import spool as spool_mod
from ingest.server import Collector
from ingest.store import Writer
from ingest.txids import FALLBACK_BASE, TransactionIds
from tests.netutil import RetryingChargePoint, meter_payload, proxied_url, proxy_for


def _stamp(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


NOW = datetime.now(UTC).replace(microsecond=0)


async def _meters(cp: RetryingChargePoint, n: int, start: datetime, timeout: float = 60) -> None:
    for k in range(n):
        await cp.call(
            "MeterValues", meter_payload(1, _stamp(start + timedelta(seconds=k)), float(k)),
            timeout=timeout,
        )  # fmt: skip


def _stored_meter_times(db, cp_id: str) -> list[datetime]:
    rows = db.execute(
        "SELECT ts FROM meter_value WHERE charge_point_id = %s ORDER BY ts", (cp_id,)
    ).fetchall()
    return [r[0] for r in rows]


async def _drained(col: Collector, seconds: float = 30) -> dict:
    await col.writer.flush()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        health = col.health()
        if health["spool_segments"] == 0 and health["database_online"]:
            return health
        await asyncio.sleep(0.1)
    raise AssertionError(f"spool not drained: {col.health()}")


# -- row 1: nothing PostgreSQL would refuse reaches the spool ----------------------------------------
async def test_poison_acknowledged_during_an_outage_is_stored_and_the_rest_replays(
    db, database_url, tmp_path
):
    proxy = proxy_for(database_url)
    settings = Settings(port=0, auto_register=True, data_dir=tmp_path)
    try:
        async with Collector(settings, proxied_url(database_url, proxy)) as col:
            cp = RetryingChargePoint(col.url(), "POISON-1")
            await cp.call("Heartbeat", {})
            proxy.cut()
            boot = await cp.call(
                "BootNotification",
                {"chargePointVendor": "Evil\u0000Corp", "chargePointModel": "M\ud800X"},
                timeout=20,
            )
            assert boot[0] == 3 and boot[2]["status"] == "Accepted"
            nan = {"connectorId": 1, "meterValue": [{"timestamp": _stamp(NOW),
                                                     "sampledValue": [{"value": float("nan")}]}]}  # fmt: skip
            refused = await cp.call("MeterValues", nan, timeout=20)
            assert refused[0] == 4  # a number where the schema wants a string
            status = {"connectorId": 1, "errorCode": "NoError", "status": "Available",
                      "info": "door\u0000open", "timestamp": _stamp(NOW)}  # fmt: skip
            assert (await cp.call("StatusNotification", status, timeout=20))[0] == 3
            await _meters(cp, 5, NOW + timedelta(minutes=1), timeout=20)
            assert col.health()["status"] == "spooling"
            proxy.restore()
            health = await _drained(col)
            await _meters(cp, 2, NOW + timedelta(minutes=2))  # the writer is still alive
            await col.writer.flush()
            health = col.health()
            await cp.close()
    finally:
        proxy.close()
    assert health["status"] == "ok", health["problems"]
    assert health["dead_letters"] == 0 and health["repaired_values"] >= 3
    assert len(_stored_meter_times(db, "POISON-1")) == 7
    vendor, model = db.execute(
        "SELECT vendor, model FROM charge_point WHERE charge_point_id = 'POISON-1'"
    ).fetchone()
    assert vendor == "Evil\ufffdCorp" and model.startswith("M\ufffd")
    assert db.execute(
        "SELECT info FROM status_event WHERE charge_point_id = 'POISON-1'"
    ).fetchone() == ("door\ufffdopen",)
    # the refused NaN frame is audited as text, since jsonb cannot hold it
    raw = db.execute(
        "SELECT raw FROM ocpp_message WHERE charge_point_id = 'POISON-1' AND direction = 'in' "
        "AND raw LIKE '%NaN%'"
    ).fetchall()
    assert len(raw) == 1


def _segment(folder: Path, lines: list[bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "seg-20260101T000000000000-deadbeef.jsonl"
    path.write_bytes(b"".join(lines))
    return path


async def test_a_poisoned_segment_from_an_older_collector_sets_aside_only_the_bad_request(
    db, database_url, tmp_path
):
    """A spool written before values were cleaned: the bad request goes to spool_dead_letter
    with its reason, the others are replayed, and the collector starts (it used to exit)."""
    good = [
        spool_mod.encode([("connection_event", [NOW, "OLD-1", "boot", f"k{i}", '{"a": 1}'])])
        for i in range(2)
    ]
    bad = spool_mod.encode([("connection_event", [NOW, "OLD-1", "boot", "nul", "x\x00y"])])
    _segment(tmp_path / "spool", [good[0], bad, b"{not json at all\n", good[1]])
    settings = Settings(port=0, auto_register=True, data_dir=tmp_path)
    async with Collector(settings, database_url) as col:
        health = col.health()
    assert db.execute(
        "SELECT event_key FROM connection_event WHERE charge_point_id = 'OLD-1' ORDER BY 1"
    ).fetchall() == [("k0",), ("k1",)]
    dead = db.execute("SELECT line_no, reason, request FROM spool_dead_letter").fetchall()
    assert len(dead) == 1 and dead[0][0] == 1 and "nul" in dead[0][2].lower()
    assert health["status"] == "degraded" and health["dead_letters"] == 1
    assert any("spool_dead_letter" in p for p in health["problems"])
    assert not list((tmp_path / "spool").glob("seg-*"))
    set_aside = list((tmp_path / "spool" / "dead-letter").glob("*.jsonl"))
    assert len(set_aside) == 1 and b"not json at all" in set_aside[0].read_bytes()


async def test_a_request_the_database_refuses_fails_alone_in_its_batch(db, database_url, tmp_path):
    """An integer no column holds is refused before it is acknowledged; the others commit."""
    writer = Writer(database_url, spool_dir=tmp_path / "spool")
    await writer.start()
    try:
        from ingest.pgsafe import Unstorable
        from ingest.store import Op

        ok = [Op("connection_event", (NOW, "B-1", "boot", f"k{i}", None), NOW) for i in range(3)]
        huge = Op("evse", ("B-1", 2**40))
        results = await asyncio.gather(
            *(writer.write([op]) for op in ok), writer.write([huge]), return_exceptions=True
        )
        assert isinstance(results[-1], Unstorable) and results[-1].code.endswith("Violation")
        assert results[:3] == [None, None, None]
    finally:
        await writer.close()
    assert db.execute("SELECT count(*) FROM connection_event").fetchone() == (3,)


# -- row 4: a frozen or slow database path ------------------------------------------------------------
async def test_a_frozen_database_path_becomes_the_spool_path_within_seconds(
    db, database_url, tmp_path
):
    proxy = proxy_for(database_url)
    settings = Settings(port=0, auto_register=True, data_dir=tmp_path, db_timeout=2.0)
    try:
        async with Collector(settings, proxied_url(database_url, proxy)) as col:
            cp = RetryingChargePoint(col.url(), "FROZEN-1")
            await _meters(cp, 3, NOW)
            proxy.freeze()
            t0 = time.monotonic()
            await _meters(cp, 1, NOW + timedelta(minutes=1), timeout=30)
            first_answer_s = time.monotonic() - t0
            await _meters(cp, 20, NOW + timedelta(minutes=2), timeout=30)
            during = col.health()
            proxy.thaw()
            await _drained(col)
            await cp.close()
            after = col.health()
    finally:
        proxy.close()
    print(f"frozen database path: first answer after {first_answer_s:.2f} s (db_timeout 2 s)")
    assert during["status"] in ("spooling", "degraded") and not during["database_online"]
    assert after["database_timeouts"] >= 1
    assert len(_stored_meter_times(db, "FROZEN-1")) == 24


async def test_a_slow_database_path_loses_and_doubles_nothing(db, database_url, tmp_path):
    proxy = proxy_for(database_url)
    settings = Settings(port=0, auto_register=True, data_dir=tmp_path, db_timeout=5.0)
    try:
        async with Collector(settings, proxied_url(database_url, proxy)) as col:
            cps = [RetryingChargePoint(col.url(), f"SLOW-{i}") for i in range(4)]
            proxy.slow(0.02)
            await asyncio.gather(*(_meters(cp, 8, NOW) for cp in cps))
            proxy.slow(0.0)
            await _drained(col)
            for cp in cps:
                await cp.close()
    finally:
        proxy.close()
    for i in range(4):
        times = _stored_meter_times(db, f"SLOW-{i}")
        assert len(times) == len(set(times)) == 8


# -- the collector starts while the database is down -------------------------------------------------
def test_the_collector_starts_and_spools_when_the_database_is_down_at_start(tmp_path):
    from tests.test_durability import _free_port

    port = _free_port()
    dead = f"postgresql://postgres@127.0.0.1:{_free_port()}/nowhere?connect_timeout=1"
    env = dict(os.environ, DATABASE_URL=dead, CHARGEOPS_DATA_DIR=str(tmp_path),
               CHARGEOPS_AUTO_REGISTER="1", CHARGEOPS_LOG_LEVEL="WARNING")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "chargeops.cli", "collector", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        health = None
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    health = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert health is not None and health["database_online"] is False

        async def one_meter() -> list:
            cp = RetryingChargePoint(f"ws://127.0.0.1:{port}/ocpp", "DOWN-1")
            try:
                return await cp.call("MeterValues", meter_payload(1, _stamp(NOW), 1.0), timeout=20)
            finally:
                await cp.close()

        assert asyncio.run(one_meter())[0] == 3
        assert list((tmp_path / "spool").glob("seg-*"))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


# -- row 2: 1.6 transaction ids without the database ---------------------------------------------------
async def test_transaction_ids_without_the_database_are_unique_across_restarts_and_collectors(
    database_url, db, tmp_path
):
    start = datetime(2026, 11, 30, 10, tzinfo=UTC)
    seen: dict[int, str] = {}

    async def assign(ids: TransactionIds, who: str, evse: int, t: datetime) -> None:
        tx, ops = await ids.assign("CP-TX", evse, 1, "TAG", t, 0.0, None)
        assert ops, "assigned without the database, so the row still has to be written"
        assert tx not in seen, f"{who} got {tx}, already given to {seen[tx]}"
        assert tx < 2**31
        seen[tx] = who

    for collector in ("A", "B"):
        online = Writer(database_url)
        await online.start()
        try:  # one start while online: the node number and a reserved block, kept on disk
            ids = TransactionIds(online, state_path=tmp_path / collector / "txids.json")
            (tmp_path / collector).mkdir()
            tx, ops = await ids.assign(f"CP-{collector}", 1, 1, "TAG", start, 0.0, None)
            assert not ops
        finally:
            await online.close()
    for restart in range(2):
        for collector in ("A", "B"):
            offline = Writer("postgresql://postgres@127.0.0.1:1/nowhere")  # never started
            ids = TransactionIds(offline, state_path=tmp_path / collector / "txids.json")
            for k in range(130):  # through the reserved block and into the node's own range
                who = f"{collector}/run{restart}/{k}"
                t = start + timedelta(seconds=k // 2)  # connectors 1 and 2 in the same second
                await assign(ids, who, 1 + k % 2, t)
                if k % 2 == 0:  # and EVSE 9 (9 % 8 == 1) too
                    await assign(ids, who + "/evse9", 9, t)
            later = start + timedelta(days=900 + restart)
            await assign(ids, f"{collector}/run{restart}/later", 1, later)
    assert any(tx >= FALLBACK_BASE for tx in seen)
    v16 = db.execute(
        "SELECT count(*) FILTER (WHERE id_token_type IS NOT NULL) FROM transaction "
        "WHERE ocpp_version = '1.6'"
    ).fetchone()
    assert v16 == (0,)  # 1.6 idTags have no type: not "Central"


# -- row 9: one frame cannot make hundreds of partitions ---------------------------------------------
async def test_timestamps_far_from_arrival_are_quarantined_not_partitioned(collector, db):
    def partitions() -> int:
        return db.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'meter_value'::regclass"
        ).fetchone()[0]

    before = partitions()
    months = [datetime(1926 + i // 12, 1 + i % 12, 15, tzinfo=UTC) for i in range(0, 900, 9)]
    meter = [
        {"timestamp": _stamp(t), "sampledValue": [{"value": str(i)}]} for i, t in enumerate(months)
    ]
    meter.append({"timestamp": _stamp(NOW), "sampledValue": [{"value": "5"}]})
    cp = RetryingChargePoint(collector.url(), "MONTHS-1")
    try:
        reply = await cp.call("MeterValues", {"connectorId": 1, "meterValue": meter})
    finally:
        await cp.close()
    await collector.writer.flush()
    assert reply[0] == 3
    stored = _stored_meter_times(db, "MONTHS-1")
    assert NOW in stored and all(abs((t - NOW).days) <= 1098 for t in stored)
    quarantined = db.execute(
        "SELECT count(*) FROM quarantine WHERE charge_point_id = 'MONTHS-1' AND kind = 'meter_value'"
    ).fetchone()[0]
    assert quarantined == len(months) - (len(stored) - 1)
    assert partitions() - before <= 4, "at most the few months inside the window"
