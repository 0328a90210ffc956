"""Charger authentication (Security Profile 1: HTTP Basic) and handshake refusals."""

from __future__ import annotations

import pytest
from ocpp.v16 import call
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from ingest.auth import hash_password, parse_basic, verify_password
from ingest.registry import add_charge_point
from ingest.server import Collector, charge_point_id_from_path
from tests.conftest import basic_auth, charge_point


@pytest.fixture
async def strict_collector(db, database_url, settings):
    async with Collector(settings.override(auto_register=False), database_url) as col:
        yield col


async def _status(url: str, **kw) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(url, **kw):
            pass
    return info.value.response.status_code


async def test_unregistered_charger_refused_at_handshake(strict_collector, db):
    url = f"{strict_collector.url()}/NOBODY"
    assert await _status(url, subprotocols=["ocpp1.6"]) == 401
    assert (
        await _status(
            url, subprotocols=["ocpp1.6"], additional_headers=basic_auth("NOBODY", "whatever123")
        )
        == 401
    )
    assert db.execute("SELECT count(*) FROM charge_point").fetchone() == (0,)


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
        assert (
            await cs.call(__import__("ocpp.v201.call", fromlist=["Heartbeat"]).Heartbeat())
        ).current_time


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


async def test_bad_path_and_missing_subprotocol(collector):
    base = collector.url().removesuffix("/ocpp")
    assert await _status(f"{base}/ocpp/a/b", subprotocols=["ocpp1.6"]) == 404
    assert await _status(f"{base}/ocpp/CP-1") == 400  # no OCPP subprotocol offered
    assert await _status(f"{base}/ocpp/CP-1", subprotocols=["ocpp9.9"]) == 400
    async with ws_connect(f"{base}/CP-ROOT", subprotocols=["ocpp1.6", "ocpp2.0.1"]) as ws:
        assert ws.subprotocol == "ocpp2.0.1"  # the newer version is preferred


def test_paths_and_credentials():
    assert charge_point_id_from_path("/ocpp/CP-1") == "CP-1"
    assert charge_point_id_from_path("/CP%2D2") == "CP-2"
    assert charge_point_id_from_path("/ocpp/") is None
    assert charge_point_id_from_path("/ocpp/bad id") is None
    assert parse_basic("Basic " + __import__("base64").b64encode(b"a:b:c").decode()) == ("a", "b:c")
    assert parse_basic("Bearer x") is None
    h = hash_password("s3cret-pass")
    assert verify_password("s3cret-pass", h) and not verify_password("s3cret-pasS", h)
    with pytest.raises(ValueError):
        hash_password("short")
