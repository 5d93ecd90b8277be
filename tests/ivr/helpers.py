"""Shared helpers for the IVR tests: tiny prompt files, flow loading, a fake call driving a Session."""

from __future__ import annotations

import textwrap
import wave
from dataclasses import dataclass, field
from pathlib import Path

from ivr.engine import Session
from ivr.events import Command, InputTaken, IvrEvent
from ivr.flow import FlowSet, PromptName
from ivr.loader import load_flow_text
from ivr.record import InputRecord


def write_prompt(folder: Path, name: str, *, seconds: float = 0.5, rate: int = 8000, channels: int = 1) -> Path:
    """A silent WAV prompt (8 kHz mono 16-bit unless told otherwise)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * channels * int(seconds * rate))
    return path


def flows(text: str, **kwargs: object) -> FlowSet:
    return load_flow_text(textwrap.dedent(text), "test.yaml", **kwargs)  # type: ignore[arg-type]


@dataclass
class FakeCall:
    """Plays the channel's part for a core session: keeps every command, steps time by hand.

    The caller's answers (``InputTaken``) are kept apart in ``inputs`` and left out of what the steps return, so
    the tests of the flow read as the prompts and exits they check; tests of the answers read ``inputs``."""

    session: Session
    now: float = 0.0
    commands: list[Command] = field(default_factory=list)
    inputs: list[InputRecord] = field(default_factory=list)

    def _kept(self, out: list[Command]) -> list[Command]:
        self.commands.extend(out)
        self.inputs.extend(c.record for c in out if isinstance(c, InputTaken))
        return [c for c in out if not isinstance(c, InputTaken)]

    def start(self) -> list[Command]:
        return self._kept(self.session.start(self.now))

    def send(self, event: IvrEvent, *, after: float = 0.0) -> list[Command]:
        self.now += after
        return self._kept(self.session.handle(event, self.now))

    def expire(self) -> list[Command]:
        """Jump to the session's timer and fire it."""
        timer = self.session.get_timer()
        assert timer is not None, "no timer armed"
        self.now = max(self.now, timer)
        return self._kept(self.session.handle_timer(self.now))


def names(*prompts: str) -> tuple[PromptName, ...]:
    return tuple(PromptName(p) for p in prompts)
