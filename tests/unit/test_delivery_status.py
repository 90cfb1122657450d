"""Delivery statuses move forward only, per provider message (callcenter.domain.delivery)."""

from __future__ import annotations

import pytest

from callcenter.domain.delivery import advances


def test_forward_only_for_the_same_provider_message() -> None:
    assert advances("queued", None, "sent", "SM1")
    assert advances("sent", "SM1", "delivered", "SM1")
    assert not advances("delivered", "SM1", "sent", "SM1")
    assert not advances("sent", "SM1", "sent", "SM1")
    assert not advances("delivered", "SM1", "failed", "SM1")  # the first final status wins
    assert not advances("undelivered", "SM1", "delivered", None)


def test_a_new_send_replaces_what_was_there() -> None:
    # a dead job requeued by hand: the message failed, then went out again
    assert advances("failed", None, "sent", "SM2")
    assert advances("undelivered", "SM1", "sent", "SM2")


def test_unknown_statuses_are_refused() -> None:
    with pytest.raises(ValueError):
        advances("queued", None, "lost", None)
