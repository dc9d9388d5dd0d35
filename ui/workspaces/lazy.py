"""A tab whose real workspace is built the first time it is shown (keeps the launch fast)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget


class LazyWorkspace(QWidget):
    """Holds ``factory(parent) -> QWidget`` until the tab is first shown or ``widget()`` is asked.

    ``on_created(widget)`` runs once, right after construction, for the main window's wiring.
    """

    def __init__(
        self,
        factory: Callable[[QWidget], QWidget],
        on_created: Callable[[QWidget], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._factory = factory
        self._on_created = on_created
        self._widget: QWidget | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)

    @property
    def created(self) -> bool:
        return self._widget is not None

    def widget(self) -> QWidget:
        if self._widget is None:
            self._widget = self._factory(self)
            self.layout().addWidget(self._widget)
            if self._on_created is not None:
                self._on_created(self._widget)
        return self._widget

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        self.widget()
        super().showEvent(event)
