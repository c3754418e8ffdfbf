"""MPE in the window: the toggle (kept between sessions, shown as a controller's configuration message set it,
carried over a synth switch), the morph pad's slide direction, and per-note bend and slide reaching only their note
through the window's engine."""

from __future__ import annotations

import mido
import numpy as np
import pytest
from PyQt6.QtCore import QSettings

from sing_app.widgets.mpe_view_model import SETTING, MpeViewModel, slide_direction
from sing_app.widgets.xy_pad import MorphPanel, bilinear_blend
from synth_core.dsp import midi_to_hz
from synth_core.engine import Engine, EngineConfig, SineSource
from tests.conftest import pull
from tests.test_app import make_window
from tests.test_engine_mpe import SlideRecorder, level_at, peak_hz


@pytest.fixture
def window(qtbot):
    win = make_window(qtbot)
    yield win
    win.mpe.set_on(False)  # (the choice is kept in the test's settings file)
    win.shutdown()


def test_slide_direction_leads_from_the_puck_to_the_pads_upper_and_lower_edge():
    corners = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    up, down = slide_direction(corners, 0.3, 0.6)
    here = bilinear_blend(corners, 0.3, 0.6)
    np.testing.assert_allclose(here + up, bilinear_blend(corners, 0.3, 0.0), atol=1e-6)
    np.testing.assert_allclose(here + down, bilinear_blend(corners, 0.3, 1.0), atol=1e-6)


def test_the_toggle_switches_the_engine_and_is_kept(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    morph = MorphPanel()
    qtbot.addWidget(morph)
    table = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    morph.set_instruments(["a", "b", "c", "d"], table)
    engine = Engine(SineSource(), EngineConfig())
    vm = MpeViewModel(settings, morph, engine)
    assert not vm.on and not engine.mpe
    vm.action.trigger()
    assert engine.mpe_zones == (15, 0) and settings.value(SETTING, type=bool)
    assert MpeViewModel(settings, morph, Engine(SineSource(), EngineConfig())).on  # the next session: on
    morph.pad.set_position(0.25, 0.75)
    up, down = engine.slide_direction()
    np.testing.assert_allclose(up, slide_direction(table[morph.corner_indices()], 0.25, 0.75)[0], atol=1e-6)
    engine.handle_midi(mido.Message("control_change", channel=15, control=101, value=0))  # an MCM: upper zone
    engine.handle_midi(mido.Message("control_change", channel=15, control=100, value=6))
    engine.handle_midi(mido.Message("control_change", channel=15, control=6, value=5))
    assert engine.mpe_zones == (9, 5)
    other = Engine(SineSource(), EngineConfig())
    vm.bind(other)  # a synth switch: the new engine plays the zones the controller set
    assert other.mpe_zones == (9, 5) and other.slide_direction() is not None
    vm.action.trigger()
    assert not other.mpe and not settings.value(SETTING, type=bool)
    other.set_mpe(True)  # a controller's configuration message: the toggle shows it when its menu opens
    vm.sync()
    assert vm.on


def test_the_window_plays_per_note_bend_and_slide_on_their_note_only(qtbot, window):
    assert window.mpe.menu.actions() == [window.mpe.action]
    window.mpe.action.trigger()
    engine = window.engine
    assert engine.mpe
    window.morph.pad.set_position(0.5, 0.5)
    for msg in (
        mido.Message("note_on", note=57, velocity=100, channel=1),
        mido.Message("note_on", note=62, velocity=100, channel=2),
        mido.Message("pitchwheel", pitch=round(4 / 48 * 8192), channel=1),  # note 57 -> 61
    ):
        engine.handle_midi(msg)
    y = pull(engine, 0.5)
    assert peak_hz(y, midi_to_hz(61)) == pytest.approx(midi_to_hz(61), rel=0.002)
    assert peak_hz(y, midi_to_hz(62)) == pytest.approx(midi_to_hz(62), rel=0.002)
    assert level_at(y, midi_to_hz(57)) < 0.01 * level_at(y, midi_to_hz(61))


def test_a_slide_in_the_window_moves_its_note_toward_the_pads_upper_edge(qtbot):
    source = SlideRecorder(n_instruments=4)
    win = make_window(qtbot, source)
    try:
        win.mpe.set_on(True)
        win.morph.pad.set_position(0.2, 0.7)
        engine = win.engine
        engine.handle_midi(mido.Message("note_on", note=57, velocity=100, channel=1))
        engine.handle_midi(mido.Message("note_on", note=62, velocity=100, channel=2))
        pull(engine, 0.1)
        engine.handle_midi(mido.Message("control_change", control=74, value=127, channel=2))
        pull(engine, 0.1)
        slot = next(v.ticket.slot for v in engine.voices if v.state != 0 and v.channel == 2)
        assert [s for s, _ in source.moves] == [slot]
        corners = win.morph.corner_vectors()
        np.testing.assert_allclose(source.moves[0][1], bilinear_blend(corners, 0.2, 0.0), atol=1e-5)
    finally:
        win.mpe.set_on(False)
        win.shutdown()


def test_mpe_is_off_by_default_and_the_on_screen_keys_are_not_zone_members(window):
    assert not window.engine.mpe
    window.mpe.set_on(True)
    assert window.engine.mpe_zone(0).master == 0  # the piano and computer keys play the master channel
