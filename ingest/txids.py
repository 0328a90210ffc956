"""OCPP 1.6 transaction ids, which the central system assigns in the StartTransaction answer.

Normally the database assigns them (a sequence; a retried StartTransaction finds its first id
through the unique key on charge point, EVSE and start time). While the database is unreachable,
ids come from a block of that sequence reserved ahead, and once that is used up from a range of
this collector's own above 1.5e9, which the sequence does not reach: its node number (from the
database, once) times the range's size, plus a counter. Block, node and counter are kept in a
small fsynced file in the data folder, so ids stay unique across restarts and across several
collectors (each with its own data folder). The start row then goes through the writer's spool.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import OrderedDict
from datetime import datetime
from pathlib import Path

from ingest import pgsafe
from ingest.store import Op, Writer, is_connection_error

log = logging.getLogger(__name__)

BLOCK = 200
FALLBACK_BASE = 1_500_000_000
FALLBACK_SPAN = 600_000_000  # keeps ids under 2**31
NODES = 1024
PER_NODE = FALLBACK_SPAN // NODES

START_SQL = """
INSERT INTO transaction (charge_point_id, transaction_id, ocpp_version, evse_id, connector_id,
                         id_token, id_token_type, start_ts, meter_start_wh, reservation_id)
VALUES (%s, nextval('transaction_id_seq')::text, '1.6', %s, %s, %s, NULL, %s, %s, %s)
ON CONFLICT (charge_point_id, evse_id, start_ts) WHERE ocpp_version = '1.6'
DO UPDATE SET updated_at = now()
RETURNING transaction_id
"""


class _State:
    """The reserved block, the node number and the fallback counter, on disk."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.block: list[int] = []
        self.node: int | None = None
        self.provisional_node = False
        self.counter = 0
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            self.block = [int(i) for i in data.get("block", [])]
            self.node = data.get("node")
            self.provisional_node = bool(data.get("provisional_node", False))
            self.counter = int(data.get("counter", 0))

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        data = {
            "block": self.block,
            "node": self.node,
            "provisional_node": self.provisional_node,
            "counter": self.counter,
        }
        with open(tmp, "w") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class TransactionIds:
    def __init__(
        self, writer: Writer, remember: int = 100_000, state_path: Path | None = None
    ) -> None:
        self.writer = writer
        self._state = _State(state_path)
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
        row, _ = pgsafe.clean_params("transaction_start_16", row)  # an int no column holds: refused
        if self.writer.online and not self.writer.spool:
            try:
                tx = await self._from_database(row)
                return self._note(key, tx), []
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
        tx = self._recent.get(key)
        if tx is None:
            tx = self._without_database()
            log.warning("%s: transaction id %d assigned without the database", charge_point_id, tx)
        op = Op(
            "transaction_start_16",
            (charge_point_id, str(tx), "1.6", evse_id, connector_id, id_tag, None, start,
             meter_start, reservation_id),
        )  # fmt: skip
        return self._note(key, tx), [op]

    def _without_database(self) -> int:
        """The next id of the reserved block, else of this collector's own range; on disk
        before it is answered."""
        state = self._state
        if state.block:
            tx = state.block.pop(0)
        else:
            if state.node is None:  # never reached the database: a guess, said out loud
                state.node, state.provisional_node = random.randrange(NODES), True
                log.warning("no collector node number yet; using %d until the database answers",
                            state.node)  # fmt: skip
            tx = FALLBACK_BASE + state.node * PER_NODE + state.counter % PER_NODE
            state.counter += 1
        state.save()
        return tx

    async def _from_database(self, row: tuple) -> int:
        async with self.writer.lookup() as conn:
            for _ in range(5):
                try:
                    result = await (await conn.execute(START_SQL, row)).fetchone()
                except Exception as exc:  # an id taken by a stop we never saw start, or a fallback
                    if getattr(exc, "sqlstate", None) == "23505":
                        continue
                    raise
                assert result is not None
                state = self._state
                changed = False
                if state.node is None or state.provisional_node:
                    cur = await conn.execute("SELECT nextval('collector_node_seq')")
                    node = (await cur.fetchone())[0]  # type: ignore[index]
                    if state.provisional_node and state.node != node:
                        state.counter = 0  # a new range: nothing of it was used
                    state.node, state.provisional_node, changed = int(node), False, True
                if len(state.block) < BLOCK // 2:
                    cur = await conn.execute(
                        "SELECT nextval('transaction_id_seq') FROM generate_series(1, %s)", (BLOCK,)
                    )
                    state.block.extend(r[0] for r in await cur.fetchall())
                    changed = True
                await conn.commit()
                if changed:
                    state.save()
                return int(result[0])
        raise RuntimeError("could not assign a transaction id")
