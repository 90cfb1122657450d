"""Transcripts of recordings (mediation sessions) through the configured recognisers.

The core asks for a transcript through ``rt.extras["mediation_transcriber"]``
(see ``callcenter/actions/mediation_files.py``); the composition root puts
:func:`transcriber` there, so that the core imports no speech library.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

from callcenter.runtime import Runtime
from ivr.setup import build_recognizers
from ivr.stt import Recognizers


def transcriber(rt: Runtime):  # type: ignore[no-untyped-def]
    """An async ``(wav_path, language) -> text`` that loads the recognisers once."""
    loaded: list[Recognizers] = []

    def run(path: Path, language: str) -> str | None:
        if not loaded:
            loaded.append(build_recognizers(rt))
        recognizer = loaded[0].get(language)
        if recognizer is None:
            return None
        with wave.open(str(path), "rb") as source:
            pcm = source.readframes(source.getnframes())
        return recognizer.transcribe(pcm).text

    async def transcribe(path: Path, language: str) -> str | None:
        return await asyncio.to_thread(run, path, language)

    return transcribe
