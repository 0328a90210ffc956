"""OCPP 1.6 transaction ids, which the central system assigns in the StartTransaction answer.

Normally the database assigns them (a sequence; a retried StartTransaction finds its first id
through the unique key on charge point, EVSE and start time). While the database is unreachable,
ids come from a block reserved ahead, and once that is used up from a time-based range above
1.5e9 that the sequence does not reach; the start row then goes through the writer's spool.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime

from ingest.store import Op, Writer, is_connection_error

log = logging.getLogger(__name__)

BLOCK = 200
FALLBACK_BASE = 1_500_000_000
FALLBACK_SPAN = 600_000_000  # keeps ids under 2**31

START_SQL = """
INSERT INTO transaction (charge_point_id, transaction_id, ocpp_version, evse_id, connector_id,
                         id_token, id_token_type, start_ts, meter_start_wh, reservation_id)
VALUES (%s, nextval('transaction_id_seq')::text, '1.6', %s, %s, %s, 'Central', %s, %s, %s)
ON CONFLICT (charge_point_id, evse_id, start_ts) WHERE ocpp_version = '1.6'
DO UPDATE SET updated_at = now()
RETURNING transaction_id
"""


class TransactionIds:
    def __init__(self, writer: Writer, remember: int = 100_000) -> None:
        self.writer = writer
        self._block: list[int] = []
        self._recent: OrderedDict[tuple[str, int, datetime], int] = OrderedDict()
        self._remember = remember

    def _note(self, key: tuple[str, int, datetime], tx: int) -> int:
        self._recent[key] = tx
        self._recent.move_to_end(key)
        while len(self._recent) > self._remember:
            self._recent.popitem(last=False)
        return tx

    async def assign(
        self,
        charge_point_id: str,
        evse_id: int,
        connector_id: int,
        id_tag: str,
        start: datetime,
        meter_start: float,
        reservation_id: int | None,
    ) -> tuple[int, list[Op]]:
        """The id to answer with, and the rows still to write (empty when already committed)."""
        key = (charge_point_id, evse_id, start)
        row = (charge_point_id, evse_id, connector_id, id_tag, start, meter_start, reservation_id)
        if self.writer.online and not self.writer.spool:
            try:
                tx = await self._from_database(row)
                return self._note(key, tx), []
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
        tx = self._recent.get(key)
        if tx is None:
            tx = self._block.pop(0) if self._block else self._fallback(start, evse_id)
            log.warning("%s: transaction id %d assigned without the database", charge_point_id, tx)
        op = Op(
            "transaction_start_16",
            (charge_point_id, str(tx), "1.6", evse_id, connector_id, id_tag, "Central", start,
             meter_start, reservation_id),
        )  # fmt: skip
        return self._note(key, tx), [op]

    async def _from_database(self, row: tuple) -> int:
        async with self.writer.pool.connection() as conn:
            for _ in range(5):
                try:
                    result = await (await conn.execute(START_SQL, row)).fetchone()
                except Exception as exc:  # an id taken by a stop we never saw start, or a fallback
                    if getattr(exc, "sqlstate", None) == "23505":
                        continue
                    raise
                assert result is not None
                if len(self._block) < BLOCK // 2:
                    cur = await conn.execute(
                        "SELECT nextval('transaction_id_seq') FROM generate_series(1, %s)", (BLOCK,)
                    )
                    self._block.extend(r[0] for r in await cur.fetchall())
                return int(result[0])
        raise RuntimeError("could not assign a transaction id")

    @staticmethod
    def _fallback(start: datetime, evse_id: int) -> int:
        return FALLBACK_BASE + (int(start.timestamp()) * 8 + evse_id % 8) % FALLBACK_SPAN
