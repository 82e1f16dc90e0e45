"""The embedded mailbox: a real SMTP server (aiosmtpd) that keeps every message it
receives, so the shop's e-mails can be read in the admin pages instead of being sent
into the world. Used when no external SMTP server is configured."""

from __future__ import annotations

import asyncio
import logging
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.smtp import SMTP
from opentelemetry.instrumentation.utils import suppress_instrumentation

from kansoku.kit.db import Database
from kansoku.services.worker import store
from kansoku.services.worker.models import Mail

logger = logging.getLogger(__name__)
#: aiosmtpd's logger. It logs every envelope at INFO ("sender: …", "recip:
#: <alice@example.com>"): a customer's address in every order's log.
SMTP_SERVER_LOGGER = "mail.log"


class MailboxHandler:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        # The mailbox stands in for someone else's mail server: keeping a message is not
        # the shop's work, and happens outside any request or event (its connect and
        # INSERT spans would each be a trace of their own). Neither traced nor, at INFO,
        # logged: the function that sent the message logs its invocation. How many
        # recipients, not who: an address names a customer (the user id is the identifier).
        with suppress_instrumentation():
            async with self.db.transaction() as db_session:
                await store.add_mail(db_session, Mail(
                    sender=str(envelope.mail_from), recipients=list(envelope.rcpt_tos),
                    subject=str(message.get("Subject", ""))[:300],
                    body=body.get_content() if body is not None else ""))
        logger.debug("mailbox received '%s'", message.get("Subject", ""),
                     extra={"recipients": len(envelope.rcpt_tos)})
        return "250 Message accepted for delivery"


async def start_mailbox(db: Database, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    # Its warnings and errors still come through (the kit masks addresses in them).
    logging.getLogger(SMTP_SERVER_LOGGER).setLevel(logging.WARNING)
    handler = MailboxHandler(db)
    return await loop.create_server(
        lambda: SMTP(handler, hostname="kansoku-mailbox", loop=loop), host, port)
