"""The collector: a websockets server at /ocpp/{charge_point_id} (or /{charge_point_id}) speaking
OCPP 1.6J and 2.0.1, with HTTP Basic charger authentication (Security Profile 1, and 2 over TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from http import HTTPStatus
from urllib.parse import unquote

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from chargeops.settings import Settings
from ingest import registry
from ingest.auth import VerifiedCache, hash_password, parse_basic
from ingest.clock import Clock, SystemClock
from ingest.handlers import ChargePoint16, ChargePoint201, CollectorContext
from ingest.store import Op, Writer, is_connection_error
from ingest.txids import TransactionIds

log = logging.getLogger(__name__)

SUBPROTOCOLS = {"ocpp2.0.1": ChargePoint201, "ocpp1.6": ChargePoint16}


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
        self.writer = Writer(
            database_url,
            spool_dir=settings.data_dir / "spool",
            spool_max_bytes=settings.spool_max_bytes,
            queue_size=settings.queue_size,
        )
        self.ctx = CollectorContext(
            writer=self.writer,
            clock=clock or SystemClock(),
            transaction_ids=TransactionIds(self.writer),
            max_frame_bytes=settings.max_frame_bytes,
            heartbeat_interval=settings.heartbeat_interval,
        )
        self.connections: dict[str, ServerConnection] = {}
        self._verified = VerifiedCache()
        self._credentials: dict[str, str | None] = {}  # last known password hash per charge point
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
        tls = None
        if self.settings.tls_cert and self.settings.tls_key:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.minimum_version = ssl.TLSVersion.TLSv1_2
            tls.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        self._server = await serve(
            self._handle,
            self.settings.host,
            self.settings.port,
            subprotocols=list(SUBPROTOCOLS),  # server order: 2.0.1 preferred
            process_request=self._process_request,
            max_size=max(4 * self.settings.max_frame_bytes, 2**20),
            ssl=tls,
            server_header="chargeops",
        )
        log.info("collector listening on %s", self.url())

    async def stop(self) -> None:
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
        creds = parse_basic(request.headers.get("Authorization"))
        if creds is not None and creds[0] != cp_id:
            return self._unauthorized(connection, cp_id, "user name is not the charge point id")
        password = creds[1] if creds else None
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
            if not self.settings.auto_register:
                return self._unauthorized(connection, cp_id, "unknown charge point")
            # trust on first use: a password shown now is required from then on
            hashed = await asyncio.to_thread(hash_password, password) if password else None
            await self.writer.write([Op("register", (cp_id, hashed, True))])
            self._credentials[cp_id] = hashed
            log.info("auto-registered charge point %s", cp_id)
            return None
        if stored is None:
            return None
        if password is None:
            return self._unauthorized(connection, cp_id, "password required")
        ok = await asyncio.to_thread(self._verified.verify, cp_id, password, stored)
        return None if ok else self._unauthorized(connection, cp_id, "wrong password")

    async def _lookup(self, cp_id: str) -> tuple[bool, str | None]:
        if not self.writer.online:
            raise ConnectionError("database offline")
        async with self.writer.pool.connection() as conn:
            row = await (await conn.execute(registry.LOOKUP_SQL, (cp_id,))).fetchone()
        if row is None:
            return False, None
        self._credentials[cp_id] = row[0]
        return True, row[0]

    def health(self) -> dict:
        """What `GET /health` and `chargeops collector status` report."""
        stats = self.writer.stats
        spool = self.writer.spool
        return {
            "status": "ok" if self.writer.online else "spooling",
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
            "rows_by_kind": dict(stats.rows_by_kind),
            "messages": dict(self.ctx.counters),
        }

    def _unauthorized(self, connection: ServerConnection, cp_id: str, why: str) -> Response:
        log.warning("refused charge point %s: %s", cp_id, why)
        self.ctx.count("refused")
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "unauthorized\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="chargeops", charset="UTF-8"'
        return response

    # -- connection ----------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        cp_id = charge_point_id_from_path(ws.request.path)
        assert cp_id is not None
        cls = SUBPROTOCOLS[ws.subprotocol]
        cp = cls(cp_id, ws)
        cp.setup(self.ctx)
        previous = self.connections.get(cp_id)
        self.connections[cp_id] = ws
        if previous is not None:  # a charger that reconnects replaces its stale connection
            await previous.close(code=1000, reason="replaced by a new connection")
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
