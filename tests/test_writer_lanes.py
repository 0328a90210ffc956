"""The writer's two lanes: what a charger waits for is committed at once; rows nobody waits for
(audit rows of refused or outgoing frames, heartbeats) are held briefly and committed apart, and
are never lost by a flush or a close. Small batches are pipelined with `INSERT ... VALUES`, big
ones go through COPY: both store the same rows."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from ingest.store import Op, Writer

T0 = datetime(2026, 11, 2, 8, tzinfo=UTC)


def _event(cp: str, i: int) -> Op:
    ts = T0 + timedelta(seconds=i)
    return Op("connection_event", (ts, cp, "heartbeat", f"k{i}", json.dumps({"i": i})), ts)


def _audit(cp: str, i: int) -> Op:
    ts = T0 + timedelta(seconds=i)
    frame = json.dumps([2, f"id-{i}", "Heartbeat", {"n": i, "s": "ü\u2028"}])
    return Op(
        "ocpp_message", (ts, cp, "in", "1.6", 2, f"id-{i}", "Heartbeat", frame, None, None), ts
    )


def _count(db, table: str, cp: str) -> int:
    sql = f"SELECT count(*) FROM {table} WHERE charge_point_id = %s"
    return db.execute(sql, (cp,)).fetchone()[0]


async def test_an_awaited_write_does_not_wait_for_held_rows(db, database_url):
    writer = Writer(database_url, background_seconds=3600)
    await writer.start()
    try:
        for i in range(50):
            await writer.write_nowait([_event("HELD-1", i), _audit("HELD-1", i)])
        await writer.write([_event("WAITS-1", 0)])
        # acknowledged and stored while the rows nobody waits for are still held
        assert _count(db, "connection_event", "WAITS-1") == 1
        assert _count(db, "connection_event", "HELD-1") == 0
        await writer.flush()
        assert _count(db, "connection_event", "HELD-1") == 50
        assert _count(db, "ocpp_message", "HELD-1") == 50
        assert writer.stats.failed_requests == 0
    finally:
        await writer.close()


async def test_held_rows_are_stored_on_close(db, database_url):
    writer = Writer(database_url, background_seconds=3600)
    await writer.start()
    for i in range(10):
        await writer.write_nowait([_audit("CLOSE-1", i)])
    await writer.close()
    assert _count(db, "ocpp_message", "CLOSE-1") == 10


async def test_held_rows_are_not_starved_by_a_steady_stream_of_awaited_writes(db, database_url):
    writer = Writer(database_url, background_seconds=0.0, max_batch_ops=5)
    await writer.start()
    try:
        await writer.write_nowait([_audit("STARVE-1", i) for i in range(5)])
        # 400 awaited writes queued at once, 5 a batch: the queue is not empty for 80 batches
        writes = [asyncio.create_task(writer.write([_event("STREAM-1", i)])) for i in range(400)]
        await writes[199]
        assert _count(db, "ocpp_message", "STARVE-1") == 5
        await asyncio.gather(*writes)
    finally:
        await writer.close()


async def test_pipelined_and_copied_batches_store_the_same_rows(db, database_url):
    writer = Writer(database_url, pipeline_rows=200)
    await writer.start()
    try:
        for i in range(0, 300, 10):  # batches of 20 rows: pipelined
            await writer.write(
                [op for k in range(i, i + 10) for op in (_event("SMALL", k), _audit("SMALL", k))]
            )
        await writer.write([op for k in range(300) for op in (_event("BIG", k), _audit("BIG", k))])
    finally:
        await writer.close()

    def rows(table: str, cols: str, cp: str) -> list[tuple]:
        sql = f"SELECT {cols} FROM {table} WHERE charge_point_id = %s ORDER BY ts"
        return db.execute(sql, (cp,)).fetchall()

    for table, cols in (
        ("connection_event", "ts, event, event_key, detail"),
        ("ocpp_message", "ts, direction, message_type, unique_id, action, payload, raw"),
    ):
        small, big = rows(table, cols, "SMALL"), rows(table, cols, "BIG")
        assert len(small) == 300 and small == big
    assert rows("ocpp_message", "payload", "SMALL")[7][0] == [
        2,
        "id-7",
        "Heartbeat",
        {"n": 7, "s": "ü\u2028"},
    ]
