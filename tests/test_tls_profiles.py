"""OCPP Security Profiles 2 and 3 over real TLS: the cipher suites A00.FR.318 requires, with an
RSA and an ECDSA certificate side by side, and mutual TLS with the client certificate's CN as the
charge point id. Certificates from trustme; clients are the `ssl` module (and openssl s_client)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import warnings

import pytest
import trustme
from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from chargeops.settings import ConfigError, Settings
from ingest.registry import add_charge_point
from ingest.server import Collector
from tests.conftest import basic_auth

# A00.FR.318 (TLS 1.2): the four it names, and the ECDHE-RSA pair for an RSA certificate
REQUIRED = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES256-GCM-SHA384": "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Server certificates for 127.0.0.1 (RSA and ECDSA, from two CAs) and a client CA."""
    folder = tmp_path_factory.mktemp("pki")
    rsa_ca, ec_ca, client_ca = trustme.CA(key_type=trustme.KeyType.RSA), trustme.CA(), trustme.CA()
    files = {}
    for name, ca, key_type in (
        ("rsa", rsa_ca, trustme.KeyType.RSA),
        ("ecdsa", ec_ca, trustme.KeyType.ECDSA),
    ):
        leaf = ca.issue_cert("127.0.0.1", key_type=key_type)
        files[f"{name}_cert"] = folder / f"{name}.pem"
        files[f"{name}_key"] = folder / f"{name}.key"
        leaf.private_key_pem.write_to_path(files[f"{name}_key"])
        with open(files[f"{name}_cert"], "wb") as out:
            for blob in leaf.cert_chain_pems:
                out.write(blob.bytes())
    files["client_ca"] = folder / "client-ca.pem"
    client_ca.cert_pem.write_to_path(files["client_ca"])
    return {"files": files, "server_cas": (rsa_ca, ec_ca), "client_ca": client_ca}


def _client_context(pki, cipher: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for ca in pki["server_cas"]:
        ca.configure_trust(ctx)
    if cipher is not None:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(cipher)
    return ctx


@pytest.fixture
async def sp2_collector(db, database_url, settings, pki):
    f = pki["files"]
    tls = settings.override(
        tls_cert=f["rsa_cert"],
        tls_key=f["rsa_key"],
        tls_ecdsa_cert=f["ecdsa_cert"],
        tls_ecdsa_key=f["ecdsa_key"],
    )
    async with Collector(tls, database_url) as col:
        yield col


async def test_sp2_required_cipher_suites(sp2_collector, pki):
    url = f"{sp2_collector.url('127.0.0.1')}/CP-TLS"
    auth = basic_auth("CP-TLS", "tls-password-1")
    for cipher in REQUIRED:
        ctx = _client_context(pki, cipher)
        async with ws_connect(
            url, subprotocols=["ocpp1.6"], ssl=ctx, additional_headers=auth
        ) as ws:
            tls = ws.transport.get_extra_info("ssl_object")
            assert (tls.version(), tls.cipher()[0]) == ("TLSv1.2", cipher), REQUIRED[cipher]
    # TLS 1.3 stays as it was
    async with ws_connect(
        url, subprotocols=["ocpp1.6"], ssl=_client_context(pki), additional_headers=auth
    ) as ws:
        assert ws.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
    # and nothing older than TLS 1.2
    old = _client_context(pki)
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError)):
        async with ws_connect(url, subprotocols=["ocpp1.6"], ssl=old):
            pass


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not on PATH")
async def test_sp2_openssl_s_client_rsa_key_exchange(sp2_collector, pki):
    """The conformance suite's handshake: AES128-GCM-SHA256 (RSA key exchange) over TLS 1.2."""
    proc = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-connect", f"127.0.0.1:{sp2_collector.port}",
        "-cipher", "AES128-GCM-SHA256", "-tls1_2",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert "Cipher is AES128-GCM-SHA256" in out.decode(), out.decode()[-800:]


@pytest.fixture
async def sp3_collector(db, database_url, settings, pki):
    f = pki["files"]
    tls = settings.override(
        auto_register=False,
        tls_cert=f["rsa_cert"],
        tls_key=f["rsa_key"],
        tls_client_ca=f["client_ca"],
    )
    async with Collector(tls, database_url) as col:
        yield col


def _with_client_cert(pki, common_name: str) -> ssl.SSLContext:
    ctx = _client_context(pki)
    leaf = pki["client_ca"].issue_cert(
        f"{common_name.lower()}.chargers.test", common_name=common_name
    )
    leaf.configure_cert(ctx)
    return ctx


async def test_sp3_client_certificate_is_the_credential(sp3_collector, db, pki):
    add_charge_point(db, "CP-SP3", "a-password-it-never-sends")
    url = f"{sp3_collector.url('127.0.0.1')}/CP-SP3"
    ctx = _with_client_cert(pki, "CP-SP3")
    async with ws_connect(url, subprotocols=["ocpp1.6"], ssl=ctx) as ws:  # no password
        cp = ChargePoint("CP-SP3", ws, response_timeout=10)
        task = asyncio.create_task(cp.start())
        assert (await cp.call(call.Heartbeat())).current_time
        task.cancel()
    # a certificate for another charge point is refused
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(
            url, subprotocols=["ocpp1.6"], ssl=_with_client_cert(pki, "CP-OTHER")
        ):
            pass
    assert info.value.response.status_code == 401
    # without a certificate the TLS handshake itself fails, password or not
    auth = basic_auth("CP-SP3", "a-password-it-never-sends")
    # (TLS 1.3: the client learns it when it reads the HTTP answer, which never comes)
    with pytest.raises((ssl.SSLError, ConnectionError, InvalidMessage)):
        async with ws_connect(
            url, subprotocols=["ocpp1.6"], ssl=_client_context(pki), additional_headers=auth
        ):
            pass


def test_tls_settings_from_env(pki):
    f = {k: str(v) for k, v in pki["files"].items()}
    env = {
        "CHARGEOPS_TLS_CERT": f["rsa_cert"],
        "CHARGEOPS_TLS_KEY": f["rsa_key"],
        "CHARGEOPS_TLS_ECDSA_CERT": f["ecdsa_cert"],
        "CHARGEOPS_TLS_ECDSA_KEY": f["ecdsa_key"],
        "CHARGEOPS_TLS_CLIENT_CA": f["client_ca"],
        "CHARGEOPS_AUTH_MAX_FAILURES": "3",
        "CHARGEOPS_AUTH_BACKOFF_S": "2",
        "CHARGEOPS_AUTH_BACKOFF_MAX_S": "60",
    }
    s = Settings.from_env(env)
    assert (str(s.tls_ecdsa_key), str(s.tls_client_ca)) == (f["ecdsa_key"], f["client_ca"])
    assert (s.auth_max_failures, s.auth_backoff_s, s.auth_backoff_max_s) == (3, 2.0, 60.0)
    for broken, message in (
        ({"CHARGEOPS_TLS_ECDSA_KEY": ""}, "go together"),
        ({"CHARGEOPS_TLS_CERT": "", "CHARGEOPS_TLS_KEY": ""}, "need CHARGEOPS_TLS_CERT"),
        ({"CHARGEOPS_AUTH_BACKOFF_S": "90"}, "BACKOFF_S <= _MAX_S"),
    ):
        with pytest.raises(ConfigError, match=message):
            Settings.from_env({**env, **broken})
