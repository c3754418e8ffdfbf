"""The sustain pedal (CC64, per channel) and all-notes-off (CC123), which lifts it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine_helpers import (
    SR,
    cc,
    engine,
    fading,
    held,
    live,
    off,
    on,
    pedal,
    play,
    rms,
    seg,
    sounding,
    two_channels,
)


def test_sustain_pedal_holds_released_notes():
    y = engine().render_offline(
        [(0, cc(64, 127)), (0, on(69)), (SR // 4, off(69)), (SR, cc(64, 0))],
        2 * SR,
    )
    assert rms(seg(y, 0.7, 1.0)) > 0.05  # still sounding after note-off
    assert np.all(seg(y, 1.35, 2.0) == 0)  # released with the pedal


@pytest.mark.parametrize(("value", "holds"), [(63, False), (64, True)])
def test_the_pedal_is_down_from_64(value, holds):
    e = live()
    play(e, on(60), cc(64, value), off(60), blocks=1)
    assert (fading(e) == []) == holds


def test_pedal_up_while_the_key_is_still_held_keeps_the_note():
    e = live(release_s=0.05)
    play(e, pedal(True), on(60))
    play(e, pedal(False))
    assert held(e) == [(0, 60)]
    play(e, off(60))
    assert held(e) == [] and fading(e) == [(0, 60)]


def test_a_pedal_on_another_channel_does_not_hold_this_one():
    e = live(release_s=0.05)
    play(e, pedal(True, ch=1), on(60, ch=0), on(67, ch=1))
    play(e, off(60, ch=0), off(67, ch=1))
    assert held(e) == [(1, 67)]  # sustained by its channel's pedal
    assert fading(e) == [(0, 60)]
    play(e, pedal(False, ch=1))
    assert held(e) == []


def test_the_pedal_without_a_channel_holds_every_channel():
    e = live()
    two_channels(e)
    e.set_sustain(True)
    play(e, off(60, 0), off(64, 3), blocks=1)
    assert fading(e) == [] and sounding(e) == [(0, 60), (3, 64)]
    e.set_sustain(False, 3)
    play(e, blocks=1)
    assert fading(e) == [(3, 64)]


def test_restriking_a_sustained_key_replaces_its_voice():
    e = live(release_s=0.5)
    play(e, pedal(True), on(60), off(60))
    play(e, on(60))
    assert held(e) == [(0, 60)] and fading(e) == [(0, 60)]  # the old voice fades, one new voice holds
    play(e, pedal(False))
    assert held(e) == [(0, 60)]  # the re-struck key is still down


def test_the_pedal_in_mono_mode_holds_the_line_until_released():
    e = live(mono=True, release_s=0.05)
    play(e, pedal(True), on(60), off(60))
    assert held(e) == [(0, 60)]  # sustained after the key went up
    play(e, on(62))
    assert held(e) == [(0, 62)]  # the line moves legato to the new key
    play(e, pedal(False))
    assert held(e) == [(0, 62)]  # 62 is still down
    play(e, off(62), blocks=10)
    assert held(e) == []


def test_all_notes_off_releases_sustained_notes():
    y = engine().render_offline([(0, cc(64, 127)), (0, on(69)), (0, on(72)), (SR // 4, cc(123, 0))], SR)
    assert np.all(seg(y, 0.6, 1.0) == 0)
