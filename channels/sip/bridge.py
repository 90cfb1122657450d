"""Agents' legs and the bridge between a caller and the agent who took the call.

The agent's softphone (the desk, through Janus's SIP plugin) calls the hotline's
own SIP port at ``sip:agent-<conversation>-<agent>-<signature>@<host>:<port>``
(:func:`callcenter.actions.calls.leg_user`). That INVITE is not a caller: the
adapter answers it as an *agent leg* and parks it here; the caller's thread,
which the IVR told to bridge, takes it and copies audio both ways, 20 ms at a
time, until one side hangs up. Both legs are G.711 on pyVoIP, so the bridge is
two reads and two writes, no transcoding of note. A supervisor's *listen* leg
(``sip:listen-…``) gets both sides mixed and is not heard. See ``docs/calls.md``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .stack import CallAudio


@dataclass
class AgentLeg:
    conversation_id: int
    agent_id: int
    audio: CallAudio
    done: threading.Event = field(default_factory=threading.Event)  # the bridge let go
    listener: bool = False  # a supervisor listening in: hears both sides, is not heard


class AgentLegs:
    """Agent legs waiting to be bridged, one per conversation (thread-safe)."""

    def __init__(self) -> None:
        self._legs: dict[int, AgentLeg] = {}
        self._listeners: dict[int, list[AgentLeg]] = {}
        self._changed = threading.Condition()

    def arrive(self, leg: AgentLeg) -> None:
        """An agent's leg was answered: the caller's thread may take it."""
        with self._changed:
            if leg.listener:
                self._listeners.setdefault(leg.conversation_id, []).append(leg)
                return
            old = self._legs.get(leg.conversation_id)
            if old is not None:
                old.done.set()  # a second leg (the page reconnected) replaces the first
            self._legs[leg.conversation_id] = leg
            self._changed.notify_all()

    def take(self, conversation_id: int, agent_id: int, timeout: float) -> AgentLeg | None:
        """The leg of ``agent_id`` for this conversation, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                leg = self._legs.get(conversation_id)
                if leg is not None and leg.agent_id == agent_id and not leg.audio.ended:
                    return leg
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(min(left, 0.2))

    def listeners(self, conversation_id: int) -> list[AgentLeg]:
        """Who listens in on this conversation's call now."""
        with self._changed:
            return [leg for leg in self._listeners.get(conversation_id, []) if not leg.audio.ended]

    def leave(self, leg: AgentLeg) -> None:
        with self._changed:
            if self._legs.get(leg.conversation_id) is leg:
                del self._legs[leg.conversation_id]
            listening = self._listeners.get(leg.conversation_id, [])
            if leg in listening:
                listening.remove(leg)
                if not listening:
                    del self._listeners[leg.conversation_id]
        leg.done.set()

    def __len__(self) -> int:
        with self._changed:
            return len(self._legs)
