"""The collector's writer: every row goes through here, and a caller is answered only once its
rows are durable: committed, or appended to the fsynced local spool while the database is away.

Requests queue up while a batch is being committed, so the next batch carries all of them in one
transaction (group commit); time-series rows go in with `COPY` into a staging table and one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` per table. The queue is bounded, so overload slows
answers down instead of growing memory. Natural keys with `ON CONFLICT` mean retries, duplicates
and spool replays never double count.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg_pool import AsyncConnectionPool

from ingest import inventory, messages, pgsafe, quarantine
from ingest.clock import Clock, SystemClock
from ingest.normalise import METER_COLUMNS, MeterRow
from ingest.spool import Spool, SpoolFull, encode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    """How one kind of row is written: COPY through a staging table, or an executemany."""

    table: str
    columns: tuple[str, ...]
    sql: str | None = None  # None: COPY + INSERT ... SELECT
    on_conflict: bool = True
    timeseries: bool = False


def _insert(table: str, columns: Iterable[str], conflict: str = "DO NOTHING", casts=None) -> str:
    cols = list(columns)
    casts = casts or {}
    marks = ", ".join(f"%s{casts.get(c, '')}" for c in cols)
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks}) ON CONFLICT {conflict}"


STATUS_COLUMNS = (
    "ts", "charge_point_id", "evse_id", "connector_id", "status", "error_code", "info",
    "vendor_id", "vendor_error_code", "ocpp_version", "received_at",
)  # fmt: skip
TX_EVENT_COLUMNS = (
    "ts", "charge_point_id", "transaction_id", "seq_no", "event_type", "trigger_reason",
    "charging_state", "evse_id", "connector_id", "offline", "received_at",
)  # fmt: skip
CONNECTION_COLUMNS = ("ts", "charge_point_id", "event", "event_key", "detail")
AUDIT_COLUMNS = (
    "ts", "charge_point_id", "direction", "ocpp_version", "message_type", "unique_id", "action",
    "payload", "raw", "error_code",
)  # fmt: skip
TX_COLUMNS = (
    "charge_point_id", "transaction_id", "ocpp_version", "evse_id", "connector_id", "id_token",
    "id_token_type", "start_ts", "meter_start_wh", "stop_ts", "meter_stop_wh", "stop_reason",
    "reservation_id", "remote_start_id", "charging_state", "last_seq_no", "offline_seen",
)  # fmt: skip

# One upsert for every transaction message of either version. First non-null wins for start and
# stop fields, so a retried or replayed message changes nothing and the order of arrival does not
# matter; the charging state follows the highest 2.0.1 seqNo.
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
# A 1.6 start whose id was assigned without the database (during an outage).
TX_START_16_SQL = _insert(
    "transaction",
    ("charge_point_id", "transaction_id", "ocpp_version", "evse_id", "connector_id", "id_token",
     "id_token_type", "start_ts", "meter_start_wh", "reservation_id"),
)  # fmt: skip
BOOT_SQL = """UPDATE charge_point SET vendor = %s, model = %s,
                  serial_number = coalesce(%s, serial_number),
                  firmware_version = coalesce(%s, firmware_version),
                  ocpp_version = %s, last_boot_at = %s, last_seen_at = %s
              WHERE charge_point_id = %s"""
REGISTER_SQL = _insert(
    "charge_point", ("charge_point_id", "password_hash", "auto_registered"), "DO NOTHING"
)

KINDS: dict[str, Kind] = {
    "meter_value": Kind("meter_value", METER_COLUMNS, timeseries=True),
    "status_event": Kind("status_event", STATUS_COLUMNS, timeseries=True),
    "transaction_event": Kind("transaction_event", TX_EVENT_COLUMNS, timeseries=True),
    "connection_event": Kind("connection_event", CONNECTION_COLUMNS, timeseries=True),
    "ocpp_message": Kind("ocpp_message", AUDIT_COLUMNS, on_conflict=False, timeseries=True),
    "register": Kind("charge_point", (), REGISTER_SQL),
    "boot": Kind("charge_point", (), BOOT_SQL),
    "evse": Kind("evse", (), _insert("evse", ("charge_point_id", "evse_id"))),
    "connector": Kind(
        "connector", (), _insert("connector", ("charge_point_id", "evse_id", "connector_id"))
    ),
    "transaction": Kind("transaction", TX_COLUMNS, TX_SQL),
    "transaction_start_16": Kind("transaction", (), TX_START_16_SQL),
    "quarantine": Kind("quarantine", (), _insert("quarantine", quarantine.COLUMNS)),
    # issue 16 (ingest/inventory.py, ingest/messages.py): declared inventory, reported variables,
    # every other charger message, the first TransactionEvent digest per seqNo
    "evse_declared": Kind("evse", (), inventory.EVSE_DECLARED_SQL),
    "connector_declared": Kind("connector", (), inventory.CONNECTOR_DECLARED_SQL),
    "charger_variable": Kind("charger_variable", (), inventory.VARIABLE_SQL),
    "charger_message": Kind("charger_message", messages.COLUMNS, timeseries=True),
    "transaction_event_digest": Kind(
        "transaction_event_digest", (), _insert("transaction_event_digest", messages.DIGEST_COLUMNS)
    ),
}


class Op(NamedTuple):
    """One row of a kind. `ts` lets the writer make native partitions ahead."""

    kind: str
    params: Sequence[Any]
    ts: datetime | None = None


def quarantine_op(**fields: Any) -> Op:
    """A row the collector acknowledges but keeps out of the data (`quarantine.row`'s fields)."""
    return Op("quarantine", quarantine.row(**fields))


def meter_ops(rows: Iterable[MeterRow]) -> list[Op]:
    """Meter rows, each to `meter_value` or, if it cannot be true, to `quarantine`."""
    ops = []
    for row in rows:
        reason = quarantine.why_value(row.value) or quarantine.why_timestamp(
            row.ts, row.received_at
        )
        if reason is None:
            ops.append(Op("meter_value", row, row.ts))
            continue
        ops.append(
            quarantine_op(
                received_at=row.received_at,
                charge_point_id=row.charge_point_id,
                kind="meter_value",
                ts=row.ts,
                evse_id=row.evse_id,
                connector_id=row.connector_id,
                transaction_id=row.transaction_id,
                what=row.measurand,
                raw_value=row.raw_value,
                reason=reason,
            )
        )
    return ops


def status_op(row: Sequence[Any]) -> Op:
    """A status row (STATUS_COLUMNS) to `status_event`, or to `quarantine` when stamped far
    ahead of its arrival."""
    ts, cp, evse_id, connector_id, status = row[:5]
    received_at = row[-1]
    reason = quarantine.why_timestamp(ts, received_at)
    if reason is None:
        return Op("status_event", row, ts)
    return quarantine_op(
        received_at=received_at,
        charge_point_id=cp,
        kind="status_event",
        ts=ts,
        evse_id=evse_id,
        connector_id=connector_id,
        what=status,
        reason=reason,
    )


def tx_op(**values: Any) -> Op:
    values.setdefault("offline_seen", False)
    return Op("transaction", tuple(values.get(c) for c in TX_COLUMNS))


def is_connection_error(exc: BaseException) -> bool:
    """A failure of the database's reachability, as opposed to one of the data."""
    if isinstance(exc, psycopg.errors.ProgramLimitExceeded | psycopg.errors.DataError):
        return False
    return isinstance(exc, psycopg.OperationalError | OSError | asyncio.TimeoutError)


# Time-series rows whose timestamp the charger chose; the audit log is stamped on arrival.
_WINDOWED = frozenset({"meter_value", "status_event", "transaction_event", "connection_event"})

_HAS_RECEIVED_AT = frozenset({"meter_value", "status_event", "transaction_event"})  # last column

DEAD_LETTER_SQL = """INSERT INTO spool_dead_letter (segment_id, line_no, reason, request)
                     VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"""


def _sever(conn: psycopg.AsyncConnection) -> None:
    """Shut the connection's socket, so a wait on a frozen path fails now instead of hanging
    (an asyncio cancel would make psycopg wait up to 10 s more for a cancel request)."""
    with contextlib.suppress(Exception):
        fd = conn.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)


@dataclass
class _Request:
    ops: list[Op]
    done: asyncio.Future | None


@dataclass
class WriterStats:
    committed_batches: int = 0
    committed_requests: int = 0
    spooled_requests: int = 0
    replayed_segments: int = 0
    failed_requests: int = 0
    dead_letters: int = 0
    repaired_values: int = 0
    quarantined_rows: int = 0
    database_timeouts: int = 0
    last_commit_at: float | None = None
    rows_by_kind: dict[str, int] = field(default_factory=dict)


class Writer:
    """Group-commit writer over one dedicated connection, a spool for outages, and a small pool
    for lookups."""

    def __init__(
        self,
        url: str,
        *,
        spool_dir: Path | None = None,
        spool_max_bytes: int = 1 << 30,
        max_batch_ops: int = 20000,
        queue_size: int = 5000,
        retry_seconds: float = 1.0,
        background_seconds: float = 0.1,
        pipeline_rows: int = 200,
        db_timeout: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self.url = url
        self.max_batch_ops = max_batch_ops
        self.retry_seconds = retry_seconds
        self.background_seconds = background_seconds
        self.pipeline_rows = pipeline_rows
        self.db_timeout = db_timeout
        self.clock: Clock = clock or SystemClock()
        self.problems: dict[str, str] = {}  # what makes /health say "degraded", and why
        # run once (in a thread) before the first write after the database is reached: the
        # migrations, when the collector started while the database was down
        self.prepare: Callable[[], object] | None = None
        self._queue: asyncio.Queue[_Request] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task | None = None
        self._held: list[_Request] = []  # background requests taken off the queue, not yet stored
        self._held_since = 0.0
        self._flushing = 0  # flush() calls waiting: nothing is held meanwhile
        self._conn: psycopg.AsyncConnection | None = None
        self._months: set[tuple[str, int, int]] = set()
        self._staged: set[str] = set()
        self.spool = Spool(spool_dir, spool_max_bytes) if spool_dir is not None else None
        self.online = False
        self._last_attempt = 0.0
        self._last_progress = time.monotonic()
        self._probe: asyncio.Task | None = None
        self.pool = AsyncConnectionPool(
            url, min_size=1, max_size=4, open=False, timeout=5, kwargs=self._connect_kwargs()
        )
        self.stats = WriterStats()

    def _connect_kwargs(self) -> dict[str, Any]:
        """libpq settings that turn a dead or black-holed TCP path into an error in seconds
        (ignored on a Unix socket, where the kernel tells at once)."""
        return {
            "connect_timeout": max(2, round(self.db_timeout)),
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            "tcp_user_timeout": int(self.db_timeout * 1000),
        }

    async def start(self) -> None:
        """Start; a spool left by an earlier run is replayed before anything new is written."""
        await self.pool.open(wait=False)
        try:
            await self._connection()
            self.online = True
            if self.spool:
                await self._replay()
        except Exception as exc:
            if not is_connection_error(exc) or self.spool is None:
                raise
            log.error("database unreachable at start (%s); spooling to %s", exc, self.spool.dir)
            self.online = False
        self._task = asyncio.create_task(self._run(), name="chargeops-writer")

    async def close(self, timeout: float = 30.0) -> None:
        """Commit (or spool) what is queued, then stop; gives up waiting after `timeout`."""
        if self._task is not None:
            if not self._task.done():
                try:
                    await asyncio.wait_for(self.flush(), timeout)
                except TimeoutError:
                    log.error(
                        "closing with %d requests still queued (not acknowledged)",
                        self._queue.qsize(),
                    )
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.spool is not None:
            self.spool.seal()
        if self._conn is not None:
            await self._conn.close()
        await self.pool.close()

    async def flush(self) -> None:
        """Wait until everything queued so far is durable (or failed); held rows go at once."""
        self._flushing += 1
        try:
            await self._queue.put(_Request([], None))  # wakes a writer waiting out its hold
            await self._queue.join()
        finally:
            self._flushing -= 1

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def health_problems(self) -> list[str]:
        """Why the writer is not healthy, for /health (empty when it is)."""
        problems = list(self.problems.values())
        if self._task is not None and self._task.done():
            problems.append("the writer task has stopped")
        stalled = time.monotonic() - self._last_progress
        if self._queue.qsize() and stalled > 2 * self.db_timeout:
            problems.append(
                f"{self._queue.qsize()} requests queued and none stored for {stalled:.0f} s"
            )
        return problems

    async def write(self, ops: list[Op]) -> None:
        """Return once `ops` are durable; raise if they could not be stored (`pgsafe.Unstorable`
        before anything is queued)."""
        if not ops:
            return
        ops = self.admit(ops)
        fut = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(ops, fut))
        await fut

    async def write_nowait(self, ops: list[Op]) -> None:
        """Queue `ops` without waiting (audit rows of outgoing frames, heartbeats)."""
        if ops:
            try:
                ops = self.admit(ops)
            except pgsafe.Unstorable as exc:
                log.warning("dropped %d unstorable rows: %s", len(ops), exc.description)
                return
            await self._queue.put(_Request(ops, None))

    def admit(self, ops: list[Op]) -> list[Op]:
        """`ops` made storable: cleaned values (`pgsafe`), and a row stamped outside the sane
        window around its arrival sent to `quarantine` instead of making a partition for it."""
        now = self.clock.now()
        out: list[Op] = []
        for op in ops:
            params, repaired = pgsafe.clean_params(op.kind, op.params)
            if repaired:
                self.stats.repaired_values += repaired
                log.warning("%s: %d value(s) PostgreSQL would refuse, replaced", op.kind, repaired)
            if op.kind in _WINDOWED and op.ts is not None:
                received = params[-1] if op.kind in _HAS_RECEIVED_AT else now
                reason = quarantine.why_timestamp(op.ts, received)
                if reason is not None:
                    self.stats.quarantined_rows += 1
                    out.append(_quarantined(op.kind, params, op.ts, received, reason))
                    continue
            out.append(op if not repaired else Op(op.kind, params, op.ts))
        return out

    # -- the writer task -------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the writer task die, and never silently
                log.exception("writer step failed; carrying on")
                self.problems["writer"] = f"{type(exc).__name__}: {exc}"[:300]
                await asyncio.sleep(self.retry_seconds)

    async def _step(self) -> None:
        overdue = (bool(self._held) and self._flushing > 0) or self._held_due(holds=1)
        if self._queue.empty() and overdue:
            await self._store_held()
            return
        timeout = self.retry_seconds
        if self._held:
            timeout = max(0.001, self._held_since + self.background_seconds - time.monotonic())
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout=timeout)
        except TimeoutError:
            if self._held:
                await self._store_held()
            elif self.spool:
                await self._try_replay()
            return
        batch = [first]
        n_ops = len(first.ops)
        while n_ops < self.max_batch_ops and not self._queue.empty():
            req = self._queue.get_nowait()
            batch.append(req)
            n_ops += len(req.ops)
        # what a charger waits for is committed at once and alone. The rest (audit rows of
        # refused or outgoing frames, heartbeats) is held for up to `background_seconds`, then
        # committed in small transactions that do not wait for the WAL flush, when no awaited
        # request is queued (or, if there never is such a moment, one between two awaited
        # batches): a charger flooding refused frames costs the writer a few commits a second,
        # not one a frame, and another charger's answer waits for one small commit at most.
        awaited = [req for req in batch if req.done is not None]
        if len(awaited) < len(batch):
            if not self._held:
                self._held_since = time.monotonic()
            self._held += [req for req in batch if req.done is None]
        if awaited:
            await self._store_part(awaited)
        # held rows wait for a moment without awaited requests, but not for ever: after ten
        # holds, or once they fill a batch, a chunk goes between two awaited batches
        if overdue and (not awaited or self._held_due(holds=10)):
            await self._store_held()

    def _held_due(self, holds: float) -> bool:
        """Rows are held and have been for `holds` hold periods, or fill a batch."""
        return bool(self._held) and (
            time.monotonic() - self._held_since >= holds * self.background_seconds
            or sum(len(req.ops) for req in self._held) >= self.max_batch_ops
        )

    async def _store_held(self) -> None:
        """Store the oldest of the held requests, `pipeline_rows` rows or so at a time."""
        n = n_ops = 0
        while n < len(self._held) and (
            n == 0 or n_ops + len(self._held[n].ops) <= self.pipeline_rows
        ):
            n_ops += len(self._held[n].ops)
            n += 1
        part, self._held = self._held[:n], self._held[n:]
        await self._store_part(part, durable=False)

    async def _store_part(self, part: list[_Request], durable: bool = True) -> None:
        """Store `part`; whatever goes wrong fails its requests (never the writer), and each is
        marked done in the queue."""
        try:
            if any(req.ops for req in part):
                await self._store_batch(part, durable=durable)
        except Exception as exc:
            log.exception("writer batch failed")
            self.problems["writer"] = f"{type(exc).__name__}: {exc}"[:300]
            for req in part:
                self._fail(req, exc)
        else:
            self.problems.pop("writer", None)
        finally:
            for _ in part:
                self._queue.task_done()

    async def _store_batch(self, batch: list[_Request], durable: bool = True) -> None:
        """Commit `batch` (or spool it while the database is away); `durable` False: nothing in
        it is acknowledged on commit, so the commit does not wait for the WAL flush
        (`synchronous_commit = off`: a crash of the server's machine may lose the last fraction
        of a second of such rows, which a crash of the collector would lose from its queue
        anyway)."""
        if self.spool and not await self._try_replay():
            await self._spool_batch(batch)  # keep order: nothing overtakes the spool
            return
        if not self.online and not await self._try_connect():
            await self._spool_batch(batch)
            return
        try:
            await self._commit([op for req in batch for op in req.ops], durable=durable)
        except Exception as exc:
            if is_connection_error(exc):
                self._went_offline(exc)
                await self._spool_batch(batch)
                return
            if len(batch) == 1:
                self._fail(batch[0], exc)
                return
            await self._commit_one_by_one(batch)
            return
        self._succeed(batch)

    async def _commit_one_by_one(self, batch: list[_Request]) -> None:
        """One bad request must not take the others down, nor cost them a commit each: one
        transaction, a savepoint per request; the bad ones fail alone."""
        conn = None
        try:
            conn = await self._connection()
            with self._deadline(conn):
                await self._ensure_partitions(conn, [op for req in batch for op in req.ops])
                async with conn.transaction():
                    refused = await self._apply_each(conn, [req.ops for req in batch])
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            if conn is not None:
                await self._close_quietly(conn)
            self._went_offline(exc)
            await self._spool_batch(batch)
            return
        for i, exc in refused.items():
            self._fail(batch[i], exc)
        good = [req for i, req in enumerate(batch) if i not in refused]
        if good:
            self._succeed(good)

    async def _apply_each(
        self, conn: psycopg.AsyncConnection, requests: list[list[Op]]
    ) -> dict[int, BaseException]:
        """Apply each request in a savepoint of the open transaction; the ones PostgreSQL
        refused, by index (a connection error is raised: it concerns them all)."""
        refused: dict[int, BaseException] = {}
        for i, ops in enumerate(requests):
            try:
                async with conn.transaction():
                    await self._apply(conn, ops, again=True)
            except Exception as exc:
                self._staged = set()  # rolled back with the savepoint
                if is_connection_error(exc):
                    raise
                refused[i] = exc
        return refused

    def _went_offline(self, exc: BaseException) -> None:
        if self.online:
            where = self.spool.dir if self.spool is not None else "nowhere (no spool configured)"
            log.error("database unreachable (%s); spooling to %s", str(exc).strip(), where)
        self.online = False

    async def _spool_batch(self, batch: list[_Request]) -> None:
        if self.spool is None:
            for req in batch:
                self._fail(req, ConnectionError("database unreachable and no spool configured"))
            return
        lines = [encode([(op.kind, list(op.params)) for op in req.ops]) for req in batch]
        while True:
            try:
                await asyncio.to_thread(self.spool.append, lines)
                break
            except SpoolFull:
                # back-pressure: answers wait until the database returns and the spool drains
                await asyncio.sleep(self.retry_seconds)
                if await self._try_replay() and not self.spool:
                    await self._store_batch(batch)
                    return
        self.stats.spooled_requests += len(batch)
        self._last_progress = time.monotonic()
        for req in batch:
            if req.done is not None and not req.done.done():
                req.done.set_result(None)

    async def _try_connect(self) -> bool:
        """True once the database answers again. The attempt runs beside the writer, so a
        database that accepts connections and then says nothing (a frozen path) costs the
        chargers nothing: their requests go on to the spool meanwhile."""
        probe = self._probe
        if probe is None:
            now = time.monotonic()
            if now - self._last_attempt < self.retry_seconds:
                return False
            self._last_attempt = now
            probe = self._probe = asyncio.create_task(self._connection(), name="db-probe")
            await asyncio.wait({probe}, timeout=0.25)  # a healthy server answers within this
        if not probe.done():
            return False
        self._probe = None
        exc = probe.exception()
        if exc is not None:
            if not is_connection_error(exc):
                raise exc
            return False
        if not self.online:
            log.info("database reachable again")
        self.online = True
        return True

    async def _try_replay(self) -> bool:
        """Replay the spool if the database is back; True when the spool is now empty."""
        if not self.online and not await self._try_connect():
            return False
        try:
            await self._replay()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            self._went_offline(exc)
            return False
        return True

    async def _replay(self) -> None:
        assert self.spool is not None
        self.spool.seal()
        segments = self.spool.segments()
        if segments:
            log.info("replaying %d spool segment(s) from %s", len(segments), self.spool.dir)
        for segment in segments:
            seg_id = self.spool.segment_id(segment)
            requests = [
                (line_no, [Op(kind, params, _ts_of(kind, params)) for kind, params in request])
                for line_no, request in self.spool.read_numbered(segment)
            ]
            ops = [op for _, req_ops in requests for op in req_ops]
            try:
                await self._replay_segment(seg_id, ops, requests, one_by_one=False)
            except Exception as exc:
                if is_connection_error(exc):
                    raise
                # a request PostgreSQL refuses: set it aside, replay everything else
                log.error("spool segment %s refused whole (%s); replaying it request by "
                          "request", seg_id, str(exc).strip())  # fmt: skip
                await self._replay_segment(seg_id, ops, requests, one_by_one=True)
            self.problems.pop("replay", None)
            self.spool.remove(segment)
            self.stats.replayed_segments += 1
            self.stats.last_commit_at = time.time()
            log.info("replayed spool segment %s (%d rows)", seg_id, len(ops))

    async def _replay_segment(
        self,
        seg_id: str,
        ops: list[Op],
        requests: list[tuple[int, list[Op]]],
        *,
        one_by_one: bool,
    ) -> None:
        """Apply one segment and mark it replayed, in one transaction; `one_by_one` gives each
        request a savepoint and moves a refused one to `spool_dead_letter` with its reason."""
        assert self.spool is not None
        conn = await self._connection()
        try:
            with self._deadline(conn):
                await self._ensure_partitions(conn, ops)
                async with conn.transaction():
                    done = await (
                        await conn.execute(
                            "SELECT 1 FROM spool_replay WHERE segment_id = %s", (seg_id,)
                        )
                    ).fetchone()
                    if done is not None:
                        return
                    if not one_by_one:
                        await self._apply(conn, ops)
                    else:
                        refused = await self._apply_each(conn, [r for _, r in requests])
                        for i, exc in refused.items():
                            line_no, req_ops = requests[i]
                            await self._dead_letter(conn, seg_id, line_no, req_ops, exc)
                    await conn.execute(
                        "INSERT INTO spool_replay (segment_id, operations) VALUES (%s, %s)",
                        (seg_id, len(ops)),
                    )
        except Exception as exc:
            self._staged = set()  # temporary tables made in a rolled-back transaction are gone
            if is_connection_error(exc):
                await self._close_quietly(conn)
            else:
                self.problems["replay"] = f"segment {seg_id}: {exc}"[:300]
            raise

    async def _dead_letter(
        self,
        conn: psycopg.AsyncConnection,
        seg_id: str,
        line_no: int,
        ops: list[Op],
        exc: BaseException,
    ) -> None:
        reason = f"{type(exc).__name__}: {str(exc).strip()}"[:1000]
        request = encode([(op.kind, list(op.params)) for op in ops]).decode("ascii").strip()
        await conn.execute(DEAD_LETTER_SQL, (seg_id, line_no, reason, request))
        self.stats.dead_letters += 1
        self.problems["dead_letter"] = (
            f"{self.stats.dead_letters} spooled request(s) set aside in spool_dead_letter; "
            f"last: {reason}"
        )[:300]
        log.error("spool %s line %d set aside in spool_dead_letter: %s", seg_id, line_no, reason)

    async def _close_quietly(self, conn: psycopg.AsyncConnection) -> None:
        with contextlib.suppress(Exception):
            await conn.close()

    @contextlib.contextmanager
    def _deadline(self, conn: psycopg.AsyncConnection):
        """Sever `conn` if the work inside takes longer than `db_timeout`: a frozen database
        path becomes a connection error (and the spool path) in seconds."""

        def expire() -> None:
            self.stats.database_timeouts += 1
            log.error("no answer from the database in %.1f s: treating it as unreachable",
                      self.db_timeout)  # fmt: skip
            _sever(conn)

        handle = asyncio.get_running_loop().call_later(self.db_timeout, expire)
        try:
            yield
        finally:
            handle.cancel()

    @contextlib.asynccontextmanager
    async def lookup(self):
        """A pooled connection for a lookup, severed if the database does not answer in time."""
        if not self.online:
            raise ConnectionError("database offline")
        async with self.pool.connection(timeout=self.db_timeout) as conn:
            with self._deadline(conn):
                yield conn

    def _succeed(self, batch: list[_Request]) -> None:
        self._last_progress = time.monotonic()
        self.stats.committed_batches += 1
        self.stats.last_commit_at = time.time()
        by_kind = self.stats.rows_by_kind
        for req in batch:
            self.stats.committed_requests += 1
            for op in req.ops:
                by_kind[op.kind] = by_kind.get(op.kind, 0) + 1
            if req.done is not None and not req.done.done():
                req.done.set_result(None)

    def _fail(self, req: _Request, exc: BaseException) -> None:
        self.stats.failed_requests += 1
        log.error("write failed (%d rows): %s", len(req.ops), exc)
        if req.done is not None and not req.done.done():
            req.done.set_exception(exc)

    # -- the database side -----------------------------------------------------------------------
    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self.prepare is not None:
                await asyncio.to_thread(self.prepare)
                self.prepare = None
            self._conn = await asyncio.wait_for(
                psycopg.AsyncConnection.connect(self.url, **self._connect_kwargs()),
                self.db_timeout + 1,
            )
            self._staged = set()
        return self._conn

    async def _commit(self, ops: list[Op], durable: bool = True) -> None:
        conn = await self._connection()
        try:
            with self._deadline(conn):
                await self._ensure_partitions(conn, ops)
                # a small batch (the usual one: a few chargers' frames) goes in one round trip:
                # the statements are pipelined and COPY, which cannot be, is left to big ones
                direct = len(ops) <= self.pipeline_rows
                pipeline = conn.pipeline() if direct else contextlib.nullcontext()
                async with pipeline, conn.transaction():
                    if not durable:
                        await conn.execute("SET LOCAL synchronous_commit = off")
                    await self._apply(conn, ops, direct=direct)
        except Exception as exc:
            self._staged = set()  # temporary tables made in a rolled-back transaction are gone
            if is_connection_error(exc):
                await self._close_quietly(conn)
            raise

    async def _apply(
        self,
        conn: psycopg.AsyncConnection,
        ops: Iterable[Op],
        *,
        again: bool = False,
        direct: bool = False,
    ) -> None:
        """Write `ops`; `again`: more `_apply` calls follow in the same transaction, so each
        staging table is emptied after use (it is otherwise emptied at commit); `direct`: every
        kind with an `INSERT ... VALUES` (no COPY), for a pipeline."""
        groups: dict[str, list[Sequence[Any]]] = {}
        for op in ops:  # first-seen order: parents (charge point, evse) before children
            groups.setdefault(op.kind, []).append(op.params)
        async with conn.cursor() as cur:
            for kind_name, rows in groups.items():
                kind = KINDS[kind_name]
                if kind.sql is not None or direct:
                    await cur.executemany(kind.sql or _values_sql(kind), rows)
                    continue
                stage = f"_stage_{kind.table}"
                if stage not in self._staged:
                    await cur.execute(
                        f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                        f"(LIKE {kind.table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                    )
                    self._staged.add(stage)
                cols = ", ".join(kind.columns)
                async with cur.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        await copy.write_row(row)
                conflict = " ON CONFLICT DO NOTHING" if kind.on_conflict else ""
                await cur.execute(
                    f"INSERT INTO {kind.table} ({cols}) SELECT {cols} FROM {stage}{conflict}"
                )
                if again:
                    await cur.execute(f"DELETE FROM {stage}")

    async def _ensure_partitions(self, conn: psycopg.AsyncConnection, ops: list[Op]) -> None:
        wanted = {
            (KINDS[op.kind].table, op.ts.year, op.ts.month)
            for op in ops
            if op.ts is not None and 2000 <= op.ts.year < 2100
        } - self._months
        if not wanted:
            return
        try:
            for table, year, month in sorted(wanted):
                await conn.execute(
                    "SELECT chargeops_ensure_partitions(%s, make_timestamptz(%s, %s, 1, 0, 0, 0, 'UTC'),"
                    " make_timestamptz(%s, %s, 1, 0, 0, 0, 'UTC'))",
                    (table, year, month, year, month),
                )
                await conn.commit()
                self._months.add((table, year, month))
        except psycopg.OperationalError:
            await conn.close()
            raise


@functools.cache
def _values_sql(kind: Kind) -> str:
    """The row-by-row twin of a COPY kind's `INSERT ... SELECT`."""
    cols = ", ".join(kind.columns)
    marks = ", ".join(["%s"] * len(kind.columns))
    conflict = " ON CONFLICT DO NOTHING" if kind.on_conflict else ""
    return f"INSERT INTO {kind.table} ({cols}) VALUES ({marks}){conflict}"


def _quarantined(
    kind: str, params: Sequence[Any], ts: datetime, received_at: datetime, reason: str
) -> Op:
    return quarantine_op(
        received_at=received_at,
        charge_point_id=str(params[1]),
        kind=kind,
        ts=ts,
        what=str(params[2]) if len(params) > 2 else "",
        reason=reason,
    )


def _ts_of(kind: str, params: Sequence[Any]) -> datetime | None:
    if KINDS[kind].timeseries and params and isinstance(params[0], datetime):
        return params[0]
    return None
