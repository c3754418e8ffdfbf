"""State and actions of the user's own instruments beside the model's: create (fit), rename, remove, export,
import. The window shows ``rows()`` after each ``changed`` signal; errors come back as InstrumentFileError
from the plain methods and as message boxes from the ``*_dialog`` ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, QPoint, pyqtSignal
from PyQt6.QtWidgets import QFileDialog, QInputDialog, QMenu, QMessageBox, QWidget

from synth_core.sing.checkpoint import InstrumentInfo
from synth_core.sing.instrument_names import display_name

from ..custom_instruments import (
    SUFFIX,
    CustomInstrument,
    CustomInstrumentStore,
    InstrumentFileError,
    file_slug,
    model_fingerprint,
)
from .new_instrument_dialog import NewInstrumentDialog

FAMILY = "custom"


class CustomInstrumentsViewModel(QObject):
    changed = pyqtSignal()
    created = pyqtSignal(str)  # the name of an instrument just made from samples
    modelReady = pyqtSignal(str)  # a fine-tuned checkpoint to play

    def __init__(
        self,
        store: CustomInstrumentStore,
        start_fit: Callable[..., object] | None = None,
        parent=None,
        start_finetune: Callable[..., object] | None = None,
    ):
        """``start_fit(checkpoint, files, name)`` returns a fit job (default: a ``FitProcess``);
        ``start_finetune(checkpoint, files, name, dest)`` a fine-tune job (default: a ``FineTuneProcess``)."""
        super().__init__(parent)
        self.store = store
        self._start_fit = start_fit
        self._start_finetune = start_finetune
        self.models_dir = store.folder.parent / "models"  # fine-tuned checkpoints
        self.base_names: list[str] = []
        self.fingerprint = ""
        self.dim = 0
        self.checkpoint: Path | None = None
        self.fit_unavailable = "no model"
        self.dialog: NewInstrumentDialog | None = None

    def bind(self, names: list[str], table: np.ndarray, checkpoint: str | Path | None, reason: str = "") -> None:
        """Follow the model played now: its instrument names and table, and the checkpoint fits start from
        (None: fitting is unavailable, for ``reason``)."""
        self.base_names = list(names)
        self.fingerprint = model_fingerprint(table)
        self.dim = int(np.asarray(table).shape[1])
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.fit_unavailable = "" if self.checkpoint else (reason or "this synth's model was not loaded from a file")
        self.changed.emit()

    def instruments(self) -> list[CustomInstrument]:
        if not self.fingerprint:
            return []
        return [i for i in self.store.for_model(self.fingerprint) if i.vector.size == self.dim]

    def rows(self) -> tuple[list[InstrumentInfo], np.ndarray, np.ndarray]:
        """The custom instruments' names (family "custom"), vectors [n, dim] and gains [n] (linear)."""
        insts = self.instruments()
        table = np.array([i.vector for i in insts], dtype=np.float32).reshape(len(insts), self.dim)
        gains = np.array([10.0 ** (i.gain_db / 20.0) for i in insts], dtype=np.float32)
        return [InstrumentInfo(i.name, FAMILY) for i in insts], table, gains

    def names(self) -> set[str]:
        return {*self.base_names, *(i.name for i in self.instruments())}

    # ---------------------------------------------------------------- plain actions
    def add_from_report(self, report: dict) -> CustomInstrument:
        """Keep the instrument a fit produced (``report``: ``synth_core.sing.fit.fit_samples``'s, with the
        ``level`` match the fit process adds)."""
        info = {k: v for k, v in report.items() if k != "vector"}
        gain_db = float((report.get("level") or {}).get("gain_db", 0.0))
        inst = CustomInstrument(str(report["instrument"]), np.asarray(report["vector"], np.float32), self.fingerprint,
                                info={"fit": info}, gain_db=gain_db)  # fmt: skip
        self.store.add(inst, taken=set(self.base_names))
        self.changed.emit()
        return inst

    def rename(self, name: str, new_name: str) -> None:
        self.store.rename(name, new_name, self.fingerprint, taken=set(self.base_names) - {name})
        self.changed.emit()

    def remove(self, name: str) -> None:
        self.store.remove(name, self.fingerprint)
        self.changed.emit()

    def export(self, name: str, dest: str | Path) -> Path:
        return self.store.export(name, self.fingerprint, dest)

    def import_file(self, path: str | Path) -> CustomInstrument:
        inst = self.store.import_file(path, self.fingerprint, self.dim, taken=set(self.base_names))
        self.changed.emit()
        return inst

    def is_custom(self, name: str) -> bool:
        return any(i.name == name for i in self.instruments())

    def created_message(self, name: str) -> str:
        """What the status bar says of a new instrument: ready, selected, at whose level it plays, and which of the
        samples were left out and why (too short, corrupt, NaN/inf, silent, unpitched)."""
        inst = next((i for i in self.instruments() if i.name == name), None)
        level = inst.info.get("fit", {}).get("level") if inst is not None else None
        how = ""
        if level and level.get("nearest_name"):
            nearest = display_name(level["nearest_name"])
            how = f"; it plays at the level of {nearest}, its nearest instrument ({inst.gain_db:+.1f} dB)"
        return f"New instrument '{name}' is ready and selected{how}.{skipped_message(inst.info if inst else {})}"

    # ---------------------------------------------------------------- dialogs
    def show_menu(self, parent: QWidget, name: str, pos: QPoint, new_instrument: Callable[[], object]) -> QMenu:
        """The instrument list's right-click menu over ``name`` (rename / export / remove for the user's own)."""
        menu = QMenu(parent)
        if self.is_custom(name):
            menu.addAction("Rename…", lambda: self.rename_dialog(parent, name))
            menu.addAction("Export…", lambda: self.export_dialog(parent, name))
            menu.addAction("Remove…", lambda: self.remove_dialog(parent, name))
            menu.addSeparator()
        menu.addAction("New instrument from samples…", new_instrument)
        menu.addAction("Import instrument…", lambda: self.import_dialog(parent))
        menu.popup(pos)
        return menu

    def new_instrument_dialog(self, parent: QWidget, files: Iterable[str | Path] = ()) -> NewInstrumentDialog | None:
        """Open "New instrument from samples" (None, with the reason shown, when fitting is unavailable)."""
        if self.checkpoint is None:
            QMessageBox.information(parent, "New instrument", f"Not available: {self.fit_unavailable}.")
            return None
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.add_paths(files)
            self.dialog.raise_()
            return self.dialog
        checkpoint = self.checkpoint

        def start(paths: list[Path], name: str):
            if self._start_fit is not None:
                return self._start_fit(checkpoint, paths, name)
            from ..fit_process import FitProcess

            return FitProcess(checkpoint, paths, name)

        def finetune(paths: list[Path], name: str):
            dest = self.models_dir / f"{file_slug(name)}.pt"
            if self._start_finetune is not None:
                return self._start_finetune(checkpoint, paths, name, dest)
            from ..finetune_process import FineTuneProcess

            return FineTuneProcess(checkpoint, paths, name, dest)

        self.dialog = NewInstrumentDialog(
            start, taken_names=self.names(), files=files, parent=parent, start_finetune=finetune
        )
        self.dialog.created.connect(lambda report: self._created(parent, report))
        self.dialog.finetuned.connect(lambda report: self.modelReady.emit(str(report["checkpoint"])))
        self.dialog.show()
        return self.dialog

    def _created(self, parent: QWidget, report: dict) -> None:
        try:
            inst = self.add_from_report(report)
        except InstrumentFileError as exc:
            QMessageBox.warning(parent, "New instrument", str(exc))
            return
        self.created.emit(inst.name)

    def rename_dialog(self, parent: QWidget, name: str) -> None:
        new, ok = QInputDialog.getText(parent, "Rename instrument", "New name", text=name)
        if ok and new.strip() and new.strip() != name:
            self._try(parent, "Rename", lambda: self.rename(name, new))

    def remove_dialog(self, parent: QWidget, name: str) -> None:
        answer = QMessageBox.question(parent, "Remove instrument", f"Remove '{name}'? (Export it first to keep it.)")
        if answer == QMessageBox.StandardButton.Yes:
            self._try(parent, "Remove", lambda: self.remove(name))

    def export_dialog(self, parent: QWidget, name: str) -> None:
        path, _ = QFileDialog.getSaveFileName(parent, "Export instrument", f"{name}{SUFFIX}", f"Instrument (*{SUFFIX})")
        if path:
            self._try(parent, "Export", lambda: self.export(name, path))

    def import_dialog(self, parent: QWidget) -> None:
        path, _ = QFileDialog.getOpenFileName(parent, "Import instrument", "", f"Instrument (*{SUFFIX})")
        if path:
            self._try(parent, "Import", lambda: self.import_file(path))

    @staticmethod
    def _try(parent: QWidget, what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (InstrumentFileError, OSError) as exc:
            QMessageBox.warning(parent, f"{what} instrument", str(exc))


def skipped_message(info: dict, shown: int = 3) -> str:
    """The status bar's words on the samples a fit skipped (``info["fit"]["skipped"]``): names and reasons, or ""."""
    skipped = (info.get("fit") or {}).get("skipped") or []
    if not skipped:
        return ""
    parts = [f"{Path(str(s.get('file', '?'))).name} ({s.get('reason', '?')})" for s in skipped[:shown]]
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    noun = "file" if len(skipped) == 1 else "files"
    return f" {len(skipped)} {noun} left out: {'; '.join(parts)}{more}."
