"""Mixer rules: exact sums on constant frames, tone presence/absence per listener."""

from __future__ import annotations

import pytest

from sip.media.errors import FrameSizeError
from sip.media.events import ParticipantId
from sip.media.frames import SILENCE_FRAME, sine_tone, split_frames
from sip.media.mixer import Mixer, MixMode, mode_rules

from .audio_helpers import const_frame, goertzel, samples

CALLER, AGENT, SUP = ParticipantId("caller"), ParticipantId("agent"), ParticipantId("sup")
TONES = {CALLER: 400.0, AGENT: 1000.0, SUP: 2200.0}
VALUES = {CALLER: 1, AGENT: 10, SUP: 100}

# Who each listener must hear, per mode (the table in docs/media-mixing.md).
EXPECTED = {
    MixMode.MONITOR: {CALLER: {AGENT}, AGENT: {CALLER}, SUP: {CALLER, AGENT}},
    MixMode.WHISPER: {CALLER: {AGENT}, AGENT: {CALLER, SUP}, SUP: {CALLER, AGENT}},
    MixMode.BARGE: {CALLER: {AGENT, SUP}, AGENT: {CALLER, SUP}, SUP: {CALLER, AGENT}},
}


def three_party(mode: MixMode) -> Mixer:
    mixer = Mixer([CALLER, AGENT, SUP])
    mixer.set_mode(mode, caller=CALLER, agent=AGENT, supervisor=SUP)
    return mixer


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_exact_sums_on_constant_frames(mode: MixMode) -> None:
    mixer = three_party(mode)
    for pid, value in VALUES.items():
        mixer.push(pid, const_frame(value))
    out = mixer.mix()
    for listener, sources in EXPECTED[mode].items():
        expected = sum(VALUES[s] for s in sources)
        assert set(samples(out[listener])) == {expected}, (mode, listener)


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_tones_present_and_absent_per_listener(mode: MixMode) -> None:
    mixer = three_party(mode)
    streams = {pid: split_frames(sine_tone(freq, 0.2, 0.3)) for pid, freq in TONES.items()}
    heard: dict[ParticipantId, bytes] = {pid: b"" for pid in TONES}
    for tick in range(10):
        for pid, frames in streams.items():
            mixer.push(pid, frames[tick])
        for listener, frame in mixer.mix().items():
            heard[listener] += frame
    for listener, sources in EXPECTED[mode].items():
        for pid, freq in TONES.items():
            level = goertzel(heard[listener], freq)
            if pid in sources:
                assert level == pytest.approx(0.3, abs=0.02), (mode, listener, pid)
            else:
                assert level < 0.005, (mode, listener, pid)


def test_bridge_two_party() -> None:
    mixer = Mixer([CALLER, AGENT])
    mixer.set_mode(MixMode.BRIDGE, caller=CALLER, agent=AGENT)
    mixer.push(CALLER, const_frame(7))
    mixer.push(AGENT, const_frame(-3))
    out = mixer.mix()
    assert set(samples(out[CALLER])) == {-3}
    assert set(samples(out[AGENT])) == {7}


def test_bridge_with_supervisor_present_hears_nothing_and_is_not_heard() -> None:
    mixer = three_party(MixMode.BRIDGE)
    for pid, value in VALUES.items():
        mixer.push(pid, const_frame(value))
    out = mixer.mix()
    assert out[SUP] == SILENCE_FRAME
    assert set(samples(out[CALLER])) == {10}
    assert set(samples(out[AGENT])) == {1}


def test_missing_frame_is_silence_and_frames_are_consumed_per_tick() -> None:
    mixer = three_party(MixMode.BARGE)
    mixer.push(CALLER, const_frame(5))
    out = mixer.mix()
    assert set(samples(out[AGENT])) == {5}
    assert out[CALLER] == SILENCE_FRAME  # hears agent + sup, both silent
    assert mixer.mix()[AGENT] == SILENCE_FRAME  # nothing pushed for this tick


def test_latest_frame_wins() -> None:
    mixer = three_party(MixMode.BARGE)
    mixer.push(CALLER, const_frame(1))
    mixer.push(CALLER, const_frame(2))
    assert set(samples(mixer.mix()[AGENT])) == {2}


def test_saturation_clips_instead_of_wrapping() -> None:
    mixer = three_party(MixMode.BARGE)
    mixer.push(CALLER, const_frame(30000))
    mixer.push(AGENT, const_frame(30000))
    mixer.push(SUP, const_frame(-30000))
    out = mixer.mix()
    assert set(samples(out[SUP])) == {32767}
    # caller hears agent + sup = 0 exactly; agent hears caller + sup = 0
    assert set(samples(out[CALLER])) == {0}


def test_mode_change_on_live_mixer_keeps_queued_frames() -> None:
    mixer = three_party(MixMode.MONITOR)
    for pid, value in VALUES.items():
        mixer.push(pid, const_frame(value))
    mixer.set_mode(MixMode.BARGE, caller=CALLER, agent=AGENT, supervisor=SUP)
    out = mixer.mix()
    assert set(samples(out[CALLER])) == {110}
    mixer.set_mode(MixMode.WHISPER, caller=CALLER, agent=AGENT, supervisor=SUP)
    for pid, value in VALUES.items():
        mixer.push(pid, const_frame(value))
    out = mixer.mix()
    assert set(samples(out[CALLER])) == {10}
    assert set(samples(out[AGENT])) == {101}


def test_listener_never_hears_itself() -> None:
    mixer = Mixer([CALLER, AGENT])
    mixer.set_hears(CALLER, [CALLER, AGENT])
    assert mixer.hears(CALLER) == {AGENT}


def test_remove_participant_drops_it_from_rules() -> None:
    mixer = three_party(MixMode.BARGE)
    mixer.remove(SUP)
    assert mixer.hears(CALLER) == {AGENT}
    assert mixer.participants == (CALLER, AGENT)
    mixer.remove(SUP)  # idempotent


def test_errors() -> None:
    mixer = Mixer([CALLER])
    with pytest.raises(ValueError):
        mixer.add(CALLER)
    with pytest.raises(KeyError):
        mixer.set_hears(CALLER, [AGENT])
    with pytest.raises(KeyError):
        mixer.push(AGENT, SILENCE_FRAME)
    with pytest.raises(FrameSizeError):
        mixer.push(CALLER, b"\0" * 10)
    with pytest.raises(ValueError):
        mode_rules(MixMode.MONITOR, caller=CALLER, agent=AGENT)
    with pytest.raises(ValueError):
        mode_rules(MixMode.BARGE, caller=CALLER, agent=CALLER, supervisor=SUP)
    with pytest.raises(KeyError):
        mixer.set_mode(MixMode.BRIDGE, caller=CALLER, agent=AGENT)
    assert mixer.hears(CALLER) == frozenset()  # failed set_mode changed nothing
