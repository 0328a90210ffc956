"""Composing the dashboard e-mail and handing it to an SMTP relay.

Built on the standard library's `email` package (never hand-made MIME) so the message is what
mail clients expect: multipart/mixed [ multipart/alternative [ text/plain, multipart/related
[ text/html, images ] ], attachments ]. Images are referenced from the HTML as `cid:<name>` and
carry `Content-ID: <name>` (RFC 2392), because mail clients run no JavaScript and fetch no
remote images by default.

| variable | default | meaning |
| --- | --- | --- |
| CHARGEOPS_SMTP_HOST | unset: dashboards are written, not sent | SMTP relay |
| CHARGEOPS_SMTP_PORT | 587 starttls, 465 ssl, 25 none | its port |
| CHARGEOPS_SMTP_SECURITY | `starttls` | `starttls`, `ssl` (implicit TLS) or `none` |
| CHARGEOPS_SMTP_USER / CHARGEOPS_SMTP_PASSWORD | unset | credentials (both or neither; never logged) |
| CHARGEOPS_SMTP_FROM | `chargeops <dashboard@localhost>` | the From address |
| CHARGEOPS_SMTP_CA_FILE | unset | extra CA bundle (PEM) for a relay with a private certificate |
| CHARGEOPS_SMTP_TIMEOUT | `30` | seconds per network operation |
"""

from __future__ import annotations

import contextlib
import html as html_lib
import ipaddress
import logging
import os
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import unquote

from chargeops.settings import ConfigError
from reports.files import write_bytes

log = logging.getLogger(__name__)

SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
RETRY_DELAYS = (0.5, 1.0)  # seconds before the 2nd and 3rd attempt

# Headers compose() sets itself; letting `headers=` set them too would duplicate or break them.
_RESERVED_HEADERS = {
    "from", "to", "cc", "subject", "date", "message-id", "mime-version",
    "content-type", "content-transfer-encoding", "content-disposition",
}  # fmt: skip

_IMAGE_TYPES = {  # magic bytes -> subtype: the image's own bytes decide its Content-Type
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
}

_CID_RE = re.compile(
    r"""(?:\b(?:src|background)\s*=\s*["']?|url\(\s*["']?)cid:([^"'\s>)]+)""", re.IGNORECASE
)


class MailError(RuntimeError):
    """Sending failed: one line naming the relay (host:port) and what failed, never a secret."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"  # "starttls" | "ssl" | "none"
    username: str = ""
    password: str = field(default="", repr=False)  # never printed, never logged
    sender: str = "chargeops <dashboard@localhost>"
    ca_file: str = ""  # extra CA bundle for a private relay (tests: trustme's CA)
    timeout_s: float = 30.0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpConfig | None:
        """The relay from CHARGEOPS_SMTP_*; None when no host is set (files only, no sending)."""
        env = os.environ if env is None else env
        host = env.get("CHARGEOPS_SMTP_HOST", "").strip()
        if not host:
            return None
        security = env.get("CHARGEOPS_SMTP_SECURITY", "").strip().lower() or "starttls"
        if security not in SECURITY_MODES:
            raise ConfigError(
                f"CHARGEOPS_SMTP_SECURITY={security!r} is not one of {', '.join(SECURITY_MODES)}"
            )
        raw_port = env.get("CHARGEOPS_SMTP_PORT", "").strip()
        try:
            port = int(raw_port) if raw_port else DEFAULT_PORTS[security]
        except ValueError:
            raise ConfigError(f"CHARGEOPS_SMTP_PORT={raw_port!r} is not a whole number") from None
        raw_timeout = env.get("CHARGEOPS_SMTP_TIMEOUT", "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else 30.0
        except ValueError:
            raise ConfigError(
                f"CHARGEOPS_SMTP_TIMEOUT={raw_timeout!r} is not a number of seconds"
            ) from None
        return cls(
            host=host,
            port=port,
            security=security,
            username=env.get("CHARGEOPS_SMTP_USER", ""),
            password=env.get("CHARGEOPS_SMTP_PASSWORD", ""),
            sender=env.get("CHARGEOPS_SMTP_FROM", "").strip() or cls.sender,
            ca_file=env.get("CHARGEOPS_SMTP_CA_FILE", "").strip(),
            timeout_s=timeout,
        ).validated()

    def validated(self) -> SmtpConfig:
        """Self, or a ConfigError naming the variable that is wrong (checked before connecting)."""
        if not self.host or any(c.isspace() for c in self.host):
            raise ConfigError(f"CHARGEOPS_SMTP_HOST={self.host!r} is not a host name")
        if self.security not in SECURITY_MODES:
            raise ConfigError(
                f"CHARGEOPS_SMTP_SECURITY={self.security!r} is not one of "
                f"{', '.join(SECURITY_MODES)}"
            )
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ConfigError(f"CHARGEOPS_SMTP_PORT={self.port!r} is out of range (1..65535)")
        if not 0 < self.timeout_s <= 3600:
            raise ConfigError(
                f"CHARGEOPS_SMTP_TIMEOUT={self.timeout_s!r} is out of range (0..3600 seconds)"
            )
        if self.username and not self.password:
            raise ConfigError("CHARGEOPS_SMTP_USER is set but CHARGEOPS_SMTP_PASSWORD is empty")
        if self.password and not self.username:
            raise ConfigError("CHARGEOPS_SMTP_PASSWORD is set but CHARGEOPS_SMTP_USER is empty")
        if self.username and self.security == "none" and not _is_loopback(self.host):
            raise ConfigError(
                f"CHARGEOPS_SMTP_SECURITY=none with credentials would send the password in clear "
                f"to {self.host}; use starttls or ssl"
            )
        if self.ca_file and not Path(self.ca_file).is_file():
            raise ConfigError(f"CHARGEOPS_SMTP_CA_FILE={self.ca_file!r}: no such file")
        _, addr = parseaddr(self.sender)
        if "@" not in addr or "\r" in self.sender or "\n" in self.sender:
            raise ConfigError(f"CHARGEOPS_SMTP_FROM={self.sender!r} is not an e-mail address")
        return self


def _is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cid_references(html: str) -> list[str]:
    """The cid names an HTML body refers to (`src="cid:..."`, `background=`, `url(cid:...)`),
    unique, in order of appearance; entity- and %-decoded as a mail client would (RFC 2392)."""
    seen: dict[str, None] = {}
    for raw in _CID_RE.findall(html_lib.unescape(html)):
        seen.setdefault(unquote(raw), None)
    return list(seen)


def _addresses(values: Sequence[str], what: str) -> list[Address]:
    """Parse address strings ("Name <a@b>" or "a@b") into header objects, or raise ValueError."""
    if isinstance(values, str):  # a bare string would be iterated character by character
        values = [values]
    out = []
    for value in values:
        if "\r" in value or "\n" in value:
            raise ValueError(f"{what} address {value!r} contains a line break")
        parsed = getaddresses([value])
        if not parsed or any("@" not in addr for _, addr in parsed):
            raise ValueError(f"{what} address {value!r} is not an e-mail address")
        for name, addr in parsed:
            try:
                address = Address(display_name=name, addr_spec=addr)
            except (ValueError, IndexError, HeaderParseError):
                address = None
            if address is None or not address.username or not address.domain:
                raise ValueError(f"{what} address {value!r} is not an e-mail address")
            out.append(address)
    return out


def _image_subtype(name: str, data: bytes) -> str:
    for magic, subtype in _IMAGE_TYPES.items():
        if data.startswith(magic):
            return subtype
    raise ValueError(f"inline image {name!r} is not a PNG, JPEG or GIF")


def compose(
    *,
    subject: str,
    sender: str,
    to: Sequence[str],
    html: str,
    text: str,
    inline_images: Mapping[str, bytes],
    attachments: Sequence[tuple[str, bytes, str]] = (),
    cc: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """The message, with every `cid:` in `html` backed by exactly one of `inline_images`.

    A dangling reference (a broken image in the reader's mail client) or an image the HTML never
    shows (dead weight the reader sees as a stray attachment) is a ValueError, not a surprise.
    """
    refs = cid_references(html)
    dangling = [r for r in refs if r not in inline_images]
    if dangling:
        raise ValueError(f"html refers to cid:{', cid:'.join(dangling)} but no such image is given")
    unused = [name for name in inline_images if name not in refs]
    if unused:
        raise ValueError(f"inline image(s) {', '.join(unused)} are never referenced by the html")
    for name in inline_images:
        if not name or any(c.isspace() or c in "<>\"'" for c in name):
            raise ValueError(f"inline image name {name!r} cannot be a Content-ID")
    if "\r" in subject or "\n" in subject:
        raise ValueError("subject contains a line break")

    from_ = _addresses([sender], "sender")
    if len(from_) != 1:
        raise ValueError(f"sender {sender!r} must be exactly one address")
    to_ = _addresses(to, "to")  # may be empty: a dry run still writes the .eml
    cc_ = _addresses(cc, "cc")

    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject
    msg["From"] = from_[0]
    if to_:
        msg["To"] = to_
    if cc_:
        msg["Cc"] = cc_
    msg["Date"] = datetime.now(UTC)
    msg["Message-ID"] = make_msgid(domain=from_[0].domain or "localhost")
    for key, value in (headers or {}).items():
        if key.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {key!r} is set by compose() itself")
        if "\r" in value or "\n" in value or "\r" in key or "\n" in key:
            raise ValueError(f"header {key!r} contains a line break")
        msg[key] = value

    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_payload()[1]
    for name, data in inline_images.items():
        html_part.add_related(
            data,
            maintype="image",
            subtype=_image_subtype(name, data),
            cid=f"<{name}>",
            disposition="inline",
            filename=name,
        )
    if inline_images:
        html_part.set_param("type", "text/html")  # RFC 2387: the root part's type
    for filename, data, content_type in attachments:
        maintype, _, subtype = content_type.partition("/")
        if not maintype or not subtype or "/" in subtype or ";" in content_type:
            raise ValueError(f"attachment {filename!r}: content type {content_type!r} is not x/y")
        params = {}
        if maintype == "text":
            try:
                data.decode("utf-8")
                params["charset"] = "utf-8"  # what the dashboard writer produces
            except UnicodeDecodeError:
                pass
        msg.add_attachment(
            data, maintype=maintype, subtype=subtype, filename=filename, params=params
        )
    return msg


def write_eml(message: EmailMessage, path: Path) -> Path:
    """The message as an .eml file (what `--dry-run` leaves to open in a mail client)."""
    return write_bytes(Path(path), message.as_bytes(policy=SMTP))


def _envelope_recipients(message: EmailMessage) -> list[str]:
    fields = [str(v) for key in ("To", "Cc", "Bcc") for v in message.get_all(key, [])]
    seen: dict[str, None] = {}
    for _, addr in getaddresses(fields):
        if addr:
            seen.setdefault(addr, None)
    return list(seen)


def _tls_context(config: SmtpConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=config.ca_file or None)


def _attempt(
    message: EmailMessage, config: SmtpConfig, to_addrs: list[str]
) -> dict[str, tuple[int, bytes]]:
    """One connection: TLS, login, send. Returns the refused recipients, raises on failure."""
    if config.security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout_s, context=_tls_context(config)
        )
    else:
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
    try:
        if config.security == "starttls":
            smtp.starttls(context=_tls_context(config))
        if config.username:
            smtp.login(config.username, config.password)
        refused = smtp.send_message(message, to_addrs=to_addrs)
    except BaseException:
        smtp.close()  # no QUIT: the connection may be broken or hung
        raise
    # A failing QUIT after a delivered message must not turn it into a failure (and a duplicate).
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.quit()
    smtp.close()
    return refused


def _classify(e: BaseException, config: SmtpConfig) -> tuple[bool, str]:
    """(transient?, what failed) for an exception raised by `_attempt`."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return False, f"TLS certificate verification failed ({e.verify_message})"
    if isinstance(e, ssl.SSLError):
        return False, f"TLS handshake failed ({e.reason or e})"
    if isinstance(e, smtplib.SMTPNotSupportedError):  # no STARTTLS / AUTH / SMTPUTF8 offered
        return False, str(e).rstrip(".")
    if isinstance(e, smtplib.SMTPResponseException):
        text = (
            e.smtp_error.decode("utf-8", "replace")
            if isinstance(e.smtp_error, bytes)
            else e.smtp_error
        )
        if isinstance(e, smtplib.SMTPAuthenticationError):
            what = f"login as {config.username!r} refused"
        elif isinstance(e, smtplib.SMTPSenderRefused):
            what = f"sender {e.sender} refused"
        elif isinstance(e, smtplib.SMTPDataError):
            what = "message refused"
        else:
            what = "server said"
        return 400 <= e.smtp_code < 500, f"{what}: {e.smtp_code} {text}"
    if isinstance(e, smtplib.SMTPServerDisconnected):
        return True, f"connection closed by the server ({e})"
    if isinstance(e, ConnectionRefusedError):
        return True, "connection refused (no SMTP server listening?)"
    if isinstance(e, TimeoutError):
        return True, f"no answer within {config.timeout_s:g} s"
    if isinstance(e, socket.gaierror):
        return e.errno == socket.EAI_AGAIN, f"cannot resolve the host ({e.strerror})"
    if isinstance(e, smtplib.SMTPException):
        return False, str(e)
    if isinstance(e, OSError):
        return True, f"network error ({e.strerror or e})"
    raise e


def _scrub(text: str, config: SmtpConfig) -> str:
    """One line (server replies can be multi-line) and never the password, whatever echoed it."""
    text = " ".join(text.split())
    return text.replace(config.password, "***") if config.password else text


def send(message: EmailMessage, config: SmtpConfig) -> list[str]:
    """Deliver `message` to its To/Cc/Bcc recipients; the accepted ones are returned.

    Transient failures (network errors, 4xx replies, recipients refused with 4xx) are retried up
    to 3 attempts, only for what is still pending so nobody gets the message twice; 5xx replies
    and TLS errors are final. Some recipients refused: the others still get it (logged). All
    refused, or nothing delivered: MailError.
    """
    config = config.validated()
    pending = _envelope_recipients(message)
    if not pending:
        raise ValueError("the message has no To/Cc/Bcc recipient")
    accepted: list[str] = []
    refused: dict[str, str] = {}
    delays = (*RETRY_DELAYS, None)
    for attempt, delay in enumerate(delays, start=1):
        try:
            refused_now = _attempt(message, config, pending)
        except smtplib.SMTPRecipientsRefused as e:
            refused_now = e.recipients
        except Exception as e:  # classified below; unknown kinds are re-raised
            transient, what = _classify(e, config)
            if not transient or delay is None:
                if accepted:  # an earlier attempt delivered to some: report, do not raise
                    refused.update(dict.fromkeys(pending, what))
                    break
                tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                raise MailError(_scrub(f"SMTP {config.where}: {what}{tries}", config)) from None
            log.warning("SMTP %s: %s; retrying in %g s", config.where, _scrub(what, config), delay)
            time.sleep(delay)
            continue
        accepted += [r for r in pending if r not in refused_now]
        retry = []
        for rcpt, (code, reply) in refused_now.items():
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            refused[rcpt] = f"{code} {text}"
            if 400 <= code < 500 and delay is not None:
                retry.append(rcpt)
        if not retry:
            break
        log.warning(
            "SMTP %s: %d recipient(s) deferred; retrying in %g s", config.where, len(retry), delay
        )
        pending = retry
        time.sleep(delay)
    refused = {r: why for r, why in refused.items() if r not in accepted}
    if not accepted:
        detail = "; ".join(f"{r} ({why})" for r, why in refused.items())
        raise MailError(
            _scrub(f"SMTP {config.where}: every recipient was refused: {detail}", config)
        )
    if refused:
        log.warning(
            "SMTP %s: delivered to %d, refused %s",
            config.where,
            len(accepted),
            _scrub("; ".join(f"{r} ({why})" for r, why in refused.items()), config),
        )
    else:
        log.info("SMTP %s: delivered to %d recipient(s)", config.where, len(accepted))
    return accepted
