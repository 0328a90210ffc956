"""The dashboard e-mail through a real SMTP server (aiosmtpd on 127.0.0.1, real TLS with a trustme
CA), parsed back as a mail client would; and the recipients configuration. No database."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import socket
import ssl
import struct
import threading
import zlib
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from chargeops.settings import ConfigError
from reports import recipients
from reports.mail import MailError, SmtpConfig, cid_references, compose, send, write_eml
from reports.recipients import Audience
from tests.smtp import Collector, free_port, smtp_server

# mail over SMTP, no database: CI runs these once (marker `once`)
pytestmark = pytest.mark.once

USER, PASSWORD = "dashboard", "pw-Zx81-never-shown"
SUBJECT = "Übersicht – Straße"


def png(r: int, g: int, b: int) -> bytes:
    """A real 1x1 PNG of one colour (distinct bytes per image, so a mix-up shows)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    raw = zlib.compress(bytes([0, r, g, b]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


IMAGES = {"sessions.png": png(10, 120, 200), "uptime.png": png(200, 60, 10)}
HTML = (
    "<html><body><table><tr><td><h1>Ladenetz S&uuml;d</h1>"
    '<img src="cid:sessions.png" alt="sessions" width="600">'
    "</td></tr><tr><td style=\"background:url('cid:uptime.png')\">"
    '<img src="cid:sessions.png" alt="again"></td></tr></table></body></html>'
)
INTERACTIVE = "<!doctype html><html><meta charset='utf-8'><title>Straße</title></html>".encode()


def message(**overrides: object):
    kw: dict = dict(
        subject=SUBJECT,
        sender="Ladenetz Süd <dashboard@example.com>",
        to=["ops@example.com", "Night Desk <night@example.com>"],
        cc=["audit@example.org"],
        html=HTML,
        text="Sessions up 12 % on last week.",
        inline_images=IMAGES,
        attachments=[("dashboard.html", INTERACTIVE, "text/html")],
        headers={"X-Chargeops-Period": "2026-W27"},
    )
    kw.update(overrides)
    return compose(**kw)


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A server context with a certificate for 127.0.0.1 and the CA file that trusts it."""
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ctx, str(ca_file)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


# ---------------------------------------------------------------- compose + plain SMTP


def test_compose_and_send_plain_smtp_arrives_whole(tmp_path: Path) -> None:
    handler = Collector()
    with smtp_server(handler) as srv:
        cfg = SmtpConfig(host="127.0.0.1", port=srv.port, security="none")
        accepted = send(message(), cfg)

    assert accepted == ["ops@example.com", "night@example.com", "audit@example.org"]
    assert len(handler.received) == 1
    mail_from, rcpts, data = handler.received[0]
    assert mail_from == "dashboard@example.com"
    assert rcpts == ["ops@example.com", "night@example.com", "audit@example.org"]

    got = parse(data)
    assert got["Subject"] == SUBJECT
    assert got["From"].addresses[0].display_name == "Ladenetz Süd"
    assert [a.addr_spec for a in got["To"].addresses] == ["ops@example.com", "night@example.com"]
    assert got["To"].addresses[1].display_name == "Night Desk"
    assert got["X-Chargeops-Period"] == "2026-W27"
    assert got["Date"].datetime is not None
    assert re.fullmatch(r"<[^<>@]+@example\.com>", got["Message-ID"])

    # mixed > [alternative > [plain, related > [html, png, png]], attachment]
    assert got.get_content_type() == "multipart/mixed"
    alternative, attachment = got.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().strip() == "Sessions up 12 % on last week."
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "text/html"
    html_part, *image_parts = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert html_part.get_content().replace("\r\n", "\n").rstrip("\n") == HTML
    assert [p.get_content_type() for p in image_parts] == ["image/png", "image/png"]

    # every cid: reference resolves to exactly one image part, with the right bytes
    refs = cid_references(html_part.get_content())
    assert refs == ["sessions.png", "uptime.png"]
    for ref in refs:
        matches = [p for p in image_parts if p["Content-ID"] == f"<{ref}>"]
        assert len(matches) == 1, ref
        assert matches[0].get_content() == IMAGES[ref]
        assert matches[0].get_content_disposition() == "inline"
        assert matches[0].get_filename() == ref

    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "dashboard.html"
    assert attachment.get_content_type() == "text/html"
    assert attachment.get_content().encode() == INTERACTIVE
    assert not [part.defects for part in got.walk() if part.defects]

    # the .eml a dry run leaves is the same message, byte for byte what would be sent
    msg = message()
    eml = write_eml(msg, tmp_path / "out" / "dashboard.eml")
    assert eml.read_bytes() == msg.as_bytes(policy=email.policy.SMTP)
    assert b"\r\n" in eml.read_bytes()
    assert parse(eml.read_bytes())["Subject"] == SUBJECT


def test_bcc_is_delivered_but_not_shown() -> None:
    msg = message(cc=[])
    msg["Bcc"] = "hidden@example.net"
    handler = Collector()
    with smtp_server(handler) as srv:
        accepted = send(msg, SmtpConfig(host="127.0.0.1", port=srv.port, security="none"))
    assert "hidden@example.net" in accepted
    assert "hidden@example.net" in handler.received[0][1]
    assert b"hidden@example.net" not in handler.received[0][2]


# ---------------------------------------------------------------- TLS and AUTH


def test_starttls_with_auth(tls: tuple[ssl.SSLContext, str]) -> None:
    ctx, ca_file = tls
    handler = Collector()
    with smtp_server(
        handler,
        tls_context=ctx,
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=authenticator,
    ) as srv:
        cfg = SmtpConfig(
            host="127.0.0.1",
            port=srv.port,
            security="starttls",
            username=USER,
            password=PASSWORD,
            ca_file=ca_file,
        )
        assert send(message(cc=[]), cfg) == ["ops@example.com", "night@example.com"]

        # the same server, a wrong password: one clear line, no password, not retried
        wrong = "not-the-" + PASSWORD
        bad = SmtpConfig(
            host="127.0.0.1",
            port=srv.port,
            username=USER,
            password=wrong,
            ca_file=ca_file,
        )
        with pytest.raises(MailError) as err:
            send(message(), bad)
        text = str(err.value)
        assert f"127.0.0.1:{srv.port}" in text
        assert "535" in text and USER in text
        assert wrong not in text and PASSWORD not in text
        assert "attempts" not in text  # a 5xx login failure is final
        assert "\n" not in text

        # without the private CA the certificate is not trusted: a TLS error, not a retry
        with pytest.raises(MailError, match="certificate verification failed") as err:
            send(message(), SmtpConfig(host="127.0.0.1", port=srv.port, security="starttls"))
        assert "attempts" not in str(err.value)
    assert len(handler.received) == 1
    assert parse(handler.received[0][2])["Subject"] == SUBJECT


def test_starttls_required_by_config_but_not_offered() -> None:
    with smtp_server(Collector()) as srv, pytest.raises(MailError, match="STARTTLS"):
        send(message(), SmtpConfig(host="127.0.0.1", port=srv.port, security="starttls"))


def test_implicit_tls_with_auth(tls: tuple[ssl.SSLContext, str]) -> None:
    ctx, ca_file = tls
    handler = Collector()
    # aiosmtpd only counts STARTTLS as TLS for AUTH; here the whole connection is TLS
    with smtp_server(
        handler, ssl_context=ctx, authenticator=authenticator, auth_require_tls=False
    ) as srv:
        cfg = SmtpConfig(
            host="127.0.0.1",
            port=srv.port,
            security="ssl",
            username=USER,
            password=PASSWORD,
            ca_file=ca_file,
        )
        assert send(message(), cfg) == ["ops@example.com", "night@example.com", "audit@example.org"]
    assert len(handler.received) == 1


# ---------------------------------------------------------------- refusals and retries


def test_one_recipient_refused_the_rest_delivered(caplog: pytest.LogCaptureFixture) -> None:
    handler = Collector(refuse={"night@example.com": ["550 5.1.1 no such user"]})
    with smtp_server(handler) as srv:
        accepted = send(message(), SmtpConfig(host="127.0.0.1", port=srv.port, security="none"))
    assert accepted == ["ops@example.com", "audit@example.org"]
    assert [r for _, r, _ in handler.received] == [["ops@example.com", "audit@example.org"]]
    assert "night@example.com (550" in caplog.text


def test_all_recipients_refused_is_an_error() -> None:
    nobody = ["550 5.1.1 no such user"]
    handler = Collector(refuse={"ops@example.com": nobody, "night@example.com": nobody})
    with smtp_server(handler) as srv, pytest.raises(MailError) as err:
        send(message(cc=[]), SmtpConfig(host="127.0.0.1", port=srv.port, security="none"))
    assert "every recipient was refused" in str(err.value)
    assert "ops@example.com" in str(err.value) and "night@example.com" in str(err.value)
    assert handler.received == []


def test_deferred_recipient_is_retried_alone() -> None:
    """A 4xx for one recipient: the others get the message once, the deferred one on retry."""
    handler = Collector(refuse={"night@example.com": ["450 4.2.1 mailbox busy", "250 OK"]})
    with smtp_server(handler) as srv:
        accepted = send(message(), SmtpConfig(host="127.0.0.1", port=srv.port, security="none"))
    assert sorted(accepted) == ["audit@example.org", "night@example.com", "ops@example.com"]
    assert [r for _, r, _ in handler.received] == [
        ["ops@example.com", "audit@example.org"],
        ["night@example.com"],
    ]


def test_recipient_deferred_on_every_attempt_gives_up_on_it_alone() -> None:
    handler = Collector(refuse={"night@example.com": ["450 4.2.1 mailbox busy"]})
    with smtp_server(handler) as srv:
        accepted = send(message(), SmtpConfig(host="127.0.0.1", port=srv.port, security="none"))
    assert accepted == ["ops@example.com", "audit@example.org"]
    assert [r for _, r, _ in handler.received] == [["ops@example.com", "audit@example.org"]]


def test_transient_data_reply_is_retried_permanent_is_not() -> None:
    handler = Collector(data_replies=["451 4.3.0 try again later"])
    with smtp_server(handler) as srv:
        cfg = SmtpConfig(host="127.0.0.1", port=srv.port, security="none")
        assert send(message(cc=[]), cfg) == ["ops@example.com", "night@example.com"]
        assert handler.data_calls == 2 and len(handler.received) == 1

        handler.data_replies = ["554 5.6.0 message content rejected"]
        with pytest.raises(MailError, match="554") as err:
            send(message(), cfg)
        assert handler.data_calls == 3  # one more call: a 5xx is final
        assert "attempts" not in str(err.value)


def test_nothing_listening_names_host_port_after_retries() -> None:
    port = free_port()  # bound, then released: nothing listens there
    with pytest.raises(MailError) as err:
        send(message(), SmtpConfig(host="127.0.0.1", port=port, security="none"))
    text = str(err.value)
    assert f"127.0.0.1:{port}" in text
    assert "connection refused" in text
    assert "after 3 attempts" in text


def test_server_that_hangs_up_is_tried_three_times() -> None:
    accepted_connections = 0
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def drop() -> None:
        nonlocal accepted_connections
        with contextlib.suppress(OSError):
            while accepted_connections < 3:
                conn, _ = listener.accept()
                accepted_connections += 1
                conn.close()

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        with pytest.raises(MailError, match="connection closed by the server"):
            send(message(), SmtpConfig(host="127.0.0.1", port=port, security="none"))
    finally:
        thread.join(10)
        listener.close()
    assert accepted_connections == 3


# ---------------------------------------------------------------- compose's honesty checks


def test_compose_refuses_dangling_cid_and_unused_image() -> None:
    with pytest.raises(ValueError, match=r"cid:uptime\.png"):
        message(inline_images={"sessions.png": IMAGES["sessions.png"]})
    extra = {**IMAGES, "spare.png": png(1, 2, 3)}
    with pytest.raises(ValueError, match=r"spare\.png"):
        message(inline_images=extra)
    with pytest.raises(ValueError, match="not a PNG"):
        message(inline_images={**IMAGES, "uptime.png": b"<svg/>"})
    with pytest.raises(ValueError, match="line break"):
        message(headers={"X-Evil": "a\r\nBcc: victim@example.com"})
    with pytest.raises(ValueError, match="not an e-mail address"):
        message(to=["not an address"])


def test_compose_without_recipients_for_a_dry_run(tmp_path: Path) -> None:
    msg = message(to=[], cc=[])
    assert msg["To"] is None
    assert parse(write_eml(msg, tmp_path / "d.eml").read_bytes())["Subject"] == SUBJECT
    with pytest.raises(ValueError, match="no To/Cc/Bcc"):
        send(msg, SmtpConfig(host="127.0.0.1", port=25, security="none"))


def test_cid_references_forms() -> None:
    html = (
        "<img SRC='cid:a.png'><img src=cid:b%20c.png>"
        '<td style="background-image: url( &quot;cid:d.png&quot; )">'
        '<td background="cid:e.png"><p>cid:not-a-reference.png</p>'
        '<img src="cid:a.png">'
    )
    assert cid_references(html) == ["a.png", "b c.png", "d.png", "e.png"]
    assert cid_references("<p>no images</p>") == []


# ---------------------------------------------------------------- SmtpConfig.from_env


def test_smtp_config_from_env(tmp_path: Path) -> None:
    assert SmtpConfig.from_env({}) is None
    assert SmtpConfig.from_env({"CHARGEOPS_SMTP_HOST": "  "}) is None
    host = {"CHARGEOPS_SMTP_HOST": "smtp.example.com"}
    assert SmtpConfig.from_env(host) == SmtpConfig(host="smtp.example.com", port=587)
    for security, port in [("starttls", 587), ("ssl", 465), ("none", 25), ("SSL", 465)]:
        cfg = SmtpConfig.from_env({**host, "CHARGEOPS_SMTP_SECURITY": security})
        assert (cfg.security, cfg.port) == (security.lower(), port)
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    cfg = SmtpConfig.from_env(
        {
            **host,
            "CHARGEOPS_SMTP_PORT": "2525",
            "CHARGEOPS_SMTP_USER": "u",
            "CHARGEOPS_SMTP_PASSWORD": "hunter2-secret",
            "CHARGEOPS_SMTP_FROM": "Ops <ops@example.com>",
            "CHARGEOPS_SMTP_CA_FILE": str(ca),
            "CHARGEOPS_SMTP_TIMEOUT": "5",
        }
    )
    assert (cfg.port, cfg.username, cfg.sender, cfg.ca_file, cfg.timeout_s) == (
        2525,
        "u",
        "Ops <ops@example.com>",
        str(ca),
        5.0,
    )
    assert "hunter2-secret" not in repr(cfg) and "hunter2-secret" not in str(cfg)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"CHARGEOPS_SMTP_PORT": "smtp"}, "CHARGEOPS_SMTP_PORT='smtp' is not a whole number"),
        ({"CHARGEOPS_SMTP_PORT": "70000"}, "CHARGEOPS_SMTP_PORT=70000 is out of range"),
        ({"CHARGEOPS_SMTP_PORT": "0"}, "CHARGEOPS_SMTP_PORT=0 is out of range"),
        ({"CHARGEOPS_SMTP_SECURITY": "tls"}, "CHARGEOPS_SMTP_SECURITY='tls' is not one of"),
        ({"CHARGEOPS_SMTP_USER": "u"}, "CHARGEOPS_SMTP_PASSWORD is empty"),
        ({"CHARGEOPS_SMTP_PASSWORD": "p"}, "CHARGEOPS_SMTP_USER is empty"),
        ({"CHARGEOPS_SMTP_CA_FILE": "/nonexistent/ca.pem"}, "CHARGEOPS_SMTP_CA_FILE"),
        ({"CHARGEOPS_SMTP_FROM": "dashboard"}, "CHARGEOPS_SMTP_FROM='dashboard' is not an e-mail"),
        ({"CHARGEOPS_SMTP_TIMEOUT": "soon"}, "CHARGEOPS_SMTP_TIMEOUT='soon'"),
        ({"CHARGEOPS_SMTP_TIMEOUT": "-1"}, "CHARGEOPS_SMTP_TIMEOUT=-1.0 is out of range"),
        (
            {
                "CHARGEOPS_SMTP_SECURITY": "none",
                "CHARGEOPS_SMTP_USER": "u",
                "CHARGEOPS_SMTP_PASSWORD": "hunter2-secret",
            },
            "password in clear",
        ),
    ],
)
def test_smtp_config_errors(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        SmtpConfig.from_env({"CHARGEOPS_SMTP_HOST": "smtp.example.com", **env})
    assert needle in str(err.value)
    assert "hunter2-secret" not in str(err.value)
    assert "\n" not in str(err.value)


def test_credentials_without_tls_allowed_on_loopback_only() -> None:
    creds = {"username": "u", "password": "p", "security": "none"}
    assert SmtpConfig(host="127.0.0.1", **creds).validated().host == "127.0.0.1"
    assert SmtpConfig(host="localhost", **creds).validated().host == "localhost"
    with pytest.raises(ConfigError):
        SmtpConfig(host="10.0.0.5", **creds).validated()


# ---------------------------------------------------------------- recipients

SITES = {
    "SITE-001": "Marktplatz Nord",
    "SITE-002": "<script>alert(1)</script>",
    "SITE-003": "",
    "site 001": "Shadow of SITE-001",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipients.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_recipients_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
operators:
  - name: Demo Charging Network
    sites: all
    to: [ops@example.com, "Night Desk <night@example.com>"]
    cc: []
  - name: Süd GmbH
    sites: [SITE-002, SITE-003]
    to: "sued@example.com, Jürgen <j@example.de>"
    cc: [audit@example.org]
sites:
  SITE-001:
    to: [manager-1@example.com]
  site 001:
    to: [shadow@example.com]
  SITE-002:
    to: [manager-2@example.com]
  SITE-003:
    to: [manager-3@example.com]
""",
    )
    got = recipients.load(path, SITES)
    assert got[0] == Audience(
        key="operator-demo-charging-network",
        title="Demo Charging Network",
        scope="operator",
        site_ids=None,
        to=("ops@example.com", "Night Desk <night@example.com>"),
    )
    assert got[1] == Audience(
        "operator-sud-gmbh",
        "Süd GmbH",
        "operator",
        ("SITE-002", "SITE-003"),
        ("sued@example.com", "Jürgen <j@example.de>"),
        ("audit@example.org",),
    )
    sites = {a.site_ids[0]: a for a in got if a.scope == "site"}
    assert sites["SITE-001"].key == "site-site-001"
    assert sites["site 001"].key == "site-site-001-2"  # same slug, still its own folder
    assert sites["SITE-002"].title == "<script>alert(1)</script>"  # verbatim: the template escapes
    assert sites["SITE-003"].title == "SITE-003"  # no name in the database
    keys = [a.key for a in got]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[a-z0-9-]+", k) for k in keys)


def test_hostile_names_make_safe_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
operators:
  - {name: "<script>alert(1)</script>", to: [a@example.com]}
  - {name: "../../etc", to: [b@example.com]}
  - {name: "Ops North", to: [c@example.com]}
  - {name: "Ops-North!", to: [d@example.com]}
  - {name: "***", to: [e@example.com]}
""",
    )
    got = recipients.load(path, SITES)
    assert got[0].title == "<script>alert(1)</script>"
    assert [a.key for a in got] == [
        "operator-script-alert-1-script",
        "operator-etc",
        "operator-ops-north",
        "operator-ops-north-2",
        "operator-unnamed",
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("operators: [\n  {name: x", "bad YAML"),
        ("operators: []\nsites: {}\n", "lists no operators and no sites"),
        ("operator:\n  - {name: A, to: [a@example.com]}\n", "unknown key(s) operator"),
        ("operators:\n  - {name: A, to: [a@example.com], bcc: [b@example.com]}\n", "bcc"),
        ("operators:\n  - {to: [a@example.com]}\n", "operators[1]: 'name' is missing"),
        ("operators:\n  - {name: A}\n", "operator 'A': no recipients"),
        ("operators:\n  - {name: A, to: []}\n", "operator 'A': no recipients"),
        (
            "operators:\n  - {name: A, to: [a@example.com]}\n  - {name: a, to: [b@example.com]}\n",
            "operator 'a': the name is used twice",
        ),
        (
            "operators:\n  - {name: A, sites: [SITE-001, SITE-999], to: [a@example.com]}\n",
            "unknown site id(s) SITE-999 (known: SITE-001, SITE-002",
        ),
        ("operators:\n  - {name: A, sites: some, to: [a@example.com]}\n", "'sites' must be"),
        ("sites:\n  SITE-404: {to: [a@example.com]}\n", "sites 'SITE-404': unknown site id"),
        ("sites:\n  SITE-001: {cc: [a@example.com]}\n", "sites 'SITE-001': no recipients"),
        ("operators:\n  - {name: A, to: [not-an-address]}\n", "'not-an-address' is not an e-mail"),
        ("operators:\n  - {name: A, to: ['a b@example.com']}\n", "is not an e-mail address"),
        (
            'operators:\n  - {name: A, to: ["a@example.com\\r\\nBcc: x@evil.com"]}\n',
            "contains a line break",
        ),
        ("operators:\n  - {name: A, to: [a@example.com], cc: [nope]}\n", "operator 'A' cc"),
        ("- just a list\n", "expected a mapping"),
    ],
)
def test_recipients_errors(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        recipients.load(path, SITES)
    assert needle in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_recipients_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read it"):
        recipients.from_env(SITES, {"CHARGEOPS_DASHBOARD_RECIPIENTS": str(missing)})


def test_recipients_from_env_fallbacks(tmp_path: Path) -> None:
    path = write(tmp_path, "operators:\n  - {name: Fleet, to: [f@example.com]}\n")
    got = recipients.from_env(SITES, {"CHARGEOPS_DASHBOARD_RECIPIENTS": str(path)})
    assert [(a.key, a.to) for a in got] == [("operator-fleet", ("f@example.com",))]

    got = recipients.from_env(
        SITES,
        {
            "CHARGEOPS_DASHBOARD_TO": "a@example.com, Ops <b@example.com>",
            "CHARGEOPS_NETWORK_NAME": "Volt",
        },
    )
    assert got == [
        Audience(
            "operator-volt", "Volt", "operator", None, ("a@example.com", "Ops <b@example.com>")
        )
    ]
    with pytest.raises(ConfigError, match="CHARGEOPS_DASHBOARD_TO: 'oops' is not"):
        recipients.from_env(SITES, {"CHARGEOPS_DASHBOARD_TO": "oops"})

    got = recipients.from_env(SITES, {})
    assert got == recipients.default_audiences(SITES)
    assert got[0] == Audience(
        "operator-chargeops-network", "chargeops network", "operator", None, ()
    )
    assert [(a.scope, a.site_ids, a.to) for a in got[1:]] == [
        ("site", (sid,), ()) for sid in sorted(SITES)
    ]
    assert len({a.key for a in got}) == len(got)
