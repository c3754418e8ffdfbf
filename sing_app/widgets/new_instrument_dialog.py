"""The "New instrument from samples" dialog: pick (or drop) recordings, name the instrument, fit it with a progress bar.

The dialog knows nothing of models: ``start_fit(files, name)`` returns a job with ``start()``, ``poll()`` (a
list of events with ``kind`` "progress" / "done" / "error") and ``cancel()`` (see ``sing_app.fit_process``).
When a fit is done the dialog emits ``created(report)`` and closes; the instrument stays playable meanwhile.
With "Fine-tune the whole model" checked (and ``start_finetune`` given), the slow path runs instead: a job whose
``losses`` feed a live curve; when it is done the dialog emits ``finetuned(report)`` (``report["checkpoint"]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .loss_curve import LossCurve

AUDIO_FILTER = "Audio (*.wav *.flac *.WAV *.FLAC)"


def dropped_paths(mime) -> list[Path]:  # noqa: ANN001 - QMimeData
    """Local files and folders of a drag-and-drop."""
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


class NewInstrumentDialog(QDialog):
    created = pyqtSignal(dict)
    finetuned = pyqtSignal(dict)

    def __init__(
        self,
        start_fit: Callable[[list[Path], str], object],
        taken_names: Iterable[str] = (),
        files: Iterable[str | Path] = (),
        parent: QWidget | None = None,
        start_finetune: Callable[[list[Path], str], object] | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("New instrument from samples")
        self.setAcceptDrops(True)
        self._start_fit = start_fit
        self._start_finetune = start_finetune
        self._finetuning = False
        self._taken = {n.lower() for n in taken_names}
        self.job = None
        self.report: dict | None = None

        self.files = QListWidget()
        self.files.setToolTip("Recordings of single notes (WAV or FLAC, any rate); drop files or folders here")
        add_files, add_folder, clear = QPushButton("Add files…"), QPushButton("Add folder…"), QPushButton("Clear")
        add_files.clicked.connect(self._pick_files)
        add_folder.clicked.connect(self._pick_folder)
        clear.clicked.connect(self.files.clear)
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. My cello")
        self.finetune = QCheckBox("Fine-tune the whole model too (slow: minutes; for many notes per instrument)")
        self.finetune.setEnabled(start_finetune is not None)
        self.curve = LossCurve()
        self.curve.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel("Notes named <name>_<pitch>.wav keep their pitch; others have it estimated.")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.create_button = self.buttons.addButton("Create", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.create_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

        row = QHBoxLayout()
        for b in (add_files, add_folder, clear):
            row.addWidget(b)
        row.addStretch(1)
        form = QFormLayout()
        form.addRow("Name", self.name)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Samples (a few notes of one instrument; 3-10 at different pitches fit best)"))
        lay.addWidget(self.files, 1)
        lay.addLayout(row)
        lay.addLayout(form)
        lay.addWidget(self.finetune)
        lay.addWidget(self.curve)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.buttons)
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self.poll)
        self.add_paths(files)
        self.resize(520, 420)

    # ---------------------------------------------------------------- files
    def add_paths(self, paths: Iterable[str | Path]) -> None:
        have = set(self.paths())
        for p in map(Path, paths):
            if p not in have:
                self.files.addItem(str(p))
                have.add(p)
        if not self.name.text() and have:
            first = sorted(have)[0]
            self.name.setText(first.name if first.is_dir() else first.parent.name or first.stem)

    def paths(self) -> list[Path]:
        return [Path(self.files.item(i).text()) for i in range(self.files.count())]

    def _pick_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Samples", "", AUDIO_FILTER)
        self.add_paths(files)

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of samples")
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt signature
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt signature
        self.add_paths(dropped_paths(event.mimeData()))

    # ---------------------------------------------------------------- the fit
    def start(self) -> bool:
        """Check the input and start the fit; False (with the reason shown) when something is missing."""
        if self.job is not None:
            return False
        name = " ".join(self.name.text().split())
        if not self.paths():
            return self._problem("Add some samples first (files or a folder).")
        if not name:
            return self._problem("Give the instrument a name.")
        if name.lower() in self._taken:
            return self._problem(f"There is already an instrument named '{name}': pick another name.")
        self._finetuning = self.finetune.isChecked() and self._start_finetune is not None
        starter = self._start_finetune if self._finetuning else self._start_fit
        self.job = starter(self.paths(), name)
        self.job.start()
        self.create_button.setEnabled(False)
        self.progress.setValue(0)
        self.status.setStyleSheet("")
        self.curve.setVisible(self._finetuning)
        self.status.setText(
            "Fine-tuning… (minutes; you can keep playing)" if self._finetuning else "Fitting… (you can keep playing)"
        )
        self.timer.start()
        return True

    def poll(self) -> None:
        if self.job is None:
            return
        for ev in self.job.poll():
            if ev.kind == "progress":
                self.progress.setValue(int(1000 * ev.fraction))
                self.status.setText(ev.message)
                if self._finetuning:
                    self.curve.set_points(self.job.losses)
            elif ev.kind == "done":
                finetuned = self._finetuning
                self._finish()
                self.report = ev.report
                self.progress.setValue(1000)
                (self.finetuned if finetuned else self.created).emit(ev.report)
                self.accept()
                return
            else:
                self._finish()
                self._problem(f"The fit failed: {ev.message}")
                return

    def cancel(self) -> None:
        """Stop a running fit (nothing is kept) or close the dialog."""
        if self.job is not None:
            self.job.cancel()
            self._finish()
            self.progress.setValue(0)
            self.status.setText("Cancelled: nothing was changed.")
            return
        self.reject()

    def _finish(self) -> None:
        self.timer.stop()
        self.job = None
        self.create_button.setEnabled(True)

    def _problem(self, text: str) -> bool:
        self.status.setText(text)
        self.status.setStyleSheet("color: #ff8a80;")
        return False

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt signature
        if self.job is not None:
            self.job.cancel()
            self._finish()
        super().closeEvent(event)
