"""Texts in zh-CN and en.

Every text a person sees or hears comes from a catalog: the core's own
(every ``callcenter/i18n/<locale>/*.json``, one file per subsystem) and one per
adapter (``channels/<name>/strings/<locale>.json``), added at start-up.
Keys are dotted (``errors.illegal_step``); values are ``str.format`` templates.
A catalog that lacks a key in one language fails the test suite, not the user.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from callcenter.config import LOCALES

HERE = Path(__file__).parent


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Catalog:
    """All texts, per locale."""

    def __init__(self, default_locale: str = "zh-CN") -> None:
        self.default_locale = self.normalize(default_locale)
        self.texts: dict[str, dict[str, str]] = {locale: {} for locale in LOCALES}
        # the shipped text of each key an administrator rewrote, by (locale, key)
        self._shipped: dict[tuple[str, str], str] = {}

    @classmethod
    def core(cls, default_locale: str = "zh-CN") -> Catalog:
        catalog = cls(default_locale)
        for locale in LOCALES:
            for path in sorted((HERE / locale).glob("*.json")):
                catalog.add(locale, json.loads(path.read_text("utf-8")))
        return catalog

    def load_dir(self, folder: Path, prefix: str = "") -> None:
        """Add ``<folder>/<locale>.json`` for each locale, keys under ``prefix``."""
        for locale in LOCALES:
            path = folder / f"{locale}.json"
            if not path.is_file():
                raise FileNotFoundError(f"missing {locale} texts: {path}")
            self.add(locale, json.loads(path.read_text("utf-8")), prefix)

    def add(self, locale: str, texts: Mapping[str, Any], prefix: str = "") -> None:
        target = self.texts[locale]
        for key, value in _flatten(texts, prefix).items():
            target[key] = value

    @staticmethod
    def normalize(locale: str | None) -> str:
        if not locale:
            return "zh-CN"
        lowered = locale.strip().lower().replace("_", "-")
        if lowered.startswith("zh"):
            return "zh-CN"
        if lowered.startswith("en"):
            return "en"
        return "zh-CN"

    def locale_or_default(self, locale: str | None) -> str:
        return self.normalize(locale) if locale else self.default_locale

    def negotiate(self, accept_language: str | None) -> str:
        """Pick zh-CN or en from an ``Accept-Language`` header."""
        if not accept_language:
            return self.default_locale
        ranked: list[tuple[float, int, str]] = []
        for index, part in enumerate(accept_language.split(",")):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    quality = 0.0
            lowered = tag.strip().lower()
            if lowered.startswith(("zh", "en")):
                ranked.append((-quality, index, lowered))
        if not ranked:
            return self.default_locale
        return self.normalize(sorted(ranked)[0][2])

    def text(self, key: str, locale: str | None = None, /, **params: Any) -> str:
        chosen = self.locale_or_default(locale)
        template = self.texts[chosen].get(key)
        if template is None:
            template = self.texts[self.default_locale].get(key, key)
        if not params:
            return template
        return string.Formatter().vformat(template, (), _Lenient(params))

    def apply_overrides(self, overrides: Mapping[tuple[str, str], str]) -> None:
        """Texts rewritten by an administrator, by (locale, key), over the shipped ones;
        a key no longer in ``overrides`` gets its shipped text back."""
        for (locale, key), text in self._shipped.items():
            self.texts[locale][key] = text
        self._shipped = {}
        for (locale, key), text in overrides.items():
            if locale in self.texts and key in self.texts[locale]:
                self._shipped[(locale, key)] = self.texts[locale][key]
                self.texts[locale][key] = text

    def shipped(self, key: str, locale: str) -> str:
        """The text as the release ships it (whatever an administrator made of it)."""
        return self._shipped.get((locale, key), self.texts[locale].get(key, key))

    def has(self, key: str) -> bool:
        return all(key in texts for texts in self.texts.values())

    def label(self, group: str, value: str | None, locale: str | None) -> str:
        """The display name of an enumerated value, e.g. ``label("state", "new", "en")``."""
        if value is None:
            return ""
        key = f"{group}.{value}"
        return self.text(key, locale) if key in self.texts[self.default_locale] else value

    def missing(self) -> dict[str, set[str]]:
        """Keys present in one locale but not in another."""
        every = set().union(*(set(t) for t in self.texts.values()))
        return {loc: every - set(t) for loc, t in self.texts.items() if every - set(t)}


def _flatten(texts: Mapping[str, Any], prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in texts.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            out.update(_flatten(value, full))
        else:
            out[full] = str(value)
    return out
