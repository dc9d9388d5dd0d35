"""The Train tab's "Train on" choice on a machine with several GPUs (issue #19).

:class:`TrainOnCombo` lists one entry per card ("GPU 1: RTX 3090"), the first two cards together
("GPUs 0 + 1 (data-parallel)") and, with more than two, all of them. A choice is a short text
kept in the settings (``AppSettings.train_gpus``): ``"1"`` one card, ``"0,1"`` several, ``""``
the default (the engine's card; the only value with one GPU, where the combo is hidden).
:func:`apply_choice` turns it into the :class:`~zitdesk.train.config.TrainSpec` the engine runs:
one card trains in the app on ``cuda:N``; several run as one data-parallel run of child
processes (:mod:`zitdesk.train.parallel_job`), which cannot pause. On Windows only single cards
are offered (PyTorch's Windows builds have no NCCL).
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QComboBox, QWidget

from zitdesk.engine.lanes import on_cards

NO_PAUSE_TIP = (
    "A run on several GPUs can't pause: Stop keeps a checkpoint and Resume continues from it."
)
DATA_PARALLEL = sys.platform != "win32"  # PyTorch's Windows builds have no NCCL
TIP = (
    "The card(s) this run trains on. One card trains here in the app, beside image making on "
    "another card; two or more train one LoRA together (data-parallel: each card takes its "
    "share of every step) and cannot pause."
)


def parse_choice(value: str) -> tuple[int, ...]:
    """``"0,1"`` → (0, 1); ``""`` or anything unreadable → () (the default card)."""
    try:
        ids = tuple(int(t) for t in str(value or "").split(",") if t.strip())
    except ValueError:
        return ()
    if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
        return ()
    return ids


def gpu_choices(gpus: Any, parallel: bool | None = None) -> list[tuple[str, str]]:
    """``(label, value)`` per entry of the combo for these readings (none with one card).
    ``parallel``: offer the data-parallel entries (default: not on Windows, whose PyTorch has
    no NCCL for the cards to exchange gradients through)."""
    cards = list(gpus or ())
    if len(cards) < 2:
        return []
    items = [(f"GPU {g.index}: {g.name}", str(g.index)) for g in cards]
    if not (DATA_PARALLEL if parallel is None else parallel):
        return items
    a, b = cards[0].index, cards[1].index
    items.append((f"GPUs {a} + {b} (data-parallel)", f"{a},{b}"))
    if len(cards) > 2:
        items.append(
            (f"All {len(cards)} GPUs (data-parallel)", ",".join(str(g.index) for g in cards))
        )
    return items


def apply_choice(spec: Any, value: str) -> Any:
    """``spec`` set to train on the chosen card(s) (:func:`zitdesk.engine.lanes.on_cards`); the
    default → ``spec`` unchanged."""
    ids = parse_choice(value)
    return on_cards(spec, ids) if ids else spec


class TrainOnCombo(QComboBox):
    """The "Train on" combo (see the module docstring); ``choice_changed(value)`` on a pick."""

    choice_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setToolTip(TIP)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._wanted = ""  # the saved choice, kept until the cards are known
        self.currentIndexChanged.connect(self._on_index)

    def set_gpus(self, gpus: Any) -> None:
        """Fill from ``zitdesk.gpu.GpuReading``s, keeping the current (or saved) choice."""
        want = self.choice() or self._wanted
        self.blockSignals(True)
        self.clear()
        for label, value in gpu_choices(gpus):
            self.addItem(label, value)
        self.blockSignals(False)
        self.select(want)

    def select(self, value: str) -> None:
        """Pick ``value`` if it is listed (else the first card); remembered for later cards."""
        self._wanted = str(value or "")
        idx = self.findData(self._wanted)
        self.blockSignals(True)
        self.setCurrentIndex(idx if idx >= 0 else (0 if self.count() else -1))
        self.blockSignals(False)

    def choice(self) -> str:
        """The chosen value; ``""`` with one card (nothing to choose)."""
        return str(self.currentData() or "") if self.count() else ""

    @Slot(int)
    def _on_index(self, _index: int) -> None:
        self._wanted = self.choice()
        self.choice_changed.emit(self._wanted)
