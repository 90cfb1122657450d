"""STOP and START: a number that opts out gets no survey or reminder until it opts in.

Messages a person asked for or needs (answers to what they wrote, notices about
their own ticket) still go; surveys and reminders (non-essential) do not. The
reply confirms either way, in the sender's language.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete

from callcenter.actions import audit
from callcenter.actions.messages import queue_outbound
from callcenter.domain.workflow import SYSTEM
from callcenter.runtime import Runtime
from callcenter.store.db import Tx
from callcenter.store.queries import insert_ignore
from callcenter.store.tables import opt_outs

_EDGES = re.compile(r"^[\s\W_]+|[\s\W_]+$")


def is_keyword(body: str, words: list[str]) -> bool:
    """The whole text, give or take case and punctuation, is one of ``words``."""
    text = _EDGES.sub("", body).upper()
    return text in {w.upper() for w in words}


async def handle_keywords(
    tx: Tx, rt: Runtime, channel: str, address: str, conversation: Any, body: str
) -> bool:
    settings = rt.settings.notify
    now = tx.state["now"]
    if is_keyword(body, settings.stop_words):
        await insert_ignore(
            tx,
            opt_outs,
            {"channel": channel, "address": address, "created_at": now},
            conflict=("channel", "address"),
        )
        action, reply = "opt_out", "notify.opted_out"
    elif is_keyword(body, settings.start_words):
        await tx.execute(
            delete(opt_outs).where(opt_outs.c.channel == channel, opt_outs.c.address == address)
        )
        action, reply = "opt_in", "notify.opted_in"
    else:
        return False
    await audit.record(
        tx,
        actor=SYSTEM,
        entity_type="conversation",
        entity_id=conversation.id,
        action=f"citizen.{action}",
        after={"channel": channel, "address": address},
    )
    text = rt.text(reply, conversation.locale, hotline=rt.settings.hotline_number)
    await queue_outbound(tx, rt, conversation, text, actor=SYSTEM, kind="auto_reply")
    return True
