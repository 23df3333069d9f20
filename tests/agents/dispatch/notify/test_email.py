"""The e-mail channel's answers (pure): a 4xx (greylisting, a full queue) is retried, a
5xx (an address or a login refused) is rejected at once; the message's id is the
delivery's, so a copy sent again is the same message to a mail client."""

from __future__ import annotations

import pytest

from citybrain.agents.dispatch.notify.email import email_message, smtp_outcome
from citybrain.dispatch.channels import MailboxEndpoint
from citybrain.dispatch.render import Rendered


@pytest.mark.parametrize(
    ("code", "status", "error_kind"),
    [
        (421, 503, None),
        (450, 503, None),
        (451, 503, None),
        (535, None, "rejected"),
        (550, None, "rejected"),
        (554, None, "rejected"),
    ],
)
def test_smtp_answers(code: int, status: int | None, error_kind: str | None) -> None:
    outcome = smtp_outcome(code, b"server says")
    assert (outcome.status, outcome.error_kind) == (status, error_kind)
    assert f"SMTP {code}" in outcome.detail


def test_the_message_id_is_the_deliverys() -> None:
    box = MailboxEndpoint("m", "fire", ("a@city.example", "b@city.example"), "zh")
    mail = email_message(
        Rendered("【新工单】烟雾火情", ("请签收",), None, "查看"), box, "cb@x", "dsp-1:created"
    )
    assert mail["Message-ID"] == "<dsp-1.created@citybrain>"
    assert mail["To"] == "a@city.example, b@city.example"
    assert "请签收" in mail.get_content()
