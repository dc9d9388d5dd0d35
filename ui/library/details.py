"""Details pane of the LoRA library: preview, status, apply-with-weight, notes, all metadata.

Every string that comes from a file (header metadata, sidecars, file names) is shown with
``QLabel.setTextFormat(Qt.PlainText)`` or ``QPlainTextEdit.setPlainText``: header strings are
untrusted and are never rendered as rich text or HTML. :func:`details_text` builds the plain-text
report (testable without widgets).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from ui.library.delegates import arch_chip
from ui.library.model import human_size
from ui.widgets.text import plain_label, set_plain_tooltip
from zitdesk.library import ApplyLoraRequest
from zitdesk.library.index import LoraEntry
from zitdesk.library.store import UserRecord

WEIGHT_MIN, WEIGHT_MAX = -2.0, 3.0
FULL_META_LIMIT = 20_000
TRIGGER_ROWS_MAX = 12  # the trigger list grows to this many rows before it scrolls


def _cut(v: str, n: int = FULL_META_LIMIT) -> str:
    return v if len(v) <= n else v[:n] + f"… ({len(v):,} characters)"


def details_text(
    e: LoraEntry,
    record: UserRecord | None = None,
    full_metadata: dict[str, str] | None = None,
    duplicates: list[str] | None = None,
    hashing: bool = False,
) -> str:
    """Everything known about ``e`` as plain text (never markup)."""
    out: list[str] = []
    add = out.append
    add(e.display_name)
    add(f"File: {e.file_name}")
    add(f"Folder: {e.folder}")
    when = (
        _dt.datetime.fromtimestamp(e.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M")
        if e.mtime_ns
        else "?"
    )
    add(f"Size: {human_size(e.size)} · modified {when}")
    add("")
    add(f"Status: {e.reason or 'ok'}")
    if e.status == "ok":
        bits = [f"architecture {e.arch_label} (from tensor keys)", f"dialect {e.dialect}"]
        if e.rank:
            bits.append(f"rank {e.rank}")
        bits.append(f"alpha {e.alpha:g}" if e.alpha is not None else "alpha = rank (not stored)")
        bits.append(f"{e.n_tensors} tensors")
        if e.target_count:
            bits.append(f"{e.target_count} target modules")
        if e.fused_qkv:
            bits.append("fused qkv")
        add("; ".join(bits))
        if e.coverage_total:
            add(
                f"Coverage: {e.coverage_matched} of the file's {e.coverage_total} modules exist in the model "
                f"({e.coverage_percent:g} %)"
                + (
                    f"; the model has {e.model_targets} modules a LoRA can target"
                    if e.model_targets
                    else ""
                )
            )
        if e.unknown_key_count and e.arch == "zimage":
            add(f"Unrecognised keys (skipped): {e.unknown_key_count}")
        if e.unsupported_key_count:
            add(f"Keys using features zitdesk does not apply: {e.unsupported_key_count}")
    if e.base_model_version:
        add(f"Base model according to metadata: {e.base_model_version}")
    if e.arch == "zimage":
        from zitdesk.models.variants import entry_variant

        guess = entry_variant(e)
        add(
            f"Trained on: {guess.label} ({guess.detail})"
            if guess.known
            else "Trained on: the file does not say which Z-Image (Turbo or Base)"
        )
    if e.status == "ok" and not e.has_metadata and not e.sidecars:
        add("This file carries no metadata and has no sidecar files.")
    if e.author:
        add(f"Author: {e.author}")
    if e.preferred_weight is not None:
        add(f"Preferred weight (sidecar): {e.preferred_weight:g}")
    if e.trigger_words:
        add("")
        add("Trigger words (first source wins):")
        for t in e.trigger_words:
            also = [s for s in t.sources if s != t.source]
            note = " (top tag, a guess)" if t.from_tags else ""
            add(f"  {t.word} — {t.source}{note}" + (f"; also {', '.join(also)}" if also else ""))
    if e.top_tags:
        add("")
        add("Top tags (ss_tag_frequency): " + ", ".join(f"{t} ({n})" for t, n in e.top_tags))
    if e.training:
        add("")
        add("Training:")
        for k, v in e.training.items():
            add(f"  {k}: {v}")
    add("")
    if e.sha256:
        add(f"sha256: {e.sha256}")
        add(f"AutoV2 (short sha256): {e.autov2}")
        if e.addnet:
            add(f"AutoV3 / A1111 LoRA hash: {e.autov3}   (tensor data sha256 {e.addnet})")
    elif e.hash_error:
        add(f"Hashes: {e.hash_error}")
    else:
        add("Hashes: computing in the background…" if hashing else "Hashes: not computed yet")
    if duplicates:
        add("Identical files (same sha256):")
        for d in duplicates:
            add(f"  {d}")
    add(
        f"Preview: {e.preview_source or 'none'}"
        + (" (overridden by your own preview)" if record is not None and record.preview else "")
    )
    if e.sidecars:
        add("")
        add("Sidecar files:")
        for sc in e.sidecars:
            add(f"  {sc.label}: {sc.path}")
            if sc.error:
                add(f"    problem: {sc.error}")
                continue
            if sc.url:
                add(f"    link: {sc.url}")
            if sc.claimed_sha256:
                match = (
                    ""
                    if not e.sha256
                    else (
                        " (matches)"
                        if sc.claimed_sha256 == e.sha256
                        else " (DOES NOT match this file)"
                    )
                )
                add(f"    sha256 stated: {sc.claimed_sha256}{match}")
            for k, v in list(sc.fields.items())[:60]:
                add(f"    {k}: {v}")
    if e.description:
        add("")
        add("Description:")
        add(e.description)
    meta = full_metadata if full_metadata is not None else e.metadata
    if meta:
        add("")
        add(f"Metadata in the file ({len(meta)} keys):")
        for k in sorted(meta):
            v = meta[k]
            if k.endswith("thumbnail") and v.startswith("data:"):
                v = f"<embedded image, {len(v):,} characters>"
            add(f"  {k}: {_cut(v)}")
    return "\n".join(out)


def _plain_label(text: str = "", object_name: str = "") -> QLabel:
    return plain_label(text, object_name, wrap=True, selectable=True)  # untrusted header text


class RatingWidget(QWidget):
    rating_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.buttons: list[QToolButton] = []
        for i in range(1, 6):
            b = QToolButton()
            b.setAutoRaise(True)
            b.setToolTip(f"{i} star{'s' if i > 1 else ''} (click again to clear)")
            b.clicked.connect(self._on_click)
            b.setProperty("stars", i)
            lay.addWidget(b)
            self.buttons.append(b)
        self._rating = 0
        self.set_rating(0)

    @property
    def rating(self) -> int:
        return self._rating

    def set_rating(self, n: int) -> None:
        self._rating = n
        for b in self.buttons:
            on = int(b.property("stars")) <= n
            b.setText("★" if on else "☆")
            b.setStyleSheet("color: #f2c94c;" if on else "color: #8a9099;")

    @Slot()
    def _on_click(self) -> None:
        n = int(self.sender().property("stars"))
        n = 0 if n == self._rating else n
        self.set_rating(n)
        self.rating_changed.emit(n)


class DetailsPanel(QWidget):
    """Shows one entry; emits intents, never touches the store itself."""

    apply_requested = Signal(object)  # ApplyLoraRequest
    favourite_toggled = Signal(bool)
    rating_changed = Signal(int)
    notes_changed = Signal(str, str)  # (path, notes), debounced
    set_preview_requested = Signal()
    open_folder_requested = Signal()
    write_sidecar_requested = Signal()  # save trigger words / weight / notes to name.json

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry: LoraEntry | None = None
        self.preview = QLabel()
        self.preview.setTextFormat(Qt.TextFormat.PlainText)
        self.preview.setFixedSize(320, 200)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #121417; color: #8a9099; border-radius: 4px;")
        self.title = _plain_label("", "sectionTitle")
        self.title.setStyleSheet("font-size: 13pt; font-weight: 600;")
        self.subtitle = _plain_label("", "muted")
        self.status = _plain_label()
        self.star = QToolButton()
        self.star.setCheckable(True)
        self.star.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.star.setToolTip(
            "Favourites show a ★ on their card; the ★ Favourites filter lists only them"
        )
        self.star.toggled.connect(self._on_star)
        self._show_star(False)
        self.rating_label = plain_label("Your rating", "muted")
        self.rating = RatingWidget()
        self.rating.setToolTip(
            "Your own 1–5 star rating (sort by rating); kept in zitdesk, not in the file"
        )
        self.rating.rating_changed.connect(self.rating_changed)
        # apply
        self.weight = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.weight.setRange(WEIGHT_MIN, WEIGHT_MAX)
        self.weight.setSingleStep(0.05)
        self.weight.setDecimals(2)
        self.weight.setValue(1.0)
        self.triggers = QListWidget()
        self.triggers.setToolTip("Checked trigger words are inserted into the prompt")
        self.triggers.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.insert_triggers = QCheckBox("Insert checked trigger words into the prompt")
        self.apply_button = QPushButton("Apply to Generate")
        self.apply_button.setObjectName("primaryButton")
        self.apply_button.clicked.connect(self.request_apply)
        self.preview_button = QPushButton("Set preview…")
        self.preview_button.setToolTip(
            "Use an image from the gallery (or any image) as this LoRA's preview"
        )
        self.preview_button.clicked.connect(self.set_preview_requested)
        self.folder_button = QPushButton("Open folder")
        self.folder_button.clicked.connect(self.open_folder_requested)
        self.sidecar_button = QPushButton("Save to .json")
        self.sidecar_button.setToolTip(
            "Write the checked trigger words, the weight and your notes to the "
            "A1111/Forge sidecar (name.json) beside the LoRA; the LoRA file is not changed"
        )
        self.sidecar_button.clicked.connect(self.write_sidecar_requested)
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Your notes (kept in zitdesk, not in the file)")
        self.notes.setMaximumHeight(70)
        self._notes_timer = QTimer(self)
        self._notes_timer.setSingleShot(True)
        self._notes_timer.setInterval(800)
        self._notes_timer.timeout.connect(self.flush_notes)
        self._notes_dirty = False
        self.notes.textChanged.connect(self._on_notes_edited)
        self.info = QPlainTextEdit()
        self.info.setReadOnly(True)
        self.info.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.info.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.info.setMinimumHeight(160)
        for b in (self.preview_button, self.sidecar_button, self.folder_button):
            b.setMinimumWidth(b.sizeHint().width())  # never "et preview" / "ave to .jso"

        marks = QHBoxLayout()  # favourite, then the labelled rating
        marks.addWidget(self.star)
        marks.addSpacing(12)
        marks.addWidget(self.rating_label)
        marks.addWidget(self.rating)
        marks.addStretch(1)
        actions = QHBoxLayout()
        actions.addWidget(self.preview_button)
        actions.addWidget(self.sidecar_button)
        actions.addWidget(self.folder_button)
        actions.addStretch(1)
        weight_row = QHBoxLayout()
        weight_row.addWidget(_plain_label("Weight"))
        weight_row.addWidget(self.weight, 1)
        # Everything scrolls as one page, so a short window squeezes nothing into overlap.
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        page = QWidget()
        self.scroll.setWidget(page)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        lay = QVBoxLayout(page)
        lay.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.title)
        lay.addWidget(self.subtitle)
        lay.addWidget(self.status)
        lay.addLayout(marks)
        lay.addLayout(actions)
        lay.addLayout(weight_row)
        lay.addWidget(self.triggers)
        lay.addWidget(self.insert_triggers)
        lay.addWidget(self.apply_button)
        lay.addWidget(self.notes)
        lay.addWidget(self.info, 1)
        self.show_entry(None)
        # As wide as the widest row needs (the action buttons), never less than the preview.
        self.setMinimumWidth(
            max(
                340,
                page.minimumSizeHint().width() + self.scroll.verticalScrollBar().sizeHint().width(),
            )
        )

    # -- content -------------------------------------------------------------------------------
    def show_entry(
        self,
        e: LoraEntry | None,
        record: UserRecord | None = None,
        pixmap: QPixmap | None = None,
        duplicates: list[str] | None = None,
        hashing: bool = False,
    ) -> None:
        same = e is not None and self.entry is not None and e.path == self.entry.path
        if not same:
            self.flush_notes()
        self.entry = e
        enabled = e is not None
        for w in (
            self.star,
            self.rating,
            self.weight,
            self.triggers,
            self.insert_triggers,
            self.apply_button,
            self.preview_button,
            self.folder_button,
            self.sidecar_button,
            self.notes,
        ):
            w.setEnabled(enabled)
        if e is None:
            self.title.setText("No LoRA selected")
            self.subtitle.setText("Select a card to see everything its file says.")
            self.status.setText("")
            self.preview.setPixmap(QPixmap())
            self.preview.setText("")
            self.info.setPlainText("")
            self.triggers.clear()
            self._set_notes("")
            return
        record = record or UserRecord()
        self.title.setText(e.display_name)
        self.subtitle.setText(e.file_name if e.title else e.folder)
        chip, _ = arch_chip(e)
        self.status.setText(e.reason or chip)
        colour = "#7fcf8f" if e.compatible else "#e08a7a"
        self.status.setStyleSheet(f"color: {colour};")
        self.set_pixmap(pixmap)
        self.star.blockSignals(True)
        self.star.setChecked(record.favourite)
        self.star.blockSignals(False)
        self._show_star(record.favourite)
        self.rating.set_rating(record.rating)
        for w in (self.apply_button, self.weight, self.triggers, self.insert_triggers):
            w.setEnabled(e.compatible)
        set_plain_tooltip(self.apply_button, "" if e.compatible else e.reason)
        if not same:
            self.weight.setValue(e.preferred_weight if e.preferred_weight is not None else 1.0)
            self.triggers.clear()
            default = set(e.default_insert_triggers)
            for t in e.trigger_words:
                item = QListWidgetItem(f"{t.word}    ({t.source})")
                item.setData(Qt.ItemDataRole.UserRole, t.word)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Checked if t.word in default else Qt.CheckState.Unchecked
                )
                item.setToolTip("")  # sources are already in the text; no rich tooltips
                self.triggers.addItem(item)
            self.insert_triggers.setChecked(bool(e.declared_triggers))
            self._set_notes(record.notes)
        rows = min(TRIGGER_ROWS_MAX, max(1, self.triggers.count()))
        row_h = max(self.triggers.sizeHintForRow(0) if self.triggers.count() else 18, 16)
        self.triggers.setFixedHeight(
            rows * row_h + 2 * self.triggers.frameWidth() + 2 * self.triggers.spacing() + 4
        )
        self.triggers.setVisible(bool(e.trigger_words))
        self.insert_triggers.setVisible(bool(e.trigger_words))
        self.set_details(details_text(e, record, None, duplicates, hashing))

    def set_details(self, text: str) -> None:
        bar = self.info.verticalScrollBar()
        pos = bar.value()
        self.info.setPlainText(text)
        bar.setValue(pos)

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        if pixmap is not None and not pixmap.isNull():
            self.preview.setPixmap(
                pixmap.scaled(
                    self.preview.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        else:
            self.preview.setPixmap(QPixmap())
            self.preview.setText("no preview" if self.entry is not None else "")

    def _set_notes(self, text: str) -> None:
        self.notes.blockSignals(True)
        self.notes.setPlainText(text)
        self.notes.blockSignals(False)
        self._notes_dirty = False
        self._notes_timer.stop()

    # -- intents -------------------------------------------------------------------------------
    def checked_triggers(self) -> tuple[str, ...]:
        out = []
        for i in range(self.triggers.count()):
            item = self.triggers.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return tuple(out)

    def make_request(self) -> ApplyLoraRequest | None:
        e = self.entry
        if e is None or not e.compatible:
            return None
        words = self.checked_triggers()
        return ApplyLoraRequest(
            path=e.path,
            weight=round(float(self.weight.value()), 3),
            trigger_words=words,
            insert_triggers=bool(self.insert_triggers.isChecked() and words),
        )

    @Slot()
    def request_apply(self) -> None:
        req = self.make_request()
        if req is not None:
            self.apply_requested.emit(req)

    def _show_star(self, on: bool) -> None:
        self.star.setText("★ Favourite" if on else "☆ Favourite")
        self.star.setStyleSheet("color: %s;" % ("#f2c94c" if on else "#c0c4ca"))

    @Slot(bool)
    def _on_star(self, on: bool) -> None:
        self._show_star(on)
        self.favourite_toggled.emit(on)

    @Slot()
    def flush_notes(self) -> None:
        """Emit pending note edits now (before switching entries, on shutdown)."""
        self._notes_timer.stop()
        if self.entry is not None and self._notes_dirty:
            self._notes_dirty = False
            self.notes_changed.emit(self.entry.path, self.notes.toPlainText())

    @Slot()
    def _on_notes_edited(self) -> None:
        self._notes_dirty = True
        self._notes_timer.start()

    def full_metadata_loaded(
        self,
        path: str,
        meta: dict[str, Any],
        record: UserRecord | None,
        duplicates: list[str] | None,
        hashing: bool,
    ) -> None:
        if self.entry is not None and self.entry.path == path:
            self.set_details(details_text(self.entry, record, meta, duplicates, hashing))
