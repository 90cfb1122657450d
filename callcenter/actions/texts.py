"""Canned replies and the SMS the hotline sends, as an administrator rewrites them, per
language. A text may use only the variables its shipped version uses (the code fills
in no other); it is checked before it is saved, audited with before and after, and
announced as ``directory.changed`` so that every process reloads it: the next message
is written with it. Restoring a text removes the override."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select

from callcenter.actions import audit
from callcenter.actions.directory import directory_changed, require_admin
from callcenter.config import LOCALES
from callcenter.domain.errors import InvalidInput, NotFound
from callcenter.domain.templates import check_template, variables
from callcenter.domain.workflow import Actor
from callcenter.runtime import Runtime
from callcenter.store.tables import text_overrides


def editable_keys(rt: Runtime) -> list[str]:
    """The canned replies the desk offers, then every SMS text."""
    canned = [f"canned.{c}" for c in rt.settings.acd.canned_replies]
    texts = rt.catalog.texts[rt.catalog.default_locale]
    return canned + sorted(k for k in texts if k.startswith("notify."))


def allowed_variables(rt: Runtime, key: str) -> set[str]:
    return set().union(*(variables(rt.catalog.shipped(key, locale)) for locale in LOCALES))


async def set_texts(rt: Runtime, key: str, texts: Mapping[str, str | None], *, actor: Actor) -> int:
    """Rewrite ``key`` in the languages given (None: back to the shipped text), all in one
    transaction: both languages are checked before either is saved. Returns how many
    languages changed."""
    require_admin(actor)
    if key not in editable_keys(rt):
        raise NotFound("unknown_text", key=key)
    allowed = allowed_variables(rt, key)
    wanted: dict[str, str | None] = {}
    for locale, text in texts.items():
        if locale not in LOCALES:
            raise InvalidInput("invalid_choice", field="locale", choices=", ".join(LOCALES))
        if text is not None:
            text = check_template(text.replace("\r\n", "\n"), allowed)
            if text == rt.catalog.shipped(key, locale):
                text = None
        wanted[locale] = text
    changed = 0
    async with rt.transaction() as tx:
        for locale, text in wanted.items():
            shipped = rt.catalog.shipped(key, locale)
            row = (
                await tx.execute(
                    select(text_overrides).where(
                        text_overrides.c.key == key, text_overrides.c.locale == locale
                    )
                )
            ).first()
            before = row.body if row is not None else shipped
            if (text or shipped) == before:
                continue
            await tx.execute(
                delete(text_overrides).where(
                    text_overrides.c.key == key, text_overrides.c.locale == locale
                )
            )
            if text is not None:
                await tx.execute(
                    text_overrides.insert().values(
                        key=key, locale=locale, body=text, updated_at=tx.state["now"]
                    )
                )
            await audit.record(
                tx,
                actor=actor,
                entity_type="text",
                entity_id=None,
                action="text.update",
                before={"text": before},
                after={"text": text or shipped, "restored": text is None},
                details={"key": key, "locale": locale},
            )
            changed += 1
        if changed:
            await directory_changed(tx)
    if changed:
        await rt.reload_directory()
    return changed
