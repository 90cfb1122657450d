"""The end of the caller's turn: a voice-activity detector over 20 ms frames.

WebRTC's detector (``webrtcvad-wheels``) tells speech from silence and line
noise in each 20 ms frame of 8 kHz audio, far better than a loudness
threshold: a caller in a noisy street is not cut off, a quiet one is heard.
The turn has begun after ``start_s`` of speech; it is over after
``end_silence_s`` without speech once it began.
"""

from __future__ import annotations

import webrtcvad

from ivr.audio import FRAME, RATE

FRAME_BYTES = FRAME * 2  # 20 ms of 16-bit samples


class TurnDetector:
    """Feed 8 kHz 16-bit audio as it arrives; ask whether the caller spoke and has finished."""

    def __init__(
        self, *, aggressiveness: int = 2, start_s: float = 0.2, end_silence_s: float = 1.2
    ) -> None:
        self.vad = webrtcvad.Vad(aggressiveness)
        self.start_frames = max(1, round(start_s * RATE / FRAME))
        self.end_frames = max(1, round(end_silence_s * RATE / FRAME))
        self.buffer = b""
        self.run = 0  # speech frames in a row
        self.quiet = 0  # non-speech frames since the last speech frame
        self.speech_frames = 0
        self.started = False

    def feed(self, pcm: bytes) -> None:
        self.buffer += pcm
        while len(self.buffer) >= FRAME_BYTES:
            frame, self.buffer = self.buffer[:FRAME_BYTES], self.buffer[FRAME_BYTES:]
            if self.vad.is_speech(frame, RATE):
                self.run += 1
                self.quiet = 0
                self.speech_frames += 1
                if self.run >= self.start_frames:
                    self.started = True
            else:
                self.run = 0
                self.quiet += 1

    def silence(self, frames_of_time: int) -> None:
        """Time passed with no audio at all (a peer that sends nothing in silence)."""
        self.quiet += frames_of_time
        self.run = 0

    @property
    def spoke(self) -> bool:
        return self.started

    @property
    def finished(self) -> bool:
        return self.started and self.quiet >= self.end_frames

    @property
    def speech_seconds(self) -> float:
        return self.speech_frames * FRAME / RATE
