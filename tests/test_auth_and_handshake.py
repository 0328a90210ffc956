"""Charger authentication (Security Profile 1: HTTP Basic), password guessing and handshake
refusals, against the real collector over real websockets."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from urllib.parse import quote

import pytest
import websockets
from ocpp.v16 import call
from ocpp.v201 import call as call201
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from ingest.auth import hash_password, parse_basic, verify_password
from ingest.backoff import Backoff
from ingest.registry import add_charge_point
from ingest.server import Collector, charge_point_id_from_path
from tests.conftest import basic_auth, charge_point


@pytest.fixture
async def strict_collector(db, database_url, settings):
    async with Collector(settings.override(auto_register=False), database_url) as col:
        yield col


@pytest.fixture
def scrypt_calls(monkeypatch) -> list[int]:
    """Counts calls of the real hashlib.scrypt (it still runs): the code path, not timings."""
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


async def _refusal(url: str, **kw) -> websockets.http11.Response:
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(url, **kw):
            pass
    return info.value.response


async def _status(url: str, **kw) -> int:
    return (await _refusal(url, **kw)).status_code


def _count(db, cp_id: str | None = None) -> int:
    if cp_id is None:
        return db.execute("SELECT count(*) FROM charge_point").fetchone()[0]
    return db.execute(
        "SELECT count(*) FROM charge_point WHERE charge_point_id = %s", (cp_id,)
    ).fetchone()[0]


async def test_unregistered_charger_refused_at_handshake(strict_collector, db):
    """OCPP-J: an unknown charge point id SHOULD get 404."""
    url = f"{strict_collector.url()}/NOBODY"
    assert await _status(url, subprotocols=["ocpp1.6"]) == 404
    auth = basic_auth("NOBODY", "whatever123")
    assert await _status(url, subprotocols=["ocpp1.6"], additional_headers=auth) == 404
    assert _count(db) == 0


async def test_password_checked(strict_collector, db):
    add_charge_point(db, "CP-PW", "correct-horse-battery")
    url = f"{strict_collector.url()}/CP-PW"
    assert await _status(url, subprotocols=["ocpp1.6"]) == 401  # none given
    assert (
        await _status(
            url, subprotocols=["ocpp1.6"], additional_headers=basic_auth("CP-PW", "wrong-password")
        )
        == 401
    )
    # user name must be the charge point id
    assert (
        await _status(
            url,
            subprotocols=["ocpp1.6"],
            additional_headers=basic_auth("OTHER", "correct-horse-battery"),
        )
        == 401
    )
    async with charge_point(strict_collector, "CP-PW", password="correct-horse-battery") as cp:
        res = await cp.call(call.BootNotification(charge_point_model="m", charge_point_vendor="v"))
        assert res.status == "Accepted"
    stored = db.execute(
        "SELECT password_hash FROM charge_point WHERE charge_point_id = 'CP-PW'"
    ).fetchone()[0]
    assert stored.startswith("scrypt$") and "correct-horse" not in stored


async def test_registered_without_password_connects(strict_collector, db):
    add_charge_point(db, "CP-OPEN", None)
    async with charge_point(strict_collector, "CP-OPEN", "2.0.1") as cs:
        assert (await cs.call(call201.Heartbeat())).current_time


async def test_auto_register(collector, db):
    async with charge_point(collector, "NEW-1", password="first-use-password") as cp:
        await cp.call(call.Heartbeat())
    auto, pw = db.execute(
        "SELECT auto_registered, password_hash FROM charge_point WHERE charge_point_id = 'NEW-1'"
    ).fetchone()
    assert auto is True and pw.startswith("scrypt$")  # trust on first use: the password it showed
    url = f"{collector.url()}/NEW-1"
    assert (
        await _status(
            url,
            subprotocols=["ocpp1.6"],
            additional_headers=basic_auth("NEW-1", "another-password"),
        )
        == 401
    )
    async with charge_point(collector, "NEW-2") as cp:  # none shown: none required later
        await cp.call(call.Heartbeat())
    assert db.execute(
        "SELECT password_hash FROM charge_point WHERE charge_point_id = 'NEW-2'"
    ).fetchone() == (None,)


async def _closed_without_subprotocol(url: str, **kw) -> int | None:
    """Connects; returns the close code when the handshake completed without a subprotocol."""
    async with ws_connect(url, **kw) as ws:
        assert ws.subprotocol is None
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code


async def test_no_common_subprotocol_completes_handshake_then_closes(collector, db):
    """OCPP-J: without a common subprotocol the server completes the handshake without
    Sec-WebSocket-Protocol, then closes (1002); nothing is registered."""
    url = f"{collector.url()}/CP-NOSUB"
    assert await _closed_without_subprotocol(url) == 1002
    assert await _closed_without_subprotocol(url, subprotocols=["ocpp2.1"]) == 1002
    assert await _closed_without_subprotocol(url, subprotocols=["ocpp9.9"]) == 1002
    assert _count(db) == 0


async def test_refused_handshake_registers_nothing(collector, db):
    """Row 11: a charger offering only ocpp2.1 with one password is not registered, so the same
    id later connecting with ocpp2.0.1 and another password is not locked out."""
    url = f"{collector.url()}/CP-21"
    auth = basic_auth("CP-21", "password-for-2-1")
    with pytest.raises((InvalidStatus, websockets.ConnectionClosed)):
        async with ws_connect(url, subprotocols=["ocpp2.1"], additional_headers=auth) as ws:
            await asyncio.wait_for(ws.recv(), 5)
    assert _count(db, "CP-21") == 0
    async with charge_point(collector, "CP-21", "2.0.1", password="password-for-2-0-1") as cs:
        assert (await cs.call(call201.Heartbeat())).current_time


async def test_bad_path_and_subprotocol_preference(collector):
    base = collector.url().removesuffix("/ocpp")
    assert await _status(f"{base}/ocpp/a/b", subprotocols=["ocpp1.6"]) == 404
    assert await _status(f"{base}/ocpp/{'x' * 49}", subprotocols=["ocpp1.6"]) == 404
    async with ws_connect(f"{base}/CP-ROOT", subprotocols=["ocpp1.6", "ocpp2.0.1"]) as ws:
        assert ws.subprotocol == "ocpp2.0.1"  # the newer version is preferred


async def test_two_authorization_headers_answer_400(strict_collector, db, caplog):
    add_charge_point(db, "CP-2H", "correct-horse-battery")
    headers = [
        *basic_auth("CP-2H", "correct-horse-battery").items(),
        *basic_auth("CP-2H", "wrong-password").items(),
    ]
    with caplog.at_level(logging.ERROR):
        url = f"{strict_collector.url()}/CP-2H"
        assert await _status(url, subprotocols=["ocpp1.6"], additional_headers=headers) == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback


async def test_simultaneous_first_connections_one_password_wins(
    collector, db, database_url, settings
):
    """Row 14: with auto-registration, two first connections at once with different passwords:
    exactly one gets in, within one collector (its lock) and across two (the database)."""

    async def attempt(col: Collector, cp_id: str, password: str) -> str:
        try:
            async with charge_point(col, cp_id, password=password) as cp:
                await cp.call(call.Heartbeat())
            return "in"
        except InvalidStatus as e:
            return str(e.response.status_code)

    one = await asyncio.gather(
        attempt(collector, "RACE-1", "password-aaaa"), attempt(collector, "RACE-1", "password-bbbb")
    )
    assert sorted(one) == ["401", "in"]
    async with Collector(settings, database_url) as other:
        two = await asyncio.gather(
            attempt(collector, "RACE-2", "password-aaaa"), attempt(other, "RACE-2", "password-bbbb")
        )
    assert sorted(two) == ["401", "in"]
    assert _count(db) == 2


async def test_unknown_id_costs_the_same_scrypt(strict_collector, db, scrypt_calls):
    """Row 12: an unknown id and a known id with a wrong password both pay one scrypt, so the
    time to refuse does not tell which ids exist."""
    add_charge_point(db, "CP-KNOWN", "correct-horse-battery")
    base = strict_collector.url()
    await _status(f"{base}/CP-KNOWN", subprotocols=["ocpp1.6"])  # warm-up: no password
    before = len(scrypt_calls)
    auth = basic_auth("CP-KNOWN", "wrong-password")
    assert await _status(f"{base}/CP-KNOWN", subprotocols=["ocpp1.6"], additional_headers=auth)
    known = len(scrypt_calls) - before
    auth = basic_auth("CP-NOBODY", "wrong-password")
    assert await _status(f"{base}/CP-NOBODY", subprotocols=["ocpp1.6"], additional_headers=auth)
    unknown = len(scrypt_calls) - before - known
    assert known == unknown == 1


@pytest.fixture
async def guarded_collector(db, database_url, settings):
    """Small windows: 3 failures free, then 0.3 s doubling up to 0.6 s."""
    fast = settings.override(
        auto_register=False, auth_max_failures=3, auth_backoff_s=0.3, auth_backoff_max_s=0.6
    )
    async with Collector(fast, database_url) as col:
        yield col


async def test_guessing_is_slowed_and_the_charger_gets_in_after(
    guarded_collector, db, scrypt_calls
):
    add_charge_point(db, "CP-GUESS", "correct-horse-battery")
    url = f"{guarded_collector.url()}/CP-GUESS"
    statuses = []
    before = len(scrypt_calls)
    for i in range(12):
        auth = basic_auth("CP-GUESS", f"guess-{i:04d}-pw")
        statuses.append(await _status(url, subprotocols=["ocpp1.6"], additional_headers=auth))
    assert statuses[:4] == [401] * 4  # the 4th failure starts the backoff
    assert set(statuses[4:]) == {429}  # refused cheaply while backing off: no scrypt
    assert len(scrypt_calls) - before == 4
    # the right password inside the window is refused too (it was never verified here) ...
    auth = basic_auth("CP-GUESS", "correct-horse-battery")
    refusal = await _refusal(url, subprotocols=["ocpp1.6"], additional_headers=auth)
    assert refusal.status_code == 429 and int(refusal.headers["Retry-After"]) >= 1
    # ... and gets in once it has passed
    await asyncio.sleep(0.7)
    async with charge_point(guarded_collector, "CP-GUESS", password="correct-horse-battery") as cp:
        await cp.call(call.Heartbeat())


def test_backoff_doubles_caps_and_decays():
    b = Backoff(max_failures=2, base_s=1.0, max_s=8.0)
    now = 1000.0
    assert [b.fail("k", now) for _ in range(2)] == [0.0, 0.0]  # free
    waits = [b.fail("k", now) for _ in range(6)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # doubling, capped
    assert b.retry_after("k", now + 7.5) == pytest.approx(0.5)
    assert b.retry_after("k", now + 8.0) == 0.0  # the window passes
    # failures are forgotten with a half-life of 10 max_s: an hour later it starts over
    assert b.fail("k", now + 3600) == 0.0
    b.forget("k")
    assert b.retry_after("k", now + 3600) == 0.0


async def test_a_verified_charger_is_not_locked_out_by_a_guesser(db, database_url, settings):
    """A guesser keeps the id backing off; the real charger, verified before in this process,
    is checked cheaply (no scrypt) and still gets in."""
    slow = settings.override(
        auto_register=False, auth_max_failures=3, auth_backoff_s=30.0, auth_backoff_max_s=60.0
    )
    add_charge_point(db, "CP-REAL", "correct-horse-battery")
    async with Collector(slow, database_url) as col:
        async with charge_point(col, "CP-REAL", password="correct-horse-battery") as cp:
            await cp.call(call.Heartbeat())
        url = f"{col.url()}/CP-REAL"
        elsewhere = {"subprotocols": ["ocpp1.6"], "local_addr": ("127.0.0.2", 0)}
        for i in range(5):
            auth = basic_auth("CP-REAL", f"guess-{i:04d}-pw")
            await _status(url, additional_headers=auth, **elsewhere)
        refusal = await _refusal(url, additional_headers=auth, **elsewhere)
        assert refusal.status_code == 429 and 1 <= int(refusal.headers["Retry-After"]) <= 30
        async with charge_point(col, "CP-REAL", password="correct-horse-battery") as cp:
            await cp.call(call.Heartbeat())


async def test_one_address_guessing_many_ids_is_slowed(db, database_url, settings):
    """Per address: guessing across ids (or enumerating them) backs off too; at 10x the per-id
    allowance, as one site's chargers share an address behind NAT."""
    one_free = settings.override(
        auto_register=False, auth_max_failures=1, auth_backoff_s=30.0, auth_backoff_max_s=60.0
    )
    async with Collector(one_free, database_url) as col:
        statuses = []
        for i in range(12):
            auth = basic_auth(f"ENUM-{i}", "some-password")
            url = f"{col.url()}/ENUM-{i}"
            statuses.append(await _status(url, subprotocols=["ocpp1.6"], additional_headers=auth))
        assert statuses == [404] * 11 + [429]
        auth = basic_auth("ENUM-X", "some-password")  # another address is not affected
        status = await _status(
            f"{col.url()}/ENUM-X",
            subprotocols=["ocpp1.6"],
            additional_headers=auth,
            local_addr=("127.0.0.3", 0),
        )
        assert status == 404


async def test_frozen_old_socket_does_not_delay_the_new_one(collector):
    """Row 16: the replaced connection is closed in the background; a frozen one (it never
    reads, so never answers the close) no longer holds the new connection for close_timeout."""
    url = f"{collector.url()}/CP-FROZEN"
    old = await ws_connect(url, subprotocols=["ocpp1.6"])
    try:
        old.transport.pause_reading()  # frozen: nothing it receives is ever read
        started = time.monotonic()
        async with charge_point(collector, "CP-FROZEN") as cp:
            res = await cp.call(
                call.BootNotification(charge_point_model="m", charge_point_vendor="v")
            )
            elapsed = time.monotonic() - started
        assert res.status == "Accepted"
        assert elapsed < 5  # the old close waited 10 s (websockets' close_timeout)
    finally:
        old.transport.abort()


@pytest.mark.parametrize("cp_id", ["CP=1", "a*b-c_d", "x:y+z|w@v.u", "A" * 48])
async def test_identifier_string_ids_connect(strict_collector, db, cp_id):
    """OCPP 2.0.1 identifierString (a-z A-Z 0-9 * - _ = : + | @ .), up to 48 characters,
    percent-encoded in the path."""
    add_charge_point(db, cp_id, None)
    url = f"{strict_collector.url()}/{quote(cp_id, safe='')}"
    async with ws_connect(url, subprotocols=["ocpp2.0.1"]) as ws:
        assert ws.subprotocol == "ocpp2.0.1"


def test_paths_and_credentials():
    assert charge_point_id_from_path("/ocpp/CP-1") == "CP-1"
    assert charge_point_id_from_path("/CP%2D2") == "CP-2"
    assert charge_point_id_from_path("/ocpp/A%3DB%7CC") == "A=B|C"
    assert charge_point_id_from_path("/ocpp/") is None
    assert charge_point_id_from_path("/ocpp/bad id") is None
    assert charge_point_id_from_path("/ocpp/a%2Fb") is None  # an encoded slash is not allowed
    assert charge_point_id_from_path("/ocpp/CP1%0A") is None  # nor a trailing newline
    assert charge_point_id_from_path(f"/ocpp/{'x' * 49}") is None
    assert parse_basic("Basic " + __import__("base64").b64encode(b"a:b:c").decode()) == ("a", "b:c")
    assert parse_basic("Bearer x") is None
    h = hash_password("s3cret-pass")
    assert verify_password("s3cret-pass", h) and not verify_password("s3cret-pasS", h)
    with pytest.raises(ValueError):
        hash_password("short")
