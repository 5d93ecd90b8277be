"""Player pacing with time stepped by hand; stop and barge-in; tones and sequences."""

from __future__ import annotations

import pytest

from sip.media.events import PlaybackFinished, PlaybackStopped, StopReason
from sip.media.frames import FRAME_BYTES, FRAME_SECONDS, SILENCE_FRAME, FrameClock, sine_tone, split_frames
from sip.media.player import Player, PlayerState, PlayItem, Prompt, Silence, Tone

from .audio_helpers import const_frame, goertzel

START = 1000.0


def numbered_prompt(count: int) -> Prompt:
    """A prompt whose frame i is filled with the value i + 1, to check order exactly."""
    return Prompt(name="numbers", pcm=b"".join(const_frame(i + 1) for i in range(count)))


def test_frames_due_exactly_on_schedule() -> None:
    player = Player()
    player.play([numbered_prompt(5)], START)
    assert player.get_timer() == START
    sent = []
    for k in range(5):
        timer = player.get_timer()
        assert timer is not None and timer == pytest.approx(START + k * FRAME_SECONDS, abs=1e-9)
        assert player.handle_timer(timer - 0.001) == []  # not yet due
        frames = player.handle_timer(timer)
        assert [f.index for f in frames] == [k]
        sent.extend(frames)
    assert [f.pcm for f in sent] == [const_frame(i + 1) for i in range(5)]
    assert player.next_event() is None
    end = START + 5 * FRAME_SECONDS
    assert player.get_timer() == pytest.approx(end)
    assert player.handle_timer(end) == []
    event = player.next_event()
    assert event == PlaybackFinished(at=end, frames_played=5, frames_skipped=0)
    assert player.state is PlayerState.FINISHED
    assert player.get_timer() is None


def test_schedule_is_anchored_no_drift_when_driver_is_slightly_late() -> None:
    player = Player()
    player.play([numbered_prompt(100)], START)
    for k in range(100):
        # The driver always wakes 7 ms late; due times must not accumulate that lateness.
        frames = player.handle_timer(START + k * FRAME_SECONDS + 0.007)
        assert [f.index for f in frames] == [k]
        assert frames[0].due == pytest.approx(START + k * FRAME_SECONDS)
    assert player.get_timer() == pytest.approx(START + 100 * FRAME_SECONDS)


def test_late_loop_catches_up_within_burst() -> None:
    player = Player(max_burst=3)
    player.play([numbered_prompt(10)], START)
    player.handle_timer(START)
    frames = player.handle_timer(START + 3 * FRAME_SECONDS)  # frames 1, 2, 3 overdue
    assert [f.index for f in frames] == [1, 2, 3]


def test_late_loop_beyond_burst_skips_oldest_frames() -> None:
    player = Player(max_burst=3)
    player.play([numbered_prompt(10)], START)
    player.handle_timer(START)
    frames = player.handle_timer(START + 6 * FRAME_SECONDS + 0.005)  # frames 1..6 overdue
    assert [f.index for f in frames] == [4, 5, 6]
    assert [f.pcm for f in frames] == [const_frame(5), const_frame(6), const_frame(7)]
    assert player.get_timer() == pytest.approx(START + 7 * FRAME_SECONDS)  # schedule unchanged
    now = START + 10 * FRAME_SECONDS
    assert [f.index for f in player.handle_timer(now)] == [7, 8, 9]
    assert player.next_event() == PlaybackFinished(at=now, frames_played=7, frames_skipped=3)


def test_stop_on_barge_in_returns_at_once() -> None:
    player = Player()
    player.play([numbered_prompt(50)], START)
    player.handle_timer(START + 2 * FRAME_SECONDS)
    assert player.handle_dtmf("5", START + 0.05) is True
    assert player.get_timer() is None
    assert player.handle_timer(START + 1.0) == []
    assert player.next_event() == PlaybackStopped(
        at=START + 0.05, reason=StopReason.BARGE_IN, frames_played=3, frames_skipped=0, digit="5"
    )
    assert player.next_event() is None


def test_no_barge_in_when_disabled_but_stop_works() -> None:
    player = Player()
    player.play([numbered_prompt(50)], START, barge_in=False)
    assert player.handle_dtmf("1", START) is False
    player.stop(START + 0.01)
    event = player.next_event()
    assert isinstance(event, PlaybackStopped) and event.reason is StopReason.REQUESTED
    player.stop(START + 0.02)  # already stopped: no second event
    assert player.next_event() is None


def test_play_replaces_running_playback() -> None:
    player = Player()
    player.play([numbered_prompt(50)], START)
    player.play([numbered_prompt(2)], START + 0.1)
    event = player.next_event()
    assert isinstance(event, PlaybackStopped) and event.reason is StopReason.REPLACED
    assert player.get_timer() == START + 0.1


def test_sequence_of_tone_silence_prompt() -> None:
    player = Player()
    items: list[PlayItem] = [Tone(frequency=440, duration=0.1), Silence(duration=0.05), numbered_prompt(2)]
    player.play(items, 0.0)
    assert player.total_frames == 5 + 3 + 2  # 0.05 s silence = 2.5 frames, padded to 3
    frames = []
    now = 0.0
    while (timer := player.get_timer()) is not None:
        now = timer
        frames.extend(player.handle_timer(now))
    pcm = [f.pcm for f in frames]
    assert all(len(p) == FRAME_BYTES for p in pcm)
    assert goertzel(b"".join(pcm[:5]), 440) == pytest.approx(0.5, abs=0.02)
    assert pcm[5:8] == [SILENCE_FRAME] * 3
    assert pcm[8:] == [const_frame(1), const_frame(2)]
    assert isinstance(player.next_event(), PlaybackFinished)
    assert now == pytest.approx(10 * FRAME_SECONDS)


def test_empty_playback_finishes_immediately() -> None:
    player = Player()
    player.play([], 5.0)
    assert player.get_timer() == 5.0
    assert player.handle_timer(5.0) == []
    assert player.next_event() == PlaybackFinished(at=5.0, frames_played=0, frames_skipped=0)


def test_tone_is_continuous_and_validated() -> None:
    tone = sine_tone(1000, 0.2, 0.25)
    assert len(tone) == 1600 * 2
    assert goertzel(tone, 1000) == pytest.approx(0.25, abs=0.01)
    assert goertzel(tone, 400) < 0.005
    with pytest.raises(ValueError):
        sine_tone(5000, 0.1)
    with pytest.raises(ValueError):
        sine_tone(440, 0.1, 1.5)


def test_split_frames_pads() -> None:
    frames = split_frames(b"\x01\x00" * 170)
    assert len(frames) == 2 and frames[1][20:] == bytes(FRAME_BYTES - 20)


def test_frame_clock_float_edges() -> None:
    clock = FrameClock(start=0.0, max_burst=100)
    assert list(clock.due(3 * FRAME_SECONDS)) == [0, 1, 2, 3]  # 3 * 0.02 is not exactly 0.06
    assert list(clock.due(3 * FRAME_SECONDS)) == []


def test_bad_digit_and_burst() -> None:
    with pytest.raises(ValueError):
        Player(max_burst=0)
    with pytest.raises(ValueError):
        Player().handle_dtmf("x", 0.0)
