"""The collector's writer: every row goes through here, and a caller is answered only after its
rows are committed.

Requests queue up while a batch is being committed, so the next batch carries all of them in one
transaction (group commit): throughput does not depend on one round trip per message. The queue
is bounded, so overload slows answers down instead of growing memory. Rows use natural keys with
`ON CONFLICT`, so retries and duplicates never double count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg_pool import AsyncConnectionPool

from ingest.normalise import METER_COLUMNS, MeterRow

log = logging.getLogger(__name__)

TIMESERIES = (
    "status_event",
    "meter_value",
    "transaction_event",
    "connection_event",
    "ocpp_message",
)


class Op(NamedTuple):
    """One statement and its parameters; `table`/`ts` let the writer make partitions ahead."""

    sql: str
    params: Sequence[Any]
    table: str | None = None
    ts: datetime | None = None


def _insert(table: str, columns: Iterable[str], conflict: str = "DO NOTHING") -> str:
    cols = list(columns)
    marks = ", ".join(["%s"] * len(cols))
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks}) ON CONFLICT {conflict}"


METER_SQL = _insert("meter_value", METER_COLUMNS)
STATUS_COLUMNS = (
    "ts", "charge_point_id", "evse_id", "connector_id", "status", "error_code", "info",
    "vendor_id", "vendor_error_code", "ocpp_version", "received_at",
)  # fmt: skip
STATUS_SQL = _insert("status_event", STATUS_COLUMNS)
TX_EVENT_COLUMNS = (
    "ts", "charge_point_id", "transaction_id", "seq_no", "event_type", "trigger_reason",
    "charging_state", "evse_id", "connector_id", "offline", "received_at",
)  # fmt: skip
TX_EVENT_SQL = _insert("transaction_event", TX_EVENT_COLUMNS)
CONNECTION_SQL = _insert(
    "connection_event", ("ts", "charge_point_id", "event", "event_key", "detail")
)
AUDIT_COLUMNS = (
    "ts", "charge_point_id", "direction", "ocpp_version", "message_type", "unique_id", "action",
    "payload", "raw", "error_code",
)  # fmt: skip
AUDIT_SQL = (
    f"INSERT INTO ocpp_message ({', '.join(AUDIT_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(AUDIT_COLUMNS))})"
)
EVSE_SQL = _insert("evse", ("charge_point_id", "evse_id"))
CONNECTOR_SQL = _insert("connector", ("charge_point_id", "evse_id", "connector_id"))

# One upsert for every transaction message of either version. First non-null wins for start and
# stop fields, so a retried or replayed message changes nothing and the order of arrival does not
# matter; the charging state follows the highest 2.0.1 seqNo.
TX_COLUMNS = (
    "charge_point_id", "transaction_id", "ocpp_version", "evse_id", "connector_id", "id_token",
    "id_token_type", "start_ts", "meter_start_wh", "stop_ts", "meter_stop_wh", "stop_reason",
    "reservation_id", "remote_start_id", "charging_state", "last_seq_no", "offline_seen",
)  # fmt: skip
TX_SQL = _insert(
    "transaction AS t",
    TX_COLUMNS,
    """(charge_point_id, transaction_id) DO UPDATE SET
        evse_id = coalesce(t.evse_id, excluded.evse_id),
        connector_id = coalesce(t.connector_id, excluded.connector_id),
        id_token = coalesce(t.id_token, excluded.id_token),
        id_token_type = coalesce(t.id_token_type, excluded.id_token_type),
        start_ts = coalesce(t.start_ts, excluded.start_ts),
        meter_start_wh = coalesce(t.meter_start_wh, excluded.meter_start_wh),
        stop_ts = coalesce(t.stop_ts, excluded.stop_ts),
        meter_stop_wh = coalesce(t.meter_stop_wh, excluded.meter_stop_wh),
        stop_reason = coalesce(t.stop_reason, excluded.stop_reason),
        reservation_id = coalesce(t.reservation_id, excluded.reservation_id),
        remote_start_id = coalesce(t.remote_start_id, excluded.remote_start_id),
        charging_state = CASE
            WHEN t.last_seq_no IS NULL OR excluded.last_seq_no >= t.last_seq_no
            THEN coalesce(excluded.charging_state, t.charging_state)
            ELSE t.charging_state END,
        last_seq_no = greatest(t.last_seq_no, excluded.last_seq_no),
        offline_seen = t.offline_seen OR excluded.offline_seen,
        updated_at = now()""",
)


def meter_ops(rows: Iterable[MeterRow]) -> list[Op]:
    return [Op(METER_SQL, row, "meter_value", row.ts) for row in rows]


def tx_op(**values: Any) -> Op:
    values.setdefault("offline_seen", False)
    return Op(TX_SQL, tuple(values.get(c) for c in TX_COLUMNS))


@dataclass
class _Request:
    ops: list[Op]
    done: asyncio.Future | None
    enqueued: float = field(default_factory=time.monotonic)


@dataclass
class WriterStats:
    committed_batches: int = 0
    committed_requests: int = 0
    committed_ops: int = 0
    failed_requests: int = 0
    last_commit_at: float | None = None
    rows_by_table: dict[str, int] = field(default_factory=dict)


class Writer:
    """Group-commit writer over one dedicated connection, plus a small pool for lookups."""

    def __init__(self, url: str, *, max_batch_ops: int = 5000, queue_size: int = 20000) -> None:
        self.url = url
        self.max_batch_ops = max_batch_ops
        self._queue: asyncio.Queue[_Request] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task | None = None
        self._conn: psycopg.AsyncConnection | None = None
        self._months: set[tuple[str, int, int]] = set()
        self.pool = AsyncConnectionPool(url, min_size=1, max_size=4, open=False)
        self.stats = WriterStats()

    async def start(self) -> None:
        self._conn = await psycopg.AsyncConnection.connect(self.url)
        await self.pool.open(wait=True, timeout=10)
        self._task = asyncio.create_task(self._run(), name="chargeops-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            await self._conn.close()
        await self.pool.close()

    async def flush(self) -> None:
        """Wait until everything queued so far is committed (or failed)."""
        await self._queue.join()

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    async def write(self, ops: list[Op]) -> None:
        """Return once `ops` are committed; raise if they could not be."""
        if not ops:
            return
        fut = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(ops, fut))
        await fut

    async def write_nowait(self, ops: list[Op]) -> None:
        """Queue `ops` without waiting for the commit (audit rows of outgoing frames)."""
        if ops:
            await self._queue.put(_Request(ops, None))

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            n_ops = len(first.ops)
            while n_ops < self.max_batch_ops and not self._queue.empty():
                req = self._queue.get_nowait()
                batch.append(req)
                n_ops += len(req.ops)
            try:
                await self._commit_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit_batch(self, batch: list[_Request]) -> None:
        try:
            await self._commit([op for req in batch for op in req.ops])
        except Exception as exc:
            if len(batch) == 1:
                self._fail(batch[0], exc)
                return
            # One bad request must not take the others down: retry them one at a time.
            for req in batch:
                try:
                    await self._commit(req.ops)
                except Exception as one_exc:
                    self._fail(req, one_exc)
                else:
                    self._succeed([req])
            return
        self._succeed(batch)

    def _succeed(self, batch: list[_Request]) -> None:
        self.stats.committed_batches += 1
        self.stats.last_commit_at = time.time()
        for req in batch:
            self.stats.committed_requests += 1
            self.stats.committed_ops += len(req.ops)
            for op in req.ops:
                if op.table:
                    self.stats.rows_by_table[op.table] = (
                        self.stats.rows_by_table.get(op.table, 0) + 1
                    )
            if req.done is not None and not req.done.done():
                req.done.set_result(None)

    def _fail(self, req: _Request, exc: Exception) -> None:
        self.stats.failed_requests += 1
        log.error("write failed (%d statements): %s", len(req.ops), exc)
        if req.done is not None and not req.done.done():
            req.done.set_exception(exc)

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(self.url)
        return self._conn

    async def _commit(self, ops: list[Op]) -> None:
        conn = await self._connection()
        await self._ensure_partitions(conn, ops)
        groups: dict[str, list[Sequence[Any]]] = {}
        for op in ops:  # dicts keep first-seen order: parents (evse) before children (connector)
            groups.setdefault(op.sql, []).append(op.params)
        try:
            async with conn.transaction(), conn.cursor() as cur:
                for sql, params in groups.items():
                    await cur.executemany(sql, params)
        except psycopg.OperationalError:
            await conn.close()
            raise

    async def _ensure_partitions(self, conn: psycopg.AsyncConnection, ops: list[Op]) -> None:
        wanted = {
            (op.table, op.ts.year, op.ts.month)
            for op in ops
            if op.ts is not None and op.table in TIMESERIES and 2000 <= op.ts.year < 2100
        } - self._months
        for table, year, month in sorted(wanted):
            await conn.execute(
                "SELECT chargeops_ensure_partitions(%s, make_timestamptz(%s, %s, 1, 0, 0, 0, 'UTC'),"
                " make_timestamptz(%s, %s, 1, 0, 0, 0, 'UTC'))",
                (table, year, month, year, month),
            )
            await conn.commit()
            self._months.add((table, year, month))
