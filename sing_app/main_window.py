"""The NeuroSynth main window: an assembly of the app's parts, wired to an Engine through its public API only.

* :class:`DeviceSession` (device_session.py): the audio output, or the offline clock without one, and the MIDI
  input with its hot-plug; :class:`SynthSources`: the synths' models, each loaded once.
* :class:`MainToolBar`, :class:`MainPanels` (the layout) and :class:`StatusBar`: widgets only.
* View models beside the widgets hold the state: the sound (:class:`SoundViewModel`), recordings, the user's
  instruments, MIDI learn, MPE; :class:`KeyboardFocus` gives the computer keys to the piano.

The window builds the engine for the synth played, connects the parts and switches synths.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import mido
import numpy as np
from PyQt6.QtCore import QCoreApplication, QEvent, Qt, QTimer
from PyQt6.QtGui import QScreen
from PyQt6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from synth_core.engine import Engine, EngineConfig
from synth_core.engine.audio_output import AudioOutput, list_output_devices
from synth_core.engine.midi_input import MidiInput, list_midi_ports

from .app_settings import app_settings
from .custom_instruments import CustomInstrumentStore, default_custom_dir, default_data_dir
from .device_session import DeviceSession, OfflineClock
from .midi_map import MidiMap
from .presets import Preset, load_preset, save_preset
from .synth_sources import SynthSources
from .synths import SING, SYNTHS, VOICE
from .widgets.custom_instruments_view_model import CustomInstrumentsViewModel
from .widgets.embedding_panel import EmbeddingPanel
from .widgets.keyboard_focus import KeyboardFocus
from .widgets.learn_targets import register_controls, register_faders
from .widgets.main_panels import MainPanels
from .widgets.main_toolbar import MainToolBar
from .widgets.midi_learn_view_model import MidiLearnViewModel
from .widgets.mpe_view_model import MpeViewModel
from .widgets.new_instrument_dialog import dropped_paths
from .widgets.piano import note_name
from .widgets.preset_dialogs import load_dialog, save_dialog
from .widgets.recorder_view_model import RecorderViewModel
from .widgets.settings_dialog import AudioMidiSettings, SettingsDialog
from .widgets.sound_view_model import Sound, SoundViewModel
from .widgets.status_bar import StatusBar
from .widgets.xy_pad import corner_weights
from .window_size import initial_size

DISPLAY_FPS = 30


class MainWindow(QMainWindow):
    """Main window around ``source``: builds and owns an Engine for the synth being played.

    ``source`` is the source of the synth ``synth`` ("sing": a SingSource or SineSource; "voice": a
    WaveRNNSource or a stand-in). The other synth comes from ``sing_factory`` / ``voice_factory`` (called
    once at start: a synth whose factory fails or is missing gets a disabled toolbar entry with the reason);
    :meth:`set_synth` switches between them with a new Engine and the same audio/MIDI settings.
    """

    def __init__(
        self,
        source,
        settings: AudioMidiSettings | None = None,
        *,
        synth: str = SING,
        sing_factory: Callable[[], object] | None = None,
        voice_factory: Callable[[], object] | None = None,
        max_voices: int | None = None,
        list_devices: Callable[[], list[dict]] = list_output_devices,
        list_ports: Callable[[], list[str]] = list_midi_ports,
        audio_factory: Callable[..., AudioOutput] = AudioOutput,
        custom_instruments: CustomInstrumentsViewModel | None = None,
        midi_map: MidiMap | None = None,
        recorder: RecorderViewModel | None = None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        if synth not in SYNTHS:
            raise ValueError(f"unknown synth {synth!r} (expected one of {', '.join(SYNTHS)})")
        self.settings = settings or AudioMidiSettings()
        self._list_devices, self._list_ports, self._audio_factory = list_devices, list_ports, audio_factory
        self.synth = synth
        self.synths = SynthSources({SING: sing_factory, VOICE: voice_factory}, {synth: source})
        self._max_voices = max_voices
        self.source = source
        self.custom = custom_instruments or CustomInstrumentsViewModel(CustomInstrumentStore(default_custom_dir()))
        self.custom.setParent(self)
        self._bind_custom()
        self.sound = SoundViewModel()
        self.sound.set_rows(*self._instrument_rows())
        self.engine = self._make_engine(source)
        self.devices = DeviceSession(self.engine, self.settings, audio_factory, self)
        self.recorder = recorder or RecorderViewModel(app_settings())
        self.recorder.setParent(self)
        self._closed = False

        self._build_widgets()
        self.midi_learn = MidiLearnViewModel(midi_map or MidiMap(default_data_dir() / "midi_map.json"), self)
        register_controls(self.midi_learn, self.panels)
        register_faders(self.midi_learn, self.embedding, self.synth == SING)
        self._build_toolbar()
        self.mpe = MpeViewModel(app_settings(), self.morph, self.engine, self)  # MPE toggle, pad slide
        self.mpe.attach(self.tools, self.tools.act_settings)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.keyboard = KeyboardFocus(self, self.piano)
        self._connect()
        self.setAcceptDrops(True)
        self.fit_to_screen()
        self._show_synth()
        self.display_timer = QTimer(self)
        self.display_timer.setInterval(1000 // DISPLAY_FPS)
        self.display_timer.timeout.connect(self.refresh_display)
        QApplication.instance().installEventFilter(self.keyboard)
        self.piano.setFocus()

        self.engine.start()
        if self.instruments:
            self.instrument_list.select(0)
        for key in SYNTHS:
            if key != self.synth:
                self._load_synth(key)
        self.devices.start()  # last: the other synths load before the stream runs, not beside its first blocks
        self.display_timer.start()

    def fit_to_screen(self, screen: QScreen | None = None) -> None:
        """Size the window for the screen it opens on (``window_size.initial_size``): centred, or maximized on a
        screen smaller than the layout's preferred size."""
        screen = screen or self.screen() or QApplication.primaryScreen()
        avail = screen.availableGeometry()
        w, h, maximized = initial_size(avail.width(), avail.height())
        self.resize(w, h)
        self.move(avail.left() + (avail.width() - w) // 2, avail.top() + max(0, (avail.height() - h) // 2 - 16))
        if maximized:
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)

    # ------------------------------------------------------------------ synths
    def _make_engine(self, source) -> Engine:
        kind = SYNTHS[self.synth]
        mono = kind.glides and (not hasattr(self, "voice_panel") or self.voice_panel.is_mono())
        config = EngineConfig(sample_rate=self.settings.sample_rate, block_size=self.settings.block_size,
                              max_voices=self._max_voices or kind.max_voices, channel=None, mono=mono)  # fmt: skip
        return Engine(source, config)

    @property
    def synth_errors(self) -> dict[str, str]:
        return self.synths.errors

    def _load_synth(self, key: str):
        """The source of synth ``key`` (loaded once); None, with its entry disabled and the reason shown, on failure."""
        source = self.synths.get(key)
        label, act = SYNTHS[key].label, self.tools.synth_actions[key]
        act.setEnabled(source is not None)
        if source is None:
            reason = self.synths.errors[key]
            act.setToolTip(f"{label} unavailable: {reason}")
            self.status.showMessage(f"{label} unavailable: {reason}", 15000)
        else:
            act.setToolTip(f"Play the {label} synth")
        return source

    def set_synth(self, key: str) -> bool:
        """Play synth ``key`` ("sing" or "voice"): stop the old engine and audio output, build a new Engine for
        its source with the same audio/MIDI settings, and rebuild the instrument list, faders and morph pad.

        Returns False (nothing changes) when that synth cannot be loaded.
        """
        if key not in SYNTHS:
            raise ValueError(f"unknown synth {key!r}")
        if key == self.synth:
            return True
        source = self._load_synth(key)
        if source is None:
            self._show_synth()
            return False
        self._play(key, source)
        return True

    def _play(self, key: str, source) -> None:
        """Switch to ``source`` as synth ``key``: a new engine, the same audio/MIDI settings, new instrument views."""
        # 1. silence and stop the old engine and its audio output
        self.panic()
        self.stop_recording()
        old = self.engine
        # 2. a new engine for the new source, same settings; MIDI input stays open (it calls devices.engine)
        self.synth = key
        self.source = source
        self.engine = self._make_engine(source)
        self.mpe.bind(self.engine)
        self.engine.set_master_gain(self.volume.value() / 100.0)
        self.bend.setValue(0)
        self.engine.start()
        self.devices.set_engine(self.engine)  # the old output stops before the old engine does
        old.close()
        # 3. the new instrument table in the list, the faders and the morph pad
        self._bind_custom()
        self._show_instruments()
        self._replace_embedding()
        self.sound.base = None
        if self.instruments:
            self.instrument_list.select(0)
        self._show_synth()
        self.status.dropouts.reset()
        self.meter.reset()  # the other synth's levels (and clip light) are not this one's
        self.update_status()
        self.status.showMessage(f"Playing {SYNTHS[key].label} ({self.engine.stats().device_name})", 5000)

    # ------------------------------------------------------------------ the user's own instruments
    def _bind_custom(self) -> None:
        """Point the custom instruments at the current synth's model (fitting needs SING and its file)."""
        path = getattr(self.source, "checkpoint_path", None) if self.synth == SING else None
        reason = "" if self.synth == SING else "new instruments are fitted to the SING model"
        self.custom.blockSignals(True)
        self.custom.bind([i.name for i in self.source.instruments], self.source.instrument_table, path, reason)
        self.custom.blockSignals(False)

    def _instrument_rows(self):
        """The model's instruments followed by the user's: names, one table of vectors and their gains (the
        model's instruments play at 1; the user's at their nearest instrument's level)."""
        infos, vectors, gains = self.custom.rows()
        table = np.asarray(self.source.instrument_table, dtype=np.float32)
        return ([*self.source.instruments, *infos], np.concatenate([table, vectors]),
                np.concatenate([np.ones(len(table), np.float32), gains]))  # fmt: skip

    def _show_instruments(self) -> None:
        """Rebuild the instrument rows and show them in the list and the morph pad's corner menus (the corners keep
        their instruments)."""
        self.sound.set_rows(*self._instrument_rows())  # the chosen row follows its name
        self.instrument_list.set_instruments([(i.name, i.family or "") for i in self.instruments])
        self.morph.set_instruments([i.name for i in self.instruments], self.table)

    def refresh_instruments(self) -> None:
        """Show the instruments again after the user's changed (the list's selection follows its name)."""
        current = self.instrument_list.current_index()
        chosen = self.instruments[current].name if current is not None and current < len(self.instruments) else None
        self._show_instruments()
        index = self.sound.index_of(chosen)
        if index is not None:
            self.instrument_list.select(index, emit=False)

    # the sound view model's rows, for readers of the window
    @property
    def instruments(self) -> list:
        return self.sound.instruments

    @property
    def table(self) -> np.ndarray:
        return self.sound.table

    @property
    def gains(self) -> np.ndarray:
        return self.sound.gains

    @property
    def base_instrument(self) -> int | None:
        return self.sound.base

    def use_sing_model(self, path: str) -> bool:
        """Play SING from checkpoint ``path`` (a fine-tune's result); False, with the reason shown, if it fails."""
        from synth_core.engine import SingSource
        from synth_core.sing.checkpoint import CheckpointError

        try:
            warmup = getattr(self.synths.sources.get(SING), "warmup_dtype", "auto")  # as the model it replaces
            source = SingSource.from_checkpoint(path, device="auto", warmup_dtype=warmup)
        except (CheckpointError, OSError) as exc:
            QMessageBox.warning(self, "Fine-tuned model", f"Could not load it: {exc}")
            return False
        self.synths.set(SING, source)
        if self.synth == SING:
            self._play(SING, source)
        else:
            self.set_synth(SING)
        self.instrument_list.select(len(source.instruments) - 1)  # the fine-tune's instrument comes last
        self.status.showMessage(f"Playing the fine-tuned model {path} (next time: sing-app --checkpoint PATH)")
        return True

    def new_instrument(self, files=()) -> None:
        """Open "New instrument from samples…" (also what dropping files or folders on the window does)."""
        self.custom.new_instrument_dialog(self, files)

    def _instrument_created(self, name: str) -> None:
        """A new instrument from samples: select it and say so (and at whose level it plays)."""
        index = self.sound.index_of(name)
        if index is not None:
            self.instrument_list.select(index)
            self.status.showMessage(self.custom.created_message(name), 15000)

    def _instrument_menu(self, index: int, pos) -> None:  # noqa: ANN001 - QPoint
        self.custom.show_menu(self, self.instruments[index].name, pos, self.new_instrument)

    def dragEnterEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt signature
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt signature
        paths = dropped_paths(event.mimeData())
        if paths:
            self.new_instrument(paths)

    def _replace_embedding(self) -> None:
        self.panels.replace_embedding(self._new_embedding()).deleteLater()
        register_faders(self.midi_learn, self.embedding, self.synth == SING)

    def _new_embedding(self) -> EmbeddingPanel:
        title = SYNTHS[self.synth].vector_name.format(dim=self.table.shape[1])
        tip = ("Embedding dimension {i} of {n}: one number of the instrument's vector" if self.synth == SING else
               "Spectral envelope: mel-cepstral coefficient {i} of {n} of the voice's timbre")  # fmt: skip
        panel = EmbeddingPanel(self.table, title=title, dim_tip=tip)
        panel.vectorChanged.connect(lambda v: self.set_vector(v, edited="embedding"))
        return panel

    def _show_synth(self) -> None:
        """Titles, the toolbar selector and the Voice panel for the current synth."""
        kind = SYNTHS[self.synth]
        self.setWindowTitle(kind.title)
        self.inst_box.setTitle(kind.table_name)
        self.voice_panel.setVisible(kind.glides)
        if kind.glides:
            self.voice_panel.set_mono(self.engine.mono, emit=False)
            self.voice_panel.set_settings(getattr(self.source, "settings", None))
        self.tools.synth_actions[self.synth].setChecked(True)

    def _voice_mono(self, on: bool) -> None:
        if SYNTHS[self.synth].glides:
            self.engine.set_mono(on)

    def _voice_settings(self, changes: dict) -> None:
        setter = getattr(self.source, "set_settings", None)
        if SYNTHS[self.synth].glides and setter is not None:
            setter(**changes)

    # ------------------------------------------------------------------ layout
    def _build_widgets(self) -> None:
        p = self.panels = MainPanels(self._new_embedding(), SYNTHS[VOICE].max_voices, EngineConfig.bend_range)
        self.setCentralWidget(p)
        self.instrument_list, self.inst_box, self.sound_label, self.voice_panel = (
            p.instrument_list, p.inst_box, p.sound_label, p.voice_panel)  # fmt: skip
        self.morph, self.scope, self.meter, self.volume, self.volume_label = (
            p.morph, p.scope, p.meter, p.volume, p.volume_label)  # fmt: skip
        self.piano, self.bend, self.top_splitter = p.piano, p.bend, p.top_splitter
        self.instrument_list.set_instruments([(i.name, i.family or "") for i in self.instruments])
        self.morph.set_instruments([i.name for i in self.instruments], self.table)

    @property
    def embedding(self) -> EmbeddingPanel:
        return self.panels.embedding

    def _build_toolbar(self) -> None:
        self.tools = MainToolBar(self)
        self.addToolBar(self.tools)
        self.tools.velocity_spin.setValue(self.piano.velocity)
        self._octave_changed(self.piano.base_note)

    def _connect(self) -> None:
        """Widgets reach the engine through ``self.engine`` at call time, so a synth switch needs no rewiring."""
        self.piano.noteOn.connect(lambda note, vel: self.engine.note_on(note, vel))
        self.piano.noteOff.connect(lambda note: self.engine.note_off(note))
        self.piano.octaveChanged.connect(self._octave_changed)
        self.piano.velocityChanged.connect(self.tools.velocity_spin.setValue)
        self.tools.velocity_spin.valueChanged.connect(self.piano.set_velocity)
        self.instrument_list.instrumentSelected.connect(self.select_instrument)
        self.instrument_list.filter_edit.returnPressed.connect(self.keyboard.leave_field)
        self.morph.vectorChanged.connect(lambda v: self.set_vector(v, edited="morph"))
        self.volume.valueChanged.connect(self._volume_changed)
        self.bend.bendChanged.connect(lambda st: self.engine.set_pitch_bend(st))
        for key, act in self.tools.synth_actions.items():
            act.triggered.connect(lambda _checked, k=key: self.set_synth(k))
        self.tools.act_open_recordings.triggered.connect(self.recorder.open_folder)
        self.tools.act_recordings_folder.triggered.connect(self._choose_recordings_folder)
        self.tools.act_panic.triggered.connect(self.panic)
        self.tools.act_record.toggled.connect(self._record_toggled)
        self.tools.act_save.triggered.connect(self._save_preset_dialog)
        self.tools.act_load.triggered.connect(self._load_preset_dialog)
        self.tools.act_reset.triggered.connect(self._reset_sound)
        self.tools.act_settings.triggered.connect(self.open_settings)
        self.tools.act_sustain.toggled.connect(lambda on: self.engine.set_sustain(on))
        self.tools.act_new_instrument.triggered.connect(lambda: self.new_instrument())
        self.tools.act_import_instrument.triggered.connect(lambda: self.custom.import_dialog(self))
        self.instrument_list.menuRequested.connect(self._instrument_menu)
        self.custom.changed.connect(self.refresh_instruments)
        self.custom.created.connect(self._instrument_created)
        self.custom.modelReady.connect(self.use_sing_model)
        self.midi_learn.message.connect(lambda text: self.status.showMessage(text, 8000))
        self.voice_panel.monoChanged.connect(self._voice_mono)
        self.voice_panel.settingsChanged.connect(self._voice_settings)
        self.devices.changed.connect(self._show_devices)
        self.recorder.changed.connect(self._show_recording)
        self.status.openFolderRequested.connect(self.recorder.open_folder)
        self.devices.message.connect(lambda text: self.status.showMessage(text, 8000))
        self.devices.midiMessage.connect(self._show_midi, Qt.ConnectionType.QueuedConnection)

    # ------------------------------------------------------------------ sound selection
    def select_instrument(self, index: int) -> None:
        self._play_sound(self.sound.select(index))

    def set_vector(self, vec: np.ndarray, edited: str = "") -> None:
        """Make ``vec`` the vector for new notes and show it on the faders (``edited``: "morph" for the pad's
        blend, "embedding" from the faders themselves)."""
        if edited == "morph":
            sound = self.sound.morphed(vec, self.morph.corner_indices(), corner_weights(*self.morph.pad.position()))
        else:
            sound = self.sound.edited(vec)
        self._play_sound(sound, faders=edited != "embedding")

    def _play_sound(self, sound: Sound, faders: bool = True) -> None:
        """New notes play ``sound``; the faders (unless they made it) and the label show it."""
        self.engine.set_instrument_vector(sound.vector, gain=sound.gain)
        if faders:
            self.embedding.set_vector(sound.vector)
        self.sound_label.set_text(f"♪ {sound.name}", f"The sound new notes play: {sound.name}\n(notes already "
                                  "sounding keep theirs)")  # fmt: skip

    def _reset_sound(self) -> None:
        if self.base_instrument is not None:
            self.select_instrument(self.base_instrument)

    # ------------------------------------------------------------------ presets
    def save_preset_to(self, path: str | Path, name: str) -> Path:
        preset = Preset(name=name, vector=self.embedding.vector(), base_instrument=self.sound.base_name())
        return save_preset(path, preset)

    def load_preset_from(self, path: str | Path) -> Preset:
        """Apply a preset file; raises PresetError (nothing changes) when the file is bad."""
        return self._apply_preset(load_preset(path, dim=self.table.shape[1]))

    def _apply_preset(self, preset: Preset) -> Preset:
        self._play_sound(self.sound.preset(preset.vector, preset.name, preset.base_instrument))
        if self.sound.base is not None:
            self.instrument_list.select(self.sound.base, emit=False)
        return preset

    def _save_preset_dialog(self) -> None:
        path = save_dialog(self, self.sound.name, self.embedding.vector(), self.sound.base_name())
        if path is not None:
            self.status.showMessage(f"Preset saved to {path}", 5000)

    def _load_preset_dialog(self) -> None:
        preset = load_dialog(self, self.table.shape[1])
        if preset is not None:
            self._apply_preset(preset)
            self.status.showMessage(f"Preset '{preset.name}' loaded", 5000)

    # ------------------------------------------------------------------ transport
    def panic(self) -> None:
        self.piano.release_all()
        self.piano.clear_external_notes()
        self.tools.act_sustain.setChecked(False)
        self.engine.all_sound_off()

    def start_recording(self) -> Path | None:
        """Start a take at once into an auto-named file in the recordings folder; None (with the reason shown) when
        the folder cannot be made."""
        try:
            return self.start_recording_to(self.recorder.next_path(self.sound.name))
        except OSError as e:
            self.tools.show_recording(False)
            QMessageBox.warning(self, "Record", f"Could not start recording in {self.recorder.folder}:\n{e}")
            return None

    def start_recording_to(self, path: str | Path) -> Path:
        """Start a take into ``path``."""
        path = self.recorder.start_to(self.engine, path)
        self.tools.show_recording(True)
        return path

    def stop_recording(self) -> Path | None:
        """Finish the take (None when none was running)."""
        path = self.recorder.stop(self.engine)
        self.tools.show_recording(False)
        return path

    def _record_toggled(self, on: bool) -> None:
        if on:
            self.start_recording()
        else:
            self.stop_recording()

    def _choose_recordings_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Recordings folder", str(self.recorder.folder))
        if folder:
            self.recorder.set_folder(folder)
            self.status.showMessage(f"New takes go to {folder}", 5000)

    def _show_recording(self) -> None:
        self.status.show_recording(*self.recorder.status())

    def _volume_changed(self, value: int) -> None:
        self.engine.set_master_gain(value / 100.0)
        self.volume_label.setText(f"{value}%")

    def _octave_changed(self, base: int) -> None:
        self.tools.octave_label.setText(f"  Keys: {note_name(base)}–{note_name(base + 17)}  (Z/X octave)")

    # ------------------------------------------------------------------ audio / MIDI devices
    @property
    def audio(self) -> AudioOutput | None:
        """The audio output playing the engine (None offline); the session's."""
        return self.devices.audio

    @property
    def offline(self) -> OfflineClock:
        return self.devices.offline

    @property
    def midi(self) -> MidiInput:
        return self.devices.midi

    @property
    def lbl_underruns(self) -> QLabel:
        """The dropouts field (bench/app_soak.py reads it)."""
        return self.status.dropouts_label

    def _show_devices(self) -> None:
        self.status.show_audio(self.devices.audio_status())
        self.status.show_midi(self.devices.midi_status())

    def _show_midi(self, msg: mido.Message) -> None:
        """GUI thread: the piano shows notes; mapped controllers move their controls (MIDI learn)."""
        self.midi_learn.handle(msg)
        if msg.type == "note_on" and msg.velocity > 0:
            self.piano.set_external_note(msg.note, True)
        elif msg.type in ("note_off", "note_on"):
            self.piano.set_external_note(msg.note, False)
        elif msg.type == "control_change" and msg.control in (120, 123):
            self.piano.clear_external_notes()

    def open_settings(self) -> None:
        dlg = SettingsDialog(self.settings, self._list_devices, self._list_ports, self)
        if self.devices.audio_message:
            dlg.device_note.setText(self.devices.audio_message)
            dlg.device_note.setVisible(True)
        if dlg.exec():
            self.apply_settings(dlg.settings())

    def apply_settings(self, new: AudioMidiSettings) -> None:
        self.settings = new
        self.devices.apply(new)

    # ------------------------------------------------------------------ display
    def refresh_display(self) -> None:
        """Timer (~30 fps): scope, meter and status bar from the engine's monitoring API."""
        block = self.engine.scope(self.scope.samples_needed())
        self.scope.set_samples(block)
        self.meter.set_samples(block[-max(256, self.engine.sample_rate // DISPLAY_FPS) :])
        self.update_status()
        if self.recorder.recording:
            self._show_recording()  # the take's running time

    def update_status(self) -> None:
        self.status.show_stats(self.engine.stats(), self.devices.counters(), self.audio is not None)

    # ------------------------------------------------------------------ keyboard and shutdown
    def shutdown(self) -> None:
        """Stop timers, devices, recording and the engine thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self.keyboard)
        self.display_timer.stop()
        self.stop_recording()
        self.devices.close()
        self.engine.stop()
        if self.custom.dialog is not None:
            self.custom.dialog.close()  # a fit still running stops; nothing of it is kept

    def dispose(self) -> None:
        """Shut down and destroy the window now, while the QApplication and the audio and MIDI servers still
        exist; left to the garbage collector it dies later, after them (a crash at exit)."""
        self.shutdown()
        self.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        gc.collect()

    def closeEvent(self, event) -> None:  # noqa: ANN001 - Qt signature
        self.shutdown()
        super().closeEvent(event)
