"""Staff accounts as an administrator keeps them, on SQLite and PostgreSQL: create with a
password or a one-time link, the password policy, deactivation ending sessions at once,
reset, sign-out everywhere, and each step in the audit trail."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from callcenter.actions import accounts
from callcenter.actions.operations import operator
from callcenter.actions.staff import find_session, log_in
from callcenter.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from callcenter.runtime import Runtime
from callcenter.staffviews import account_events, list_staff, open_sessions
from callcenter.store.tables import audit_events, users
from tests.helpers import actor

GOOD = "湖畔 路灯 三只猫 晚安"


async def _count_users(rt: Runtime) -> int:
    async with rt.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(users)))


async def test_first_admin_from_the_command_line(rt: Runtime) -> None:
    cli = operator("root")
    made = await accounts.create_staff(
        rt,
        {"username": "zhang.wei", "display_name": "张伟", "role": "admin"},
        actor=cli,
        password=GOOD,
    )
    assert made.link is None
    session = await log_in(rt, "zhang.wei", GOOD)
    assert session.actor.role.value == "admin"
    async with rt.db.read() as conn:
        row = next(r for r in await list_staff(conn) if r["username"] == "zhang.wei")
        events = await account_events(conn, user_id=made.user_id)
    assert row["last_login_at"] == rt.clock.now() and row["has_password"]
    assert [e.action for e in events][::-1] == ["user.create", "user.login"]
    assert events[-1].actor_name == "root (command line)"


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [
        ("agent1", GOOD, "duplicate_username"),
        ("AGENT1", GOOD, "duplicate_username"),
        ("new.one", "password1", "password_too_short"),
        ("new.one", "Password2024!", "password_common"),
        ("new one", GOOD, "invalid_username"),
    ],
)
async def test_bad_input_changes_nothing(
    rt: Runtime, username: str, password: str, code: str
) -> None:
    before = await _count_users(rt)
    with pytest.raises((InvalidInput, Conflict)) as refused:
        await accounts.create_staff(
            rt,
            {"username": username, "display_name": "X", "role": "agent"},
            actor=operator(),
            password=password,
        )
    assert refused.value.code == code
    assert await _count_users(rt) == before


async def test_invitation_link_once(rt: Runtime) -> None:
    admin = await actor(rt, "admin")
    invited = await accounts.create_staff(
        rt,
        {
            "username": "li.na2",
            "display_name": "李娜",
            "role": "agent",
            "languages": ["zh-CN", "en"],
            "capacity": 3,
        },
        actor=admin,
    )
    assert invited.link is not None and "/ui/password/" in invited.link
    token = invited.link.rsplit("/", 1)[1]
    with pytest.raises(Unauthenticated):  # no password yet
        await log_in(rt, "li.na2", GOOD)
    with pytest.raises(InvalidInput):  # the policy applies here too, and the link stays good
        await accounts.set_password_from_link(rt, token, "12345678901")
    who = await accounts.set_password_from_link(rt, token, GOOD)
    assert who.name == "李娜"
    with pytest.raises(NotFound):  # good once
        await accounts.set_password_from_link(rt, token, GOOD + "!")
    assert (await log_in(rt, "li.na2", GOOD)).actor.id == invited.user_id
    async with rt.db.read() as conn:
        row = next(r for r in await list_staff(conn) if r["username"] == "li.na2")
    assert row["capacity"] == 3 and row["languages"] == ["en", "zh-CN"]


async def test_link_expires(rt: Runtime) -> None:
    admin = await actor(rt, "admin")
    invited = await accounts.create_staff(
        rt, {"username": "late", "display_name": "L", "role": "agent"}, actor=admin
    )
    assert invited.link is not None
    rt.clock.advance(hours=rt.settings.staff.link_hours + 1)  # type: ignore[attr-defined]
    assert await accounts.link_user(rt, invited.link.rsplit("/", 1)[1]) is None


async def test_deactivate_ends_sessions_at_once(rt: Runtime) -> None:
    admin = await actor(rt, "admin")
    agent = await actor(rt, "agent2")
    assert agent.id is not None
    session = await log_in(rt, "agent2", "demo12345")
    other = await log_in(rt, "agent2", "demo12345")
    assert await find_session(rt, session.token) is not None
    ended = await accounts.deactivate_staff(rt, agent.id, actor=admin)
    assert ended == 2
    assert await find_session(rt, session.token) is None
    assert await find_session(rt, other.token) is None
    with pytest.raises(Unauthenticated):
        await log_in(rt, "agent2", "demo12345")
    with pytest.raises(Conflict):
        assert admin.id is not None
        await accounts.deactivate_staff(rt, admin.id, actor=admin)
    await accounts.reactivate_staff(rt, agent.id, actor=admin)
    assert (await log_in(rt, "agent2", "demo12345")).actor.id == agent.id
    async with rt.db.read() as conn:
        actions = [
            r.action
            for r in (
                await conn.execute(
                    select(audit_events.c.action).where(
                        audit_events.c.entity_type == "user",
                        audit_events.c.entity_id == agent.id,
                    )
                )
            ).all()
        ]
    assert "user.deactivate" in actions and "user.reactivate" in actions
    assert actions.count("user.login_failed") == 1


async def test_reset_and_sign_out_everywhere(rt: Runtime) -> None:
    admin = await actor(rt, "admin")
    agent = await actor(rt, "agent1")
    assert agent.id is not None
    session = await log_in(rt, "agent1", "demo12345")
    reset = await accounts.reset_password(rt, agent.id, actor=admin)
    assert reset.link is not None
    assert await find_session(rt, session.token) is None
    with pytest.raises(Unauthenticated):  # the old password is void
        await log_in(rt, "agent1", "demo12345")
    await accounts.set_password_from_link(rt, reset.link.rsplit("/", 1)[1], GOOD)
    first = await log_in(rt, "agent1", GOOD)
    second = await log_in(rt, "agent1", GOOD)
    async with rt.db.read() as conn:
        assert len(await open_sessions(conn, rt, agent.id)) == 2
    # the owner ends one of their own sessions; another agent may not
    with pytest.raises(NotFound):
        await accounts.end_session(
            rt,
            (await find_session(rt, first.token))[1].id,
            actor=await actor(rt, "agent2"),  # type: ignore[index]
        )
    found = await find_session(rt, first.token)
    assert found is not None
    await accounts.end_session(rt, found[1].id, actor=first.actor)
    assert await find_session(rt, first.token) is None
    assert await find_session(rt, second.token) is not None
    assert await accounts.sign_out_everywhere(rt, agent.id, actor=admin) == 1
    assert await find_session(rt, second.token) is None


async def test_only_admins(rt: Runtime) -> None:
    supervisor = await actor(rt, "supervisor")
    agent = await actor(rt, "agent1")
    assert agent.id is not None
    with pytest.raises(Forbidden):
        await accounts.create_staff(
            rt, {"username": "x1", "display_name": "X", "role": "admin"}, actor=supervisor
        )
    for step in (accounts.deactivate_staff, accounts.reset_password):
        with pytest.raises(Forbidden):
            await step(rt, agent.id, actor=supervisor)
    with pytest.raises(Forbidden):
        await accounts.update_staff(rt, agent.id, {"role": "admin"}, actor=agent)


async def test_invitation_by_sms(rt: Runtime) -> None:
    from callcenter.store.tables import messages

    admin = await actor(rt, "admin")
    with pytest.raises(InvalidInput):  # no mobile number to send it to: nothing made
        await accounts.create_staff(
            rt,
            {"username": "no.phone", "display_name": "N", "role": "agent"},
            actor=admin,
            send_sms=True,
        )
    invited = await accounts.create_staff(
        rt,
        {"username": "zhao.li", "display_name": "赵丽", "role": "agent", "phone": "13900000123"},
        actor=admin,
        send_sms=True,
    )
    assert invited.link is None and invited.sent_by_sms
    async with rt.db.read() as conn:
        sent = (
            await conn.execute(
                select(messages.c.to_address, messages.c.body, messages.c.kind).where(
                    messages.c.recipient_user_id == invited.user_id
                )
            )
        ).all()
        exists = await conn.scalar(
            select(func.count()).select_from(users).where(users.c.username == "no.phone")
        )
    assert exists == 0
    assert [(m.to_address, m.kind) for m in sent] == [("+8613900000123", "staff_invitation")]
    assert "赵丽" in sent[0].body and "zhao.li" in sent[0].body and "/ui/password/" in sent[0].body
    token = sent[0].body.split("/ui/password/", 1)[1].split()[0]
    assert (await accounts.set_password_from_link(rt, token, GOOD)).id == invited.user_id


async def test_a_channel_limit_holds_for_offers_and_taking(rt: Runtime) -> None:
    from callcenter.actions import acd
    from callcenter.actions.desk import pick_conversation
    from callcenter.actions.intake import Inbound, receive_message
    from callcenter.store.tables import offers
    from tests.helpers import assign_to

    admin = await actor(rt, "admin")
    agent = await actor(rt, "agent1")
    assert agent.id is not None
    await accounts.update_staff(
        rt,
        agent.id,
        {"role": "agent", "capacity": 3, "channel_capacity": {"sms": "1"}},
        actor=admin,
    )
    first = await receive_message(
        rt, Inbound("sms", "phone", "+8613800000301", "你好，请问怎么办居住证")
    )
    second = await receive_message(
        rt, Inbound("sms", "phone", "+8613800000302", "你好，请问怎么办居住证")
    )
    assert first.conversation_state == second.conversation_state == "queued"
    await assign_to(rt, first.conversation_id, "agent1")
    await acd.distribute(rt)
    async with rt.db.read() as conn:
        offered = (
            await conn.execute(
                select(offers.c.id).where(
                    offers.c.conversation_id == second.conversation_id, offers.c.state == "pending"
                )
            )
        ).all()
    assert offered == []  # room for three, but only one SMS at a time
    with pytest.raises(Conflict) as full:
        await pick_conversation(rt, second.conversation_id, actor=agent)
    assert full.value.code == "at_capacity"
