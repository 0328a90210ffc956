"""Test plumbing that stands in for the network: a TCP proxy whose link can be cut, and a
charge point that retries unanswered frames across reconnects as a real charger does."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import threading
from collections.abc import Callable

import websockets
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from websockets.asyncio.client import connect as ws_connect


def proxied_url(url: str, proxy: TcpProxy) -> str:
    params = conninfo_to_dict(url)
    params.update(host="127.0.0.1", port=str(proxy.port))
    return make_conninfo(**params)


def proxy_for(url: str) -> TcpProxy:
    params = conninfo_to_dict(url)
    return TcpProxy(params.get("host") or "127.0.0.1", int(params.get("port") or 5432))


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `cut()` drops every connection and refuses new ones
    (the database "goes away" for whoever connects through it), `restore()` heals it;
    `freeze()` black-holes the path (connections stay open, bytes stop moving, new connections
    are accepted and hang: a frozen network path with no RST), `thaw()` lets them flow again;
    `slow(seconds)` delays every chunk each way."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.blocked = False
        self.delay = 0.0
        self._loop = asyncio.new_event_loop()
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                assert self._flowing is not None
                await self._flowing.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.close()
            return
        assert self._flowing is not None
        await self._flowing.wait()
        try:
            if self.target[0].startswith("/"):  # a unix-socket PostgreSQL (the embedded one)
                path = f"{self.target[0]}/.s.PGSQL.{self.target[1]}"
                up_reader, up_writer = await asyncio.open_unix_connection(path)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        def _cut() -> None:
            self.blocked = True
            for w in list(self._writers):
                w.transport.abort()
            self._writers.clear()

        self._loop.call_soon_threadsafe(_cut)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "blocked", False)

    def freeze(self) -> None:
        assert self._flowing is not None
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def thaw(self) -> None:
        assert self._flowing is not None
        self._loop.call_soon_threadsafe(self._flowing.set)

    def slow(self, seconds: float) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "delay", seconds)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class RetryingChargePoint:
    """Sends each CALL until it is answered, reconnecting as needed (OCPP's rule for
    transaction-related messages). Records which frames were acknowledged."""

    _ids = itertools.count()

    def __init__(self, url: str, cp_id: str, version: str = "1.6") -> None:
        self.url = f"{url}/{cp_id}"
        self.cp_id = cp_id
        self.version = version
        self.ws = None
        self.acked: list[dict] = []
        self.errors: list[list] = []
        self.reconnects = 0
        self.refusals = 0  # handshakes the collector turned down

    async def _connect(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                self.ws = await ws_connect(
                    self.url, subprotocols=[f"ocpp{self.version}"], open_timeout=10
                )
                return
            except (
                OSError,
                websockets.InvalidStatus,
                websockets.InvalidHandshake,
                TimeoutError,
            ) as e:
                if isinstance(e, websockets.InvalidStatus):
                    self.refusals += 1
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def call(self, action: str, payload: dict, *, timeout: float = 120) -> list:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        unique_id = f"{self.cp_id}-{next(self._ids)}"
        frame = json.dumps([2, unique_id, action, payload])
        while True:
            if self.ws is None:
                await self._connect(deadline)
            try:
                await self.ws.send(frame)
                while True:
                    reply = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
                    if reply[1] == unique_id:
                        break
                if reply[0] == 4:
                    self.errors.append(reply)
                else:
                    self.acked.append({"action": action, "payload": payload})
                return reply
            except (websockets.ConnectionClosed, OSError, TimeoutError):
                self.ws = None
                self.reconnects += 1
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def meter_payload(connector: int, ts: str, wh: float) -> dict:
    return {
        "connectorId": connector,
        "meterValue": [{"timestamp": ts, "sampledValue": [{"value": f"{wh:.1f}"}]}],
    }


async def run_clients(n: int, make: Callable[[int], object]) -> list:
    return await asyncio.gather(*(make(i) for i in range(n)))
