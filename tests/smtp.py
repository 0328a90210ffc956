"""A real SMTP server for tests (aiosmtpd on 127.0.0.1): keeps what arrived, can refuse
recipients or answer DATA with scripted replies."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from aiosmtpd.controller import Controller


class Collector:
    """aiosmtpd handler: keeps what arrived; refuses listed recipients; scripted DATA replies."""

    def __init__(
        self,
        refuse: dict[str, list[str]] | None = None,
        data_replies: list[str] | None = None,
    ) -> None:
        self.refuse = refuse or {}  # address -> replies to give, in order (then accept)
        self.data_replies = list(data_replies or [])
        self.received: list[tuple[str, list[str], bytes]] = []
        self.data_calls = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        replies = self.refuse.get(address)
        if replies:
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            if not reply.startswith("2"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.data_calls += 1
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def smtp_server(handler: Collector, **kwargs: object) -> Iterator[Controller]:
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), server_hostname="localhost", **kwargs
    )
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
