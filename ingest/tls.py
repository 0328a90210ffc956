"""TLS for the collector: OCPP Security Profile 2 (server certificate, HTTP Basic inside) and 3
(client certificates too; the certificate's CN is the charge point id)."""

from __future__ import annotations

import ssl

from chargeops.settings import Settings

# TLS 1.2 suites, OpenSSL names. OCPP 2.0.1 A00.FR.318 requires the TLS_ECDHE_ECDSA_ and TLS_RSA_
# AES-GCM pairs; Python's default server list leaves RSA key exchange out. ECDHE first (forward
# secrecy); the ECDSA suites need an ECDSA certificate, the others an RSA one. TLS 1.3 suites are
# not touched by set_ciphers.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
    )
)


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """None without a certificate (plain ws://, Security Profile 1)."""
    if not (settings.tls_cert and settings.tls_key):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    # OpenSSL keeps one certificate per key type: an RSA and an ECDSA one side by side
    ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.tls_ecdsa_cert and settings.tls_ecdsa_key:
        ctx.load_cert_chain(settings.tls_ecdsa_cert, settings.tls_ecdsa_key)
    if settings.tls_client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=settings.tls_client_ca)
    return ctx


def peer_common_name(ssl_object: ssl.SSLObject | None) -> str | None:
    """The verified client certificate's single commonName; None if absent or ambiguous."""
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return None
    names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    return names[0] if len(names) == 1 else None
