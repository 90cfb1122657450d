"""What every voice transport needs, built once from the settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from callcenter.runtime import Runtime
from ivr.categories import category_phrases
from ivr.engine import Engine
from ivr.flow import find_flow
from ivr.stt import Recognizers
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


def build_recognizers(rt: Runtime) -> Recognizers:
    """Load the recognisers (slow: models); call it off the event loop."""
    voice = rt.settings.voice
    phrases = {locale: category_phrases(rt, locale) for locale in voice.recognizers}
    return Recognizers.build(
        voice.recognizers,
        voice.models,
        phrases,
        work_dir=voice_dir(rt, voice.cache_dir, "voice-cache"),
    )
