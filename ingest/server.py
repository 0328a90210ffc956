"""The collector: a websockets server at /ocpp/{charge_point_id} (or /{charge_point_id}) speaking
OCPP 1.6J and 2.0.1, with HTTP Basic charger authentication (Security Profile 1, and 2 over TLS)
or client certificates (Security Profile 3).

Handshake order: the path's id, the credentials (backoff first, so guesses are refused before
scrypt), then websockets negotiates the subprotocol; only a handshake about to succeed with one
(`_process_response`) registers a new charger. Without a common subprotocol the handshake
completes without one and the connection is closed with 1002 (OCPP-J).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import weakref
from datetime import timedelta
from http import HTTPStatus
from urllib.parse import unquote

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from chargeops.settings import Settings
from ingest import quarantine, registry
from ingest.auth import VerifiedCache, dummy_hash, hash_password, parse_basic, verify_unknown
from ingest.backoff import Backoff
from ingest.clock import Clock, SystemClock
from ingest.frames import FrameLimits
from ingest.handlers import ChargePoint16, ChargePoint201, CollectorContext
from ingest.store import Op, Writer, is_connection_error
from ingest.tls import peer_common_name, server_context
from ingest.txids import TransactionIds

log = logging.getLogger(__name__)

SUBPROTOCOLS = {"ocpp2.0.1": ChargePoint201, "ocpp1.6": ChargePoint16}
REPLACED_CLOSE_TIMEOUT = 3.0  # s for a replaced connection to close before its socket is dropped
ADDRESS_FAILURES_FACTOR = 10  # an address may fail this many times an id's allowance (NAT'd sites)


def select_subprotocol(connection: ServerConnection, offered) -> str | None:
    """Our first (2.0.1 preferred) that the charger offers; None completes the handshake without
    one, and `_handle` closes it (OCPP-J), instead of websockets' HTTP 400."""
    return next((p for p in SUBPROTOCOLS if p in offered), None)


def charge_point_id_from_path(path: str) -> str | None:
    """The id in /ocpp/{id} or /{id}; None for any other path."""
    path = path.split("?", 1)[0]
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2 and parts[0] == "ocpp":
        raw = parts[1]
    elif len(parts) == 1 and parts[0] != "ocpp":
        raw = parts[0]
    else:
        return None
    cp_id = unquote(raw)
    return cp_id if registry.CHARGE_POINT_ID.match(cp_id) else None


class Collector:
    """Owns the writer and the websockets server; `async with Collector(...)` runs it."""

    def __init__(
        self, settings: Settings, database_url: str, *, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        clock = clock or SystemClock()
        quarantine.set_window(
            past=timedelta(days=settings.timestamp_past_days),
            future=timedelta(hours=settings.timestamp_future_hours),
        )
        self.writer = Writer(
            database_url,
            spool_dir=settings.data_dir / "spool",
            spool_max_bytes=settings.spool_max_bytes,
            queue_size=settings.queue_size,
            db_timeout=settings.db_timeout,
            clock=clock,
        )
        self.ctx = CollectorContext(
            writer=self.writer,
            clock=clock,
            transaction_ids=TransactionIds(
                self.writer, state_path=settings.data_dir / "spool" / "txids.json"
            ),
            limits=FrameLimits.from_settings(settings),
            heartbeat_interval=settings.heartbeat_interval,
        )
        self.connections: dict[str, ServerConnection] = {}
        self._verified = VerifiedCache()
        self._credentials: dict[str, str | None] = {}  # last known password hash per charge point
        n = settings.auth_max_failures
        b, cap = settings.auth_backoff_s, settings.auth_backoff_max_s
        self._id_backoff = Backoff(n, b, cap)
        self._address_backoff = Backoff(n * ADDRESS_FAILURES_FACTOR, b, cap)
        # unknown chargers accepted by _process_request, registered in _process_response
        self._first_use: weakref.WeakKeyDictionary[ServerConnection, str | None] = (
            weakref.WeakKeyDictionary()
        )
        self._retiring: set[asyncio.Task] = set()  # replaced connections closing
        self._server: Server | None = None
        self._started = time.time()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def url(self, host: str | None = None) -> str:
        scheme = "wss" if self.settings.tls_cert else "ws"
        return f"{scheme}://{host or self.settings.host}:{self.port}/ocpp"

    async def start(self) -> None:
        await self.writer.start()
        tls = server_context(self.settings)
        await asyncio.to_thread(dummy_hash)
        self._server = await serve(
            self._handle,
            self.settings.host,
            self.settings.port,
            subprotocols=list(SUBPROTOCOLS),  # server order: 2.0.1 preferred
            select_subprotocol=select_subprotocol,
            process_request=self._process_request,
            process_response=self._process_response,
            max_size=self.settings.socket_max_bytes,  # = the transaction frame limit
            ssl=tls,
            server_header="chargeops",
        )
        log.info("collector listening on %s", self.url())

    async def stop(self) -> None:
        for task in list(self._retiring):  # a frozen replaced socket is dropped, not waited for
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self.writer.close()

    async def __aenter__(self) -> Collector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    # -- handshake -----------------------------------------------------------------------------
    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if request.path.split("?", 1)[0] == "/health":
            body = json.dumps(self.health(), indent=1, default=str) + "\n"
            response = connection.respond(HTTPStatus.OK, body)
            response.headers["Content-Type"] = "application/json"
            return response
        cp_id = charge_point_id_from_path(request.path)
        if cp_id is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "use /ocpp/{chargePointId}\n")
        headers = request.headers.get_all("Authorization")
        if len(headers) > 1:
            return self._refuse(connection, cp_id, HTTPStatus.BAD_REQUEST, "several Authorization")
        certified = False
        if self.settings.tls_client_ca:  # Security Profile 3: the certificate is the credential
            if peer_common_name(connection.transport.get_extra_info("ssl_object")) != cp_id:
                self._failed(connection, cp_id)
                return self._unauthorized(connection, cp_id, "certificate is not for this id")
            certified = True
        creds = parse_basic(headers[0] if headers else None)
        if creds is not None and creds[0] != cp_id:
            self._failed(connection, cp_id)
            return self._unauthorized(connection, cp_id, "user name is not the charge point id")
        password = None if certified or creds is None else creds[1]
        if wait := self._backing_off(connection, cp_id, password):
            return self._too_many(connection, cp_id, wait)
        try:
            known, stored = await self._lookup(cp_id)
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            if cp_id not in self._credentials and not self.settings.auto_register:
                # cannot tell an unknown charger from a known one: ask it to come back
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "try again later\n")
            known, stored = cp_id in self._credentials, self._credentials.get(cp_id)
        if not known:
            if self.settings.auto_register:
                self._first_use[connection] = password  # registered once the handshake succeeds
                return None
            if password is not None:  # as long as a wrong password for a known id takes
                await asyncio.to_thread(verify_unknown, password)
            self._failed(connection, cp_id)
            return self._refuse(connection, cp_id, HTTPStatus.NOT_FOUND, "unknown charge point")
        if stored is None or certified:
            return None
        if password is None:
            return self._unauthorized(connection, cp_id, "password required")
        if await asyncio.to_thread(self._verified.verify, cp_id, password, stored):
            self._id_backoff.forget(cp_id)
            return None
        self._failed(connection, cp_id)
        return self._unauthorized(connection, cp_id, "wrong password")

    @staticmethod
    def _address(connection: ServerConnection) -> str:
        peer = connection.remote_address
        return str(peer[0]) if peer else "?"

    def _backing_off(self, connection: ServerConnection, cp_id: str, password: str | None) -> float:
        """Seconds left to wait for this id or address; 0 for a pair that verified before (a
        keyed digest, no scrypt): a guesser elsewhere cannot lock out a charger already seen."""
        wait = max(
            self._id_backoff.retry_after(cp_id),
            self._address_backoff.retry_after(self._address(connection)),
        )
        stored = self._credentials.get(cp_id)
        if wait and password and stored and self._verified.known(cp_id, password, stored):
            return 0.0
        return wait

    def _failed(self, connection: ServerConnection, cp_id: str) -> None:
        self._id_backoff.fail(cp_id)
        self._address_backoff.fail(self._address(connection))

    def _too_many(self, connection: ServerConnection, cp_id: str, wait: float) -> Response:
        """Cheap: no lookup, no scrypt, logged at debug (a guesser must not flood the log)."""
        log.debug("charge point %s backing off %.1f s", cp_id, wait)
        self.ctx.count("refused_backoff")
        response = connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "too many failed logins\n")
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response

    async def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        """Trust on first use, only for a handshake about to succeed with a subprotocol; the
        database decides between simultaneous first connections (across collectors too)."""
        if connection not in self._first_use:
            return None
        password = self._first_use.pop(connection)
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS or connection.subprotocol is None:
            return None
        cp_id = charge_point_id_from_path(request.path)
        assert cp_id is not None
        hashed = await asyncio.to_thread(hash_password, password) if password else None
        # the first in this process wins (no await between test and set) ...
        stored = self._credentials.setdefault(cp_id, hashed)
        if stored == hashed:
            # ... and the database keeps the first row written (ON CONFLICT DO NOTHING, batched
            # with other writes); reading it back tells whether that was ours
            await self.writer.write([Op("register", (cp_id, hashed, True))])
            try:
                _, stored = await self._lookup(cp_id)
            except Exception as exc:  # offline: ours stands, spooled
                if not is_connection_error(exc):
                    raise
        if stored == hashed:
            log.info("auto-registered charge point %s", cp_id)
            return None
        if stored is None:  # registered first without a password: none is required
            return None
        if password and await asyncio.to_thread(self._verified.verify, cp_id, password, stored):
            return None
        self._failed(connection, cp_id)
        return self._unauthorized(connection, cp_id, "registered meanwhile with another password")

    async def _lookup(self, cp_id: str) -> tuple[bool, str | None]:
        if not self.writer.online:
            raise ConnectionError("database offline")
        async with self.writer.lookup() as conn:
            row = await (await conn.execute(registry.LOOKUP_SQL, (cp_id,))).fetchone()
        if row is None:
            self._credentials.pop(cp_id, None)
            return False, None
        self._credentials[cp_id] = row[0]
        return True, row[0]

    def health(self) -> dict:
        """What `GET /health` and `chargeops collector status` report."""
        stats = self.writer.stats
        spool = self.writer.spool
        problems = self.writer.health_problems()
        status = "degraded" if problems else "ok" if self.writer.online else "spooling"
        return {
            "status": status,
            "problems": problems,
            "database_online": self.writer.online,
            "connected_charge_points": len(self.connections),
            "queue_depth": self.writer.queue_depth,
            "spool_bytes": spool.bytes if spool is not None else 0,
            "spool_segments": len(spool.segments()) if spool is not None else 0,
            "spool_full": bool(spool and spool.full),
            "last_commit_age_s": (
                round(time.time() - stats.last_commit_at, 3) if stats.last_commit_at else None
            ),
            "uptime_s": round(time.time() - self._started, 1),
            "committed_requests": stats.committed_requests,
            "spooled_requests": stats.spooled_requests,
            "replayed_segments": stats.replayed_segments,
            "failed_requests": stats.failed_requests,
            "dead_letters": stats.dead_letters,
            "repaired_values": stats.repaired_values,
            "quarantined_rows": stats.quarantined_rows,
            "database_timeouts": stats.database_timeouts,
            "rows_by_kind": dict(stats.rows_by_kind),
            "messages": dict(self.ctx.counters),
        }

    def _refuse(
        self, connection: ServerConnection, cp_id: str, status: HTTPStatus, why: str
    ) -> Response:
        log.warning("refused charge point %s: %s", cp_id, why)
        self.ctx.count("refused")
        return connection.respond(status, f"{status.phrase.lower()}\n")

    def _unauthorized(self, connection: ServerConnection, cp_id: str, why: str) -> Response:
        response = self._refuse(connection, cp_id, HTTPStatus.UNAUTHORIZED, why)
        response.headers["WWW-Authenticate"] = 'Basic realm="chargeops", charset="UTF-8"'
        return response

    # -- connection ----------------------------------------------------------------------------
    @staticmethod
    async def _retire(ws: ServerConnection, cp_id: str) -> None:
        """Close a replaced connection in the background; a frozen one (it never answers the
        close) has its socket dropped after REPLACED_CLOSE_TIMEOUT."""
        try:
            async with asyncio.timeout(REPLACED_CLOSE_TIMEOUT):
                await ws.close(code=1000, reason="replaced by a new connection")
        except TimeoutError:
            log.warning("replaced connection of %s did not close: dropped", cp_id)
        finally:
            if ws.close_code is None:
                ws.transport.abort()

    async def _handle(self, ws: ServerConnection) -> None:
        cp_id = charge_point_id_from_path(ws.request.path)
        assert cp_id is not None
        if ws.subprotocol is None:  # no common subprotocol: OCPP-J closes after the handshake
            log.warning("charge point %s offered no OCPP version we speak", cp_id)
            self.ctx.count("refused")
            await ws.close(code=1002, reason="no supported OCPP subprotocol")
            return
        cls = SUBPROTOCOLS[ws.subprotocol]
        cp = cls(cp_id, ws)
        cp.setup(self.ctx)
        previous = self.connections.get(cp_id)
        self.connections[cp_id] = ws
        if previous is not None:  # a charger that reconnects replaces its stale connection
            task = asyncio.create_task(self._retire(previous, cp_id))
            self._retiring.add(task)  # referenced until done, so it is not garbage-collected
            task.add_done_callback(self._retiring.discard)
        await self.writer.write(
            [cp.event_op(self.ctx.clock.now(), "connect", {"ocpp": cls.ocpp_version})]
        )
        self.ctx.count("connections")
        try:
            await cp.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.connections.get(cp_id) is ws:
                del self.connections[cp_id]
            with contextlib.suppress(Exception):
                await self.writer.write_nowait(
                    [cp.event_op(self.ctx.clock.now(), "disconnect", {"code": ws.close_code})]
                )
