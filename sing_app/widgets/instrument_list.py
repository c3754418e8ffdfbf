"""Instrument picker: a two-column list (name, family) with a filter box."""

from __future__ import annotations

from collections.abc import Sequence

from PyQt6.QtCore import QPoint, QSortFilterProxyModel, Qt, pyqtSignal
from PyQt6.QtGui import QStandardItem, QStandardItemModel
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QLineEdit, QTreeView, QVBoxLayout, QWidget

from synth_core.sing.instrument_names import display_name, family_label

INDEX_ROLE = Qt.ItemDataRole.UserRole + 1
FILTER_ROLE = Qt.ItemDataRole.UserRole + 2  # what the filter matches: the shown name and the id


class InstrumentList(QWidget):
    """Emits ``instrumentSelected(table_index)`` when the user picks an instrument, and
    ``menuRequested(table_index, global_pos)`` on a right-click over one.

    Rows show human names ("Acoustic Grand Piano" for ``gm000_acoustic_grand_piano``) and the family apart. The
    filter matches the name, the id or the family (case-insensitive substring). Filtering never picks an
    instrument: the chosen one stays chosen (and highlighted while it matches); Enter in the filter picks the
    first match.
    """

    instrumentSelected = pyqtSignal(int)
    menuRequested = pyqtSignal(int, QPoint)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter instruments or families…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip("Type to filter by name or family; Enter picks the first match, Esc gives the "
                                    "keyboard back to the piano")  # fmt: skip
        self._chosen: int | None = None  # the table index the player picked
        self.model = QStandardItemModel(0, 2)
        self.model.setHorizontalHeaderLabels(["Instrument", "Family"])
        self.proxy = QSortFilterProxyModel()
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)  # any column
        self.proxy.setFilterRole(FILTER_ROLE)
        self.view = QTreeView()
        self.view.setModel(self.proxy)
        self.view.setRootIsDecorated(False)
        self.view.setAlternatingRowColors(True)
        self.view.setUniformRowHeights(True)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.view.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.view.header().setStretchLastSection(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.filter_edit)
        lay.addWidget(self.view)
        self.filter_edit.textChanged.connect(self._filter)
        self.filter_edit.returnPressed.connect(self._pick_first)
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._menu)

    def _menu(self, pos: QPoint) -> None:
        idx = self.view.indexAt(pos)
        if idx.isValid():
            self.menuRequested.emit(int(idx.data(INDEX_ROLE)), self.view.viewport().mapToGlobal(pos))

    def set_instruments(self, instruments: Sequence[tuple[str, str]]) -> None:
        """``instruments``: (name or id, family) per table row, in table order; shown by their human names."""
        self.model.removeRows(0, self.model.rowCount())
        self._chosen = None
        for i, (name, family) in enumerate(instruments):
            human, fam = display_name(name), family_label(family)
            a, b = QStandardItem(human), QStandardItem(fam)
            a.setData(human if human == name else f"{human}\n{name}", FILTER_ROLE)
            b.setData(fam, FILTER_ROLE)
            tip = f"{human} ({fam})" if fam else human  # the whole name where the column cuts it
            tip += f"\nid: {name} (sing-render --instrument, presets)" if human != name else ""
            for item in (a, b):
                item.setData(i, INDEX_ROLE)
                item.setToolTip(tip)
            self.model.appendRow([a, b])

    def set_filter(self, text: str) -> None:
        self.filter_edit.setText(text)

    def _filter(self, text: str) -> None:
        """Show the matches; the current row stays the chosen instrument (none while it is hidden)."""
        sm = self.view.selectionModel()
        sm.blockSignals(True)
        self.proxy.setFilterFixedString(text)
        idx = self.proxy.mapFromSource(self.model.index(self._chosen, 0)) if self._chosen is not None else None
        if idx is not None and idx.isValid():
            self.view.setCurrentIndex(idx)
        else:
            sm.clear()
        sm.blockSignals(False)
        self.view.viewport().update()

    def _pick_first(self) -> None:
        if self.proxy.rowCount():
            self.select(int(self.proxy.index(0, 0).data(INDEX_ROLE)))

    def visible_indices(self) -> list[int]:
        """Table indices of the rows shown under the current filter, in view order."""
        return [self.proxy.index(r, 0).data(INDEX_ROLE) for r in range(self.proxy.rowCount())]

    def current_index(self) -> int | None:
        """The chosen instrument's table index (also while the filter hides it)."""
        return self._chosen

    def select(self, table_index: int, emit: bool = True) -> bool:
        """Make ``table_index`` current (clearing the filter if it hides it); False if unknown."""
        if not 0 <= table_index < self.model.rowCount():
            return False
        src = self.model.index(table_index, 0)
        idx = self.proxy.mapFromSource(src)
        if not idx.isValid():
            self.filter_edit.clear()
            idx = self.proxy.mapFromSource(src)
        self._chosen = table_index
        self.view.selectionModel().blockSignals(not emit)
        self.view.setCurrentIndex(idx)
        self.view.selectionModel().blockSignals(False)
        self.view.scrollTo(idx)
        if not emit:
            self.view.viewport().update()
        return True

    def _current_changed(self, current, previous) -> None:  # noqa: ANN001 - Qt signature
        if current.isValid():
            self._chosen = int(current.data(INDEX_ROLE))
            self.instrumentSelected.emit(self._chosen)
