"""The Save preset and Load preset dialogs (a sound's vector, name and base instrument): errors are shown, nothing
changes on a bad file (``sing_app.presets`` reads and writes the files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from ..presets import Preset, PresetError, load_preset, save_preset

FILTER = "Presets (*.json)"


def save_dialog(parent: QWidget, suggested: str, vector: np.ndarray, base: str | None) -> Path | None:
    """Ask for a name (``suggested``: what the sound is) and a file; the file written, or None."""
    name, ok = QInputDialog.getText(parent, "Save preset", "Preset name:", text=suggested or "My sound")
    name = name.strip()
    if not ok or not name:
        return None
    path, _ = QFileDialog.getSaveFileName(parent, "Save preset", f"{name}.json", FILTER)
    if not path:
        return None
    try:
        return save_preset(path, Preset(name=name, vector=vector, base_instrument=base))
    except (OSError, PresetError) as e:
        QMessageBox.warning(parent, "Save preset", f"Could not save the preset:\n{e}")
        return None


def load_dialog(parent: QWidget, dim: int) -> Preset | None:
    """Pick a preset file and read it (a bad one is reported); None when nothing was loaded."""
    path, _ = QFileDialog.getOpenFileName(parent, "Load preset", "", f"{FILTER};;All files (*)")
    if not path:
        return None
    try:
        return load_preset(path, dim=dim)
    except PresetError as e:
        QMessageBox.warning(parent, "Load preset", str(e))
        return None
