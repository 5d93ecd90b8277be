"""Shared helpers for the IVR tests: tiny prompt files, flow loading, a fake call driving a Session."""

from __future__ import annotations

import textwrap
import wave
from dataclasses import dataclass, field
from pathlib import Path

from ivr.engine import Session
from ivr.events import Command, IvrEvent
from ivr.flow import FlowSet, PromptName
from ivr.loader import load_flow_text


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
    """Plays the channel's part for a core session: keeps every command, steps time by hand."""

    session: Session
    now: float = 0.0
    commands: list[Command] = field(default_factory=list)

    def start(self) -> list[Command]:
        out = self.session.start(self.now)
        self.commands.extend(out)
        return out

    def send(self, event: IvrEvent, *, after: float = 0.0) -> list[Command]:
        self.now += after
        out = self.session.handle(event, self.now)
        self.commands.extend(out)
        return out

    def expire(self) -> list[Command]:
        """Jump to the session's timer and fire it."""
        timer = self.session.get_timer()
        assert timer is not None, "no timer armed"
        self.now = max(self.now, timer)
        out = self.session.handle_timer(self.now)
        self.commands.extend(out)
        return out


def names(*prompts: str) -> tuple[PromptName, ...]:
    return tuple(PromptName(p) for p in prompts)
