"""The voice front: IVR flows, speech-to-text and text-to-speech (see docs/ivr.md).

Calls reach the core through the same actions as every other channel.
"""
