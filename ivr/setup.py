"""What every voice transport needs, built once from the settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from callcenter.runtime import Runtime
from ivr.categories import category_phrases
from ivr.engine import Engine
from ivr.flow import find_flow
from ivr.places import Gazetteer
from ivr.stt import Recognizers, whisper_prompt
from ivr.tts import PromptAudio


def prompt_keys(rt: Runtime) -> set[str]:
    return {key for texts in rt.catalog.texts.values() for key in texts}


def build_engine(rt: Runtime, speech_available: Callable[[str], bool]) -> Engine:
    """The configured flow, checked against the catalogs, on an engine."""
    voice = rt.settings.voice
    flow = find_flow(voice.flow, voice.flows_dir, prompt_keys(rt))
    return Engine(rt, flow, speech_available=speech_available)


def voice_dir(rt: Runtime, configured: Path | None, name: str) -> Path:
    return configured if configured is not None else Path(rt.settings.data_dir) / name


def build_prompts(rt: Runtime) -> PromptAudio:
    voice = rt.settings.voice
    return PromptAudio(
        voice_dir(rt, voice.cache_dir, "voice-cache") / "prompts",
        voice_dir(rt, voice.prompts_dir, "prompts"),
    )


def place_names(rt: Runtime, locale: str) -> list[str]:
    """The city's road and community names in one language (for prompts, hints): the
    streets' address keywords first, then the names."""
    chinese = locale.startswith("zh")
    names: list[str] = []
    for dept in rt.directory.departments:
        if not dept.is_area or dept.kind == "city":
            continue
        if dept.kind not in ("street", "community"):
            continue
        for name in (*dept.keywords, dept.name(locale)):
            if name and (any("\u4e00" <= ch <= "\u9fff" for ch in name) == chinese):
                names.append(name)
    return sorted(set(names), key=names.index)


def build_recognizers(rt: Runtime) -> Recognizers:
    """Load the recognisers (slow: models); call it off the event loop."""
    voice = rt.settings.voice
    phrases = {locale: category_phrases(rt, locale) for locale in voice.recognizers}
    prompts = {
        locale: whisper_prompt(
            locale, place_names(rt, locale), [c.name(locale) for c in rt.directory.categories]
        )
        for locale in voice.recognizers
    }
    extra: dict[str, list[str]] = {}
    for per_node in voice.node_recognizers.values():
        for locale, backend in per_node.items():
            extra.setdefault(locale, []).append(backend)
    return Recognizers.build(
        voice.recognizers,
        voice.models,
        phrases,
        work_dir=voice_dir(rt, voice.cache_dir, "voice-cache"),
        whisper_model=voice.whisper_model,
        whisper_prompts=prompts,
        whisper_threads=voice.whisper_threads,
        whisper_workers=voice.whisper_workers,
        extra=extra,
    )


def build_gazetteer(rt: Runtime) -> Gazetteer:
    return Gazetteer(rt.directory.departments)
