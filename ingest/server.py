"""The collector: a websockets server at /ocpp/{charge_point_id} (or /{charge_point_id}) speaking
OCPP 1.6J and 2.0.1, with HTTP Basic charger authentication (Security Profile 1, and 2 over TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from http import HTTPStatus
from urllib.parse import unquote

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from chargeops.settings import Settings
from ingest import registry
from ingest.auth import VerifiedCache, parse_basic
from ingest.clock import Clock, SystemClock
from ingest.handlers import ChargePoint16, ChargePoint201, CollectorContext
from ingest.store import Writer

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
        self.writer = Writer(database_url)
        self.ctx = CollectorContext(
            writer=self.writer,
            clock=clock or SystemClock(),
            max_frame_bytes=settings.max_frame_bytes,
            heartbeat_interval=settings.heartbeat_interval,
        )
        self.connections: dict[str, ServerConnection] = {}
        self._verified = VerifiedCache()
        self._server: Server | None = None

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
        cp_id = charge_point_id_from_path(request.path)
        if cp_id is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "use /ocpp/{chargePointId}\n")
        creds = parse_basic(request.headers.get("Authorization"))
        if creds is not None and creds[0] != cp_id:
            return self._unauthorized(connection, cp_id, "user name is not the charge point id")
        password = creds[1] if creds else None
        async with self.writer.pool.connection() as conn:
            row = await (await conn.execute(registry.LOOKUP_SQL, (cp_id,))).fetchone()
            if row is None:
                if not self.settings.auto_register:
                    return self._unauthorized(connection, cp_id, "unknown charge point")
                # trust on first use: a password shown now is required from then on
                params = await asyncio.to_thread(
                    registry.register_params, cp_id, password, auto=True, set_password=False
                )
                await conn.execute(registry.REGISTER_SQL, params)
                log.info("auto-registered charge point %s", cp_id)
                return None
        stored = row[0]
        if stored is None:
            return None
        if password is None:
            return self._unauthorized(connection, cp_id, "password required")
        ok = await asyncio.to_thread(self._verified.verify, cp_id, password, stored)
        return None if ok else self._unauthorized(connection, cp_id, "wrong password")

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
