"""The app's own settings file (``<data folder>/settings.ini``): choices kept between sessions."""

from __future__ import annotations

from PyQt6.QtCore import QSettings

from .custom_instruments import default_data_dir


def app_settings() -> QSettings:
    return QSettings(str(default_data_dir() / "settings.ini"), QSettings.Format.IniFormat)
