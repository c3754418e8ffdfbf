"""The user's own instruments: the store, the fit in a child process and the window's "New instrument" flow."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QMimeData, QPoint, Qt, QUrl
from PyQt6.QtGui import QDropEvent

from sing_app.custom_instruments import (
    CustomInstrument,
    CustomInstrumentStore,
    InstrumentFileError,
    model_fingerprint,
    read_instrument,
)
from sing_app.fit_process import FitEvent, FitProcess
from sing_app.main_window import MainWindow
from sing_app.widgets.custom_instruments_view_model import CustomInstrumentsViewModel
from sing_app.widgets.settings_dialog import AudioMidiSettings
from synth_core.engine import SineSource
from synth_core.sing import InstrumentInfo
from tests.test_training import write_pack

TABLE = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
FP = model_fingerprint(TABLE)
VEC = np.random.default_rng(7).standard_normal(16).astype(np.float32)


def vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(16).astype(np.float32)


# ---------------------------------------------------------------- the store


def test_store_keeps_renames_removes_exports_and_imports(tmp_path):
    store = CustomInstrumentStore(tmp_path / "insts")
    assert store.for_model(FP) == []
    store.add(CustomInstrument("My Cello", vec(1), FP, created=1.0))
    store.add(CustomInstrument("Pad", vec(2), FP, created=2.0))
    store.add(CustomInstrument("Other model", vec(3), "0" * 16))
    assert [i.name for i in store.for_model(FP)] == ["My Cello", "Pad"]
    np.testing.assert_array_equal(store.for_model(FP)[0].vector, vec(1))
    with pytest.raises(InstrumentFileError, match="exists already"):
        store.add(CustomInstrument("my cello", vec(4), FP))
    with pytest.raises(InstrumentFileError, match="exists already"):
        store.add(CustomInstrument("Piano", vec(4), FP), taken={"piano"})
    with pytest.raises(InstrumentFileError, match="needs a name"):
        store.add(CustomInstrument("   ", vec(4), FP))
    store.rename("My Cello", "Cello 2", FP)
    with pytest.raises(InstrumentFileError, match="exists already"):
        store.rename("Cello 2", "pad", FP)
    assert [i.name for i in store.for_model(FP)] == ["Cello 2", "Pad"]
    out = store.export("Pad", FP, tmp_path / "shared" / "pad.nsinst")
    store.remove("Pad", FP)
    assert [i.name for i in store.for_model(FP)] == ["Cello 2"]
    got = store.import_file(out, FP, 16)
    assert got.name == "Pad" and [i.name for i in store.for_model(FP)] == ["Cello 2", "Pad"]
    with pytest.raises(InstrumentFileError, match="exists already"):
        store.import_file(out, FP, 16)
    with pytest.raises(InstrumentFileError, match="another model"):
        store.import_file(out, "1" * 16, 16)
    with pytest.raises(InstrumentFileError, match="vector of 16 numbers"):
        store.import_file(out, FP, 8)
    assert not list((tmp_path / "insts").glob("*.tmp")) and not list((tmp_path / "insts").glob(".*"))


def instrument_json(**changes) -> bytes:
    return json.dumps({"format": "neurosynth-instrument", "version": 1, "name": "x", "vector": [1], "model": FP,
                       **changes}).encode()  # fmt: skip


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"\xff\xfe", json.dumps({"format": "other"}).encode(), instrument_json(vector=[1, "a"]),
     instrument_json(vector=[1, None]), instrument_json(version=99), instrument_json(name=""),
     instrument_json(gain_db="loud"), instrument_json(gain_db=1e9)],
)  # fmt: skip
def test_damaged_instrument_files_are_reported_and_skipped(tmp_path, content):
    store = CustomInstrumentStore(tmp_path)
    store.add(CustomInstrument("Good", vec(1), FP))
    (tmp_path / "bad.nsinst").write_bytes(content)
    assert [i.name for i in store.for_model(FP)] == ["Good"]
    assert len(store.problems) == 1 and "bad.nsinst" in store.problems[0]
    with pytest.raises(InstrumentFileError):
        store.import_file(tmp_path / "bad.nsinst", FP, 16)


# ---------------------------------------------------------------- the fit in a child process


def wait_for(job, seconds: float = 120.0) -> list[FitEvent]:
    events: list[FitEvent] = []
    end = time.monotonic() + seconds
    while not job.finished and time.monotonic() < end:
        events += job.poll()
        time.sleep(0.05)
    return events


def test_fit_process_returns_a_vector_and_reports_failures(tiny_checkpoint, tmp_path):
    samples = write_pack(tmp_path / "s", instruments=(("x", 5),), pitches=(50, 62))
    job = FitProcess(tiny_checkpoint, [samples], "Mine", steps=3)
    job.start()
    events = wait_for(job)
    assert [e.kind for e in events][-1] == "done", events[-3:]
    assert any(e.kind == "progress" and 0 < e.fraction <= 1 for e in events)
    report = events[-1].report
    assert report["instrument"] == "Mine" and len(report["vector"]) == 16 and np.all(np.isfinite(report["vector"]))
    level = report["level"]  # measured against its nearest instrument of the model
    assert level["nearest_name"] in ("sine", "square") and np.isfinite(level["gain_db"])
    assert level["gain_db"] == pytest.approx(level["target_db"] - level["level_db"], abs=1e-3)
    assert sorted(n["pitch"] for n in report["notes"]) == [50, 62]
    bad = FitProcess(tiny_checkpoint, [tmp_path / "missing.wav"], "Mine", steps=3)
    bad.start()
    events = wait_for(bad)
    assert events[-1].kind == "error" and "no usable notes" in events[-1].message


def test_a_cancelled_fit_process_stops_at_once(tiny_checkpoint, tmp_path):
    samples = write_pack(tmp_path / "s", instruments=(("x", 5),), pitches=(50, 62))
    job = FitProcess(tiny_checkpoint, [samples], "Mine", steps=10_000)
    job.start()
    job.cancel()
    assert job.finished and not job._proc.is_alive() and not job.running


# ---------------------------------------------------------------- the window


class FakeJob:
    """A fit that reports progress, then finishes with ``vector`` (or never, when ``vector`` is None)."""

    def __init__(self, name: str, vector):
        self.name, self.vector = name, vector
        self.started = self.cancelled = False
        self.polls = 0

    def start(self) -> None:
        self.started = True

    def poll(self) -> list[FitEvent]:
        self.polls += 1
        if self.vector is None or self.polls < 2:
            return [FitEvent("progress", 0.5, "start 1/3: step 5")]
        level = {"nearest": 1, "level_db": -40.0, "target_db": -34.0, "gain_db": 6.0, "nearest_name": "sine1"}
        report = {"instrument": self.name, "vector": list(self.vector), "loss": 1.0, "level": level}
        return [FitEvent("done", 1.0, report=report)]

    def cancel(self) -> None:
        self.cancelled = True


def make_window(qtbot, folder: Path, vector: np.ndarray | None = VEC, jobs: list | None = None) -> MainWindow:
    source = SineSource(n_instruments=4)
    source.instrument_table = TABLE.copy()
    source.checkpoint_path = Path("model.pt")
    jobs = [] if jobs is None else jobs

    def start_fit(checkpoint, files, name):
        jobs.append(FakeJob(name, vector))
        jobs[-1].files = files
        return jobs[-1]

    vm = CustomInstrumentsViewModel(CustomInstrumentStore(folder), start_fit=start_fit)
    win = MainWindow(source, AudioMidiSettings(audio_enabled=False), list_devices=lambda: [], list_ports=lambda: [],
                     custom_instruments=vm)  # fmt: skip
    qtbot.addWidget(win)
    win.offline.stop()
    win.display_timer.stop()
    return win


def names(win: MainWindow) -> list[str]:
    return [i.name for i in win.instruments]


def test_new_instrument_from_samples_plays_persists_and_can_be_renamed_and_removed(qtbot, tmp_path):
    folder, jobs = tmp_path / "insts", []
    win = make_window(qtbot, folder, jobs=jobs)
    win.new_instrument([tmp_path / "cello_C3.wav", tmp_path / "cello_G3.wav"])
    dialog = win.custom.dialog
    assert dialog.name.text() == tmp_path.name  # named after the samples' folder
    dialog.name.setText("SINE1")  # a name the model has
    assert not dialog.start() and "already an instrument" in dialog.status.text() and not jobs
    dialog.name.setText("My Cello")
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert jobs[0].started and jobs[0].files == [tmp_path / "cello_C3.wav", tmp_path / "cello_G3.wav"]
    dialog.timer.stop()  # polled here: another test's app.quit() can leave Qt timers idle in this process
    qtbot.waitUntil(lambda: (dialog.poll(), "My Cello" in names(win))[1], timeout=5000)
    assert not dialog.isVisible()
    i = names(win).index("My Cello")
    assert win.instruments[i].family == "custom" and i == 4
    np.testing.assert_array_equal(win.table[i], VEC)
    assert [win.morph.combos[0].itemText(k) for k in range(win.morph.combos[0].count())][-1] == "My Cello"
    win.instrument_list.select(i)
    np.testing.assert_array_equal(win.engine.instrument_vector(), VEC)
    win.shutdown()
    # a restart shows it again
    again = make_window(qtbot, folder)
    assert names(again)[-1] == "My Cello"
    again.custom.rename("My Cello", "Cello")
    assert names(again)[-1] == "Cello"
    again.custom.remove("Cello")
    assert names(again) == [f"sine{k}" for k in range(4)]
    assert not list(folder.glob("*.nsinst"))
    again.shutdown()


def test_a_new_instrument_is_selected_announced_and_leaves_the_corners_alone(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path / "insts")
    for corner, index in enumerate((3, 1, 0, 2)):  # the player's corners
        win.morph.set_corner(corner, index)
    corners = [c.currentText() for c in win.morph.combos]
    win.instrument_list.select(1)
    dialog = win.custom.new_instrument_dialog(win, [tmp_path / "a.wav"])
    dialog.name.setText("My Cello")
    assert dialog.start()
    dialog.timer.stop()
    dialog.poll()
    dialog.poll()
    i = names(win).index("My Cello")
    assert [c.currentText() for c in win.morph.combos] == corners  # not replaced by the new list
    assert win.instrument_list.current_index() == i and win.base_instrument == i  # selected: it plays now
    np.testing.assert_array_equal(win.engine.instrument_vector(), VEC)
    assert win.engine.instrument_gain() == pytest.approx(10 ** (6 / 20))  # at its nearest instrument's level
    message = win.status.currentMessage()
    assert "My Cello" in message and "selected" in message and "sine1" in message and "+6.0 dB" in message
    assert read_instrument(next((tmp_path / "insts").glob("*.nsinst"))).gain_db == 6.0  # kept for next time
    win.instrument_list.select(0)
    assert win.engine.instrument_gain() == 1.0
    win.morph.set_corner(0, i)
    win.morph.pad.set_position(0.0, 0.0)  # all the new instrument: its gain
    assert win.engine.instrument_gain() == pytest.approx(10 ** (6 / 20))
    win.morph.pad.set_position(0.5, 0.0)  # half of it, half an instrument at 1
    assert win.engine.instrument_gain() == pytest.approx((10 ** (6 / 20) + 1) / 2)
    win.shutdown()


def test_cancelling_a_fit_changes_nothing(qtbot, tmp_path):
    folder, jobs = tmp_path / "insts", []
    win = make_window(qtbot, folder, vector=None, jobs=jobs)
    before = names(win)
    dialog = win.custom.new_instrument_dialog(win, [tmp_path / "a.wav"])
    dialog.name.setText("Never")
    assert dialog.start()
    dialog.poll()
    assert dialog.progress.value() == 500 and "step 5" in dialog.status.text()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert jobs[0].cancelled and dialog.job is None and "nothing was changed" in dialog.status.text()
    assert names(win) == before and not folder.exists()
    win.shutdown()


def test_files_dropped_on_the_window_open_the_dialog(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path / "insts")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "s1.wav")), QUrl.fromLocalFile(str(tmp_path / "dir"))])
    drop = QDropEvent(win.rect().center().toPointF(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)  # fmt: skip
    win.dropEvent(drop)
    assert win.custom.dialog.paths() == [tmp_path / "s1.wav", tmp_path / "dir"]
    win.shutdown()


def test_import_export_through_the_window_and_no_fit_without_a_model_file(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path / "insts")
    shared = tmp_path / "friend.nsinst"
    CustomInstrumentStore(tmp_path / "elsewhere").add(CustomInstrument("Friend's pad", vec(9), FP))
    (next((tmp_path / "elsewhere").glob("*.nsinst"))).rename(shared)
    win.custom.import_file(shared)
    assert names(win)[-1] == "Friend's pad"
    out = win.custom.export("Friend's pad", tmp_path / "back.nsinst")
    np.testing.assert_array_equal(read_instrument(out).vector, vec(9))
    win.custom.bind(names(win)[:4], TABLE, None, "the voice synth")
    assert win.custom.fit_unavailable == "the voice synth"
    win.instrument_list.menuRequested.emit(4, QPoint(0, 0))  # the context menu builds for a custom entry
    win.shutdown()


# ---------------------------------------------------------------- the slow path: fine-tuning the whole model


def test_a_fine_tune_process_reports_its_loss_and_delivers_a_checkpoint(tiny_checkpoint, tmp_path):
    from sing_app.finetune_process import FineTuneProcess
    from synth_core.sing import load_checkpoint

    samples = write_pack(tmp_path / "s", instruments=(("x", 5),), pitches=(50, 62))
    dest = tmp_path / "models" / "mine.pt"
    job = FineTuneProcess(tiny_checkpoint, [samples], "Mine", dest, steps=10, work=tmp_path / "work")
    job.start()
    events = wait_for(job, 180)
    assert events[-1].kind == "done", events[-1].message
    assert [e.kind for e in events[:-1]] == ["progress"] * len(events[:-1]) and len(job.losses) == 2  # steps 5, 10
    assert events[-1].report["checkpoint"] == str(dest) and not (tmp_path / "work").exists()
    tuned = load_checkpoint(dest)
    assert [i.name for i in tuned.instruments] == ["sine", "square", "Mine"]
    stopped = FineTuneProcess(tiny_checkpoint, [samples], "Mine", tmp_path / "never.pt", steps=10_000,
                              work=tmp_path / "work2")  # fmt: skip
    stopped.start()
    stopped.cancel()
    assert not stopped.running and not (tmp_path / "never.pt").exists() and not (tmp_path / "work2").exists()
    bad = FineTuneProcess(tiny_checkpoint, [tmp_path / "missing.wav"], "Mine", tmp_path / "bad.pt", steps=3,
                          work=tmp_path / "work3")  # fmt: skip
    bad.start()
    events = wait_for(bad, 120)
    assert events[-1].kind == "error" and "no usable notes" in events[-1].message and not (tmp_path / "bad.pt").exists()


class FakeFineTune(FakeJob):
    def __init__(self, name, dest):
        super().__init__(name, np.zeros(16, np.float32))
        self.dest, self.losses = dest, []

    def poll(self):
        self.polls += 1
        self.losses.append((5 * self.polls, 2.0 / self.polls))
        if self.polls < 3:
            return [FitEvent("progress", self.polls / 3, f"step {5 * self.polls}")]
        return [FitEvent("done", 1.0, report={"checkpoint": str(self.dest)})]


def test_the_window_fine_tunes_with_a_live_curve_and_then_plays_the_new_model(qtbot, tmp_path, tiny_checkpoint):
    from synth_core.sing import load_checkpoint, save_checkpoint

    ck = load_checkpoint(tiny_checkpoint)
    ck.model.add_instruments(1)
    tuned = tmp_path / "tuned.pt"
    save_checkpoint(tuned, ck.model, [*ck.instruments, InstrumentInfo("Mine", "custom")])
    jobs = []

    def start_finetune(checkpoint, files, name, dest):
        jobs.append(FakeFineTune(name, tuned))
        jobs[-1].dest_asked = dest
        return jobs[-1]

    folder = tmp_path / "data" / "instruments"
    vm = CustomInstrumentsViewModel(CustomInstrumentStore(folder), start_fit=lambda *a: None,
                                    start_finetune=start_finetune)  # fmt: skip
    source = SineSource(n_instruments=4)
    source.checkpoint_path = tiny_checkpoint
    win = MainWindow(source, AudioMidiSettings(audio_enabled=False), list_devices=lambda: [], list_ports=lambda: [],
                     custom_instruments=vm)  # fmt: skip
    qtbot.addWidget(win)
    win.offline.stop()
    win.display_timer.stop()
    dialog = win.custom.new_instrument_dialog(win, [tmp_path / "a.wav"])
    dialog.name.setText("Mine")
    dialog.finetune.setChecked(True)
    assert dialog.start() and dialog.curve.isVisibleTo(dialog)
    dialog.timer.stop()
    dialog.poll()
    dialog.poll()
    assert dialog.curve.points == [(5, 2.0), (10, 1.0)] and "step 10" in dialog.status.text()
    assert jobs[0].dest_asked == tmp_path / "data" / "models" / "Mine.pt"
    dialog.poll()
    assert [i.name for i in win.instruments][:3] == ["sine", "square", "Mine"]
    assert win.source.checkpoint_path == tuned and win.instrument_list.current_index() == 2
    assert win.engine.source is win.source
    win.shutdown()


def test_the_announcement_names_the_samples_left_out_and_why(tmp_path):
    """Truncated or corrupt samples are skipped by the fit; the status bar says which and why (issue #24)."""
    vm = CustomInstrumentsViewModel(CustomInstrumentStore(tmp_path), start_fit=lambda *a: None)
    vm.bind([f"sine{k}" for k in range(4)], TABLE, "model.pt")
    skipped = [
        {
            "file": str(tmp_path / "cut_C4.wav"),
            "reason": "too short to hold a note: 8 ms of audio, at least 96 ms needed",
        },
        {"file": str(tmp_path / "bad.wav"), "reason": "unreadable: Format not recognised."},
    ]
    vm.add_from_report({"instrument": "Mine", "vector": list(VEC), "loss": 1.0, "skipped": skipped})
    message = vm.created_message("Mine")
    assert "2 files left out: cut_C4.wav (too short to hold a note: 8 ms" in message
    assert "bad.wav (unreadable: Format not recognised.)" in message
    vm.add_from_report({"instrument": "Clean", "vector": list(VEC), "loss": 1.0, "skipped": []})
    assert "left out" not in vm.created_message("Clean")
