"""Widget behaviour without an engine: piano, XY morph pad, embedding/timbre faders, meter, scope, list."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QEvent, QPoint, QPointF, Qt
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QApplication

from sing_app.timbre_space import TimbreSpace
from sing_app.widgets.embedding_panel import EmbeddingPanel
from sing_app.widgets.instrument_list import InstrumentList
from sing_app.widgets.meter import LevelMeter, levels
from sing_app.widgets.piano import PianoWidget, note_name
from sing_app.widgets.scope import ScopeWidget, min_max_columns, trigger_index
from sing_app.widgets.xy_pad import MorphPanel, bilinear_blend


def table(n: int = 6, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dim)) * np.linspace(2.0, 0.2, dim)).astype(np.float32)


@pytest.fixture
def piano(qtbot):
    w = PianoWidget(lowest=48, highest=84)
    w.resize(700, 140)
    qtbot.addWidget(w)
    events = []
    w.noteOn.connect(lambda n, v: events.append(("on", n, v)))
    w.noteOff.connect(lambda n: events.append(("off", n)))
    w.events = events
    return w


def centre(piano: PianoWidget, note: int, frac_y: float = 0.5) -> QPoint:
    r = piano.key_rect(note)
    return QPoint(int(r.center().x()), int(r.top() + frac_y * r.height()))


def drag(widget, pos: QPoint) -> None:
    """A mouse move with the left button held."""
    p = QPointF(pos)
    ev = QMouseEvent(
        QEvent.Type.MouseMove,
        p,
        widget.mapToGlobal(p),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, ev)


def test_note_names():
    assert note_name(60) == "C4" and note_name(69) == "A4" and note_name(61) == "C#4"


def test_piano_mouse_press_drag_release(qtbot, piano):
    qtbot.mousePress(piano, Qt.MouseButton.LeftButton, pos=centre(piano, 60))
    assert piano.events[-1][:2] == ("on", 60)
    assert 60 in piano.active_notes()
    drag(piano, centre(piano, 61, 0.3))  # onto the black key above
    drag(piano, centre(piano, 64))
    notes = [e[:2] for e in piano.events]
    assert notes == [("on", 60), ("off", 60), ("on", 61), ("off", 61), ("on", 64)]
    qtbot.mouseRelease(piano, Qt.MouseButton.LeftButton, pos=centre(piano, 64))
    assert piano.events[-1] == ("off", 64)
    assert piano.active_notes() == set()


def test_piano_black_key_and_velocity_from_height(qtbot, piano):
    qtbot.mousePress(piano, Qt.MouseButton.LeftButton, pos=centre(piano, 61, 0.5))
    assert piano.events[-1][1] == 61
    qtbot.mouseRelease(piano, Qt.MouseButton.LeftButton, pos=centre(piano, 61, 0.5))
    qtbot.mousePress(piano, Qt.MouseButton.LeftButton, pos=centre(piano, 62, 0.1))
    soft = piano.events[-1][2]
    qtbot.mouseRelease(piano, Qt.MouseButton.LeftButton, pos=centre(piano, 62, 0.1))
    qtbot.mousePress(piano, Qt.MouseButton.LeftButton, pos=centre(piano, 62, 0.95))
    loud = piano.events[-1][2]
    assert piano.events[-1][1] == 62 and 1 <= soft < loud <= 127 and loud > 110


def test_piano_computer_keys_and_octave_shift(qtbot, piano):
    piano.set_velocity(90)
    qtbot.keyPress(piano, Qt.Key.Key_A)
    assert piano.events[-1] == ("on", 60, 90)
    qtbot.keyPress(piano, Qt.Key.Key_W)
    assert piano.events[-1] == ("on", 61, 90)
    qtbot.keyRelease(piano, Qt.Key.Key_A)
    qtbot.keyRelease(piano, Qt.Key.Key_W)
    assert ("off", 60) in piano.events and ("off", 61) in piano.events
    qtbot.keyClick(piano, Qt.Key.Key_X)  # octave up
    assert piano.base_note == 72
    qtbot.keyPress(piano, Qt.Key.Key_K)  # an octave above the base
    assert piano.events[-1] == ("on", 84, 90)
    # shifting while a key is held still releases the note that key started
    qtbot.keyClick(piano, Qt.Key.Key_Z)
    qtbot.keyClick(piano, Qt.Key.Key_Z)
    assert piano.base_note == 48
    qtbot.keyRelease(piano, Qt.Key.Key_K)
    assert piano.events[-1] == ("off", 84)
    qtbot.keyClick(piano, Qt.Key.Key_V)
    assert piano.velocity == 106
    qtbot.keyClick(piano, Qt.Key.Key_C)
    qtbot.keyClick(piano, Qt.Key.Key_C)
    assert piano.velocity == 74


def test_piano_autorepeat_does_not_retrigger(piano):
    assert piano.handle_key_press(Qt.Key.Key_D)
    assert piano.handle_key_press(Qt.Key.Key_D, autorepeat=True)
    assert [e for e in piano.events if e[0] == "on"] == [("on", 64, 100)]
    assert not piano.handle_key_press(Qt.Key.Key_Q)  # not a piano key


def test_piano_external_notes_highlight(piano):
    piano.set_external_note(67, True)
    piano.set_external_note(67, True)
    piano.set_external_note(67, False)
    assert 67 in piano.active_notes()
    piano.set_external_note(67, False)
    assert piano.active_notes() == set()
    piano.grab()  # paints without error


def test_bilinear_corners_and_centre():
    c = table(4)
    for i, (x, y) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        np.testing.assert_allclose(bilinear_blend(c, x, y), c[i], rtol=0, atol=1e-6)
    np.testing.assert_allclose(bilinear_blend(c, 0.5, 0.5), c.mean(axis=0), atol=1e-6)


def test_morph_panel_emits_corner_vectors(qtbot):
    t = table(6)
    panel = MorphPanel()
    panel.resize(320, 360)
    qtbot.addWidget(panel)
    panel.set_instruments([f"inst{i}" for i in range(6)], t, corners=[1, 2, 3, 5])
    got = []
    panel.vectorChanged.connect(got.append)
    panel.pad.set_position(0, 0)
    np.testing.assert_array_equal(got[-1], t[1])
    panel.pad.set_position(1, 1)
    np.testing.assert_array_equal(got[-1], t[5])
    panel.pad.set_position(1, 0)
    np.testing.assert_array_equal(got[-1], t[2])
    panel.pad.set_position(0.5, 0.5)
    np.testing.assert_allclose(got[-1], t[[1, 2, 3, 5]].mean(axis=0), atol=1e-6)
    panel.set_corner(0, 4)
    np.testing.assert_allclose(got[-1], t[[4, 2, 3, 5]].mean(axis=0), atol=1e-6)
    # mouse on the pad's top-left corner gives the top-left instrument
    r = panel.pad.pad_rect()
    qtbot.mouseClick(panel.pad, Qt.MouseButton.LeftButton, pos=QPoint(int(r.left()) + 1, int(r.top()) + 1))
    np.testing.assert_allclose(got[-1], t[4], atol=0.05)
    panel.grab()


def test_timbre_space_moves_along_component():
    t = table(8)
    space = TimbreSpace(t, n_components=3)
    vt = space.components
    np.testing.assert_allclose(vt @ vt.T, np.eye(3), atol=1e-9)
    v = t[2]
    c = space.coords(v)
    moved = space.move(v, 1, c[1] + 0.7)
    np.testing.assert_allclose(moved - v, 0.7 * vt[1], atol=1e-5)
    c2 = space.coords(moved)
    np.testing.assert_allclose(c2, c + np.array([0, 0.7, 0]), atol=1e-5)


def test_embedding_panel_dims_and_timbre_in_sync(qtbot):
    t = table(8)
    panel = EmbeddingPanel(t, n_timbre=3)
    qtbot.addWidget(panel)
    assert len(panel.dim_faders) == 16 and len(panel.timbre_faders) == 3
    for i, f in enumerate(panel.dim_faders):
        assert f.lo == pytest.approx(t[:, i].min()) and f.hi == pytest.approx(t[:, i].max())
    panel.set_vector(t[3])
    got = []
    panel.vectorChanged.connect(got.append)
    comp = panel.space.components[0]
    before = panel.vector()
    c0 = panel.space.coords(before)[0]
    f = panel.timbre_faders[0]
    target_pos = round((c0 + 0.5 - f.lo) / (f.hi - f.lo) * 1000)
    f.slider.setValue(target_pos)  # as if the user dragged it
    delta = got[-1].astype(np.float64) - before
    # the vector moved along the first component only
    assert np.linalg.norm(delta) > 0.1
    np.testing.assert_allclose(delta / np.linalg.norm(delta), comp * np.sign(delta @ comp), atol=1e-4)
    # per-dimension faders show the new values
    for i, fd in enumerate(panel.dim_faders):
        assert fd.value() == pytest.approx(got[-1][i], abs=1e-5)
    # moving one dimension updates the timbre readouts
    panel.dim_faders[0].slider.setValue(0)
    assert got[-1][0] == pytest.approx(t[:, 0].min(), abs=1e-5)
    np.testing.assert_allclose([tf.value() for tf in panel.timbre_faders], panel.space.coords(got[-1]), atol=1e-5)
    with pytest.raises(ValueError):
        panel.set_vector(np.zeros(3))


def test_level_meter_peak_rms_and_hold(qtbot):
    now = [0.0]
    m = LevelMeter(hold_s=1.0, fall_db_per_s=20.0, clock=lambda: now[0])
    qtbot.addWidget(m)
    x = 0.5 * np.sin(np.linspace(0, 40 * np.pi, 4800)).astype(np.float32)
    peak, rms = levels(x)
    assert peak == pytest.approx(0.5, abs=1e-3) and rms == pytest.approx(0.5 / np.sqrt(2), rel=1e-2)
    m.set_samples(x)
    assert m.peak_db == pytest.approx(-6.02, abs=0.05) and m.rms_db == pytest.approx(-9.03, abs=0.1)
    now[0] = 0.5
    m.set_samples(np.zeros(256, np.float32))
    assert m.hold_db == pytest.approx(-6.02, abs=0.05)  # held
    now[0] = 1.5
    m.set_samples(np.zeros(256, np.float32))
    assert m.hold_db == pytest.approx(-6.02 - 20.0, abs=0.1)  # falling after the hold time
    assert not m.clipped
    m.set_samples(np.ones(16, np.float32))
    assert m.clipped
    m.grab()


def test_scope_trigger_and_columns(qtbot):
    x = np.sin(np.linspace(-1.0, 40.0, 4000)).astype(np.float32)
    k = trigger_index(x, 2000)
    assert x[k - 1] <= 0 < x[k]
    lo, hi = min_max_columns(x, 100)
    assert lo.shape == (100,) and np.all(lo <= hi)
    s = ScopeWidget(window=1024)
    qtbot.addWidget(s)
    s.resize(300, 100)
    s.set_samples(x[: s.samples_needed()])
    assert len(s._data) == 1024
    s.grab()


@pytest.mark.parametrize("width", [300, 1200])  # min/max per column, and one point per sample
def test_the_scope_trace_is_drawn_where_the_samples_are(qtbot, width):
    s = ScopeWidget(window=1024)
    qtbot.addWidget(s)
    s.resize(width, 100)
    half = np.r_[np.full(512, 0.5), np.full(512, -0.25)].astype(np.float32)
    s.set_samples(half)
    img = s.grab().toImage()
    trace = np.array([[img.pixelColor(x, y).green() > 200 for x in range(width)] for y in range(100)])
    rows = np.flatnonzero(trace[:, width // 4]), np.flatnonzero(trace[:, 3 * width // 4])
    amp = 100 / 2 - 3
    assert abs(rows[0].mean() - (50 - 0.5 * amp)) <= 1.5, rows[0]
    assert abs(rows[1].mean() - (50 + 0.25 * amp)) <= 1.5, rows[1]


def test_instrument_list_filter_and_select(qtbot):
    w = InstrumentList()
    qtbot.addWidget(w)
    w.set_instruments(
        [
            ("bass_synthetic_033", "bass"),
            ("flute_acoustic_002", "flute"),
            ("keyboard_electronic_001", "keyboard"),
            ("bass_electronic_018", "bass"),
        ]
    )
    got = []
    w.instrumentSelected.connect(got.append)
    w.set_filter("bass")
    assert sorted(w.visible_indices()) == [0, 3]
    w.set_filter("FLUTE")
    assert w.visible_indices() == [1]
    assert w.select(2)  # hidden by the filter: the filter is cleared
    assert got[-1] == 2 and w.current_index() == 2
    assert not w.select(17)
