"""E-mail delivery: the task message rendered for people (`citybrain/dispatch/render.py`)
as a plain-text e-mail to the mailbox's addresses, through the SMTP server the settings
name (`CITYBRAIN_SMTP_*`: STARTTLS and login by default, the password a secret setting).

The standard library's `smtplib` runs in a thread, one connection a message (a mailbox
gets few). The server's answer decides the outcome: accepted for every address is sent; a
4xx (greylisting, a full queue) or no connection is retried; a 5xx (an address refused, a
login refused) is rejected at once. The `Message-ID` header is the delivery's id, so a
message sent again after a worker died shows as the same message in a mail client."""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING

from citybrain.agents.dispatch.notify import ForPeople
from citybrain.dispatch.outbox import Outcome
from citybrain.dispatch.render import Rendered

if TYPE_CHECKING:
    from citybrain.agents.context import StageContext
    from citybrain.agents.dispatch.store import Outgoing
    from citybrain.dispatch.channels import MailboxEndpoint
    from citybrain.settings import Settings


_NOT_ATOM = re.compile(r"[^A-Za-z0-9.!#$%&*+/=?^_{|}~-]")


class EmailNotifier:
    """Sends task e-mails to the mailboxes the worker's channels configure."""

    kind = "email"

    def __init__(self, ctx: StageContext) -> None:
        s = ctx.settings
        self.settings = s
        self.mailboxes = dict(ctx.channels.mailboxes)
        self.people = ForPeople(ctx)

    async def start(self) -> None:
        return None

    async def send(self, name: str, item: Outgoing, body: bytes) -> Outcome:
        box = self.mailboxes.get(name)
        if box is None:
            return Outcome.rejected(f"mailbox {name} is not configured on this worker")
        if not self.settings.smtp_host:
            return Outcome.rejected("no SMTP server: set CITYBRAIN_SMTP_HOST")
        message = self.people.render(item.payload, box.language)
        if isinstance(message, Outcome):
            return message
        mail = email_message(message, box, self.settings.smtp_from, item.message_id)
        try:
            await asyncio.wait_for(
                asyncio.to_thread(send_mail, self.settings, mail),
                timeout=self.settings.webhook_timeout * 3,
            )
        except TimeoutError:
            return Outcome.timeout("the SMTP server did not answer in time")
        except smtplib.SMTPResponseException as exc:
            return smtp_outcome(exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return smtp_outcome(max(codes), b"recipients refused")
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome.connection_error(f"{type(exc).__name__}: {exc}"[:200])
        return Outcome.http(200)

    async def found(self, name: str, item: Outgoing) -> bool | None:
        """A mailbox cannot be asked: sent again with the same Message-ID."""
        return False

    async def close(self) -> None:
        return None


def email_message(
    message: Rendered, box: MailboxEndpoint, sender: str, message_id: str
) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = sender
    mail["To"] = ", ".join(box.to)
    mail["Date"] = formatdate(localtime=False)
    # the delivery's id, its ":" made "." (a message id's left part is a dot-atom)
    mail["Message-ID"] = f"<{_NOT_ATOM.sub('.', message_id)}@citybrain>"
    mail.set_content(message.text())
    return mail


def send_mail(settings: Settings, mail: EmailMessage) -> None:
    """One SMTP session: connect, STARTTLS, log in, send (blocking: run in a thread)."""
    timeout = settings.webhook_timeout * 2
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
        if settings.smtp_starttls:
            context = ssl.create_default_context(
                cafile=str(settings.smtp_cafile) if settings.smtp_cafile else None
            )
            smtp.starttls(context=context)
        if settings.smtp_user:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_user, password)
        smtp.send_message(mail)


def smtp_outcome(code: int, text: bytes | str) -> Outcome:
    """An SMTP answer as an outcome: 4xx retried (as a 503), 5xx rejected for good."""
    detail = f"SMTP {code}: {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    if 400 <= code < 500:
        return Outcome.http(503, detail=detail[:200])
    return Outcome.rejected(detail[:200])
