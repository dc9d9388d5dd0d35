"""First-run model setup: list what discovery found, or let the user point at a folder or files.

Discovery and validation read only file names and safetensors headers, on the thread pool. Nothing
is copied, linked or downloaded. Every problem is shown as the plain sentence that
``zitdesk.models.discovery`` produced (for example "missing text encoder (Qwen3-4B)").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.tasks import TaskSignals, run_task
from ui.widgets.text import plain_label, plain_tooltip
from zitdesk.errors import ModelError

ROLES = (
    ("transformer", "Diffusion model (DiT)", "z_image_turbo_bf16.safetensors"),
    ("text_encoder", "Text encoder (Qwen3-4B)", "qwen_3_4b.safetensors"),
    ("vae", "VAE", "ae.safetensors"),
)
ORIGINS = {
    "hf-cache": "Hugging Face cache",
    "comfyui": "ComfyUI",
    "forge": "Forge / A1111",
    "swarmui": "SwarmUI",
    "stabilitymatrix": "StabilityMatrix",
    "user": "your folder",
    "folder": "folder",
}
PathRole = Qt.ItemDataRole.UserRole + 1
FilesRole = Qt.ItemDataRole.UserRole + 2


def _discover(extra_roots: list[str]) -> list[dict[str, Any]]:
    """Every candidate; a ComfyUI folder holding several DiT files (bf16, fp8, GGUF Q4_K …) gives
    one entry per DiT, each with its size and the GPU memory it needs (issue #17)."""
    from zitdesk.models.discovery import discover

    out: list[dict[str, Any]] = []
    for s in discover(extra_roots):
        entry = s.to_dict() | {
            "describe": s.describe(),
            "variant": _variant(s),
            "dit_line": _dit_line(s.checks.get("transformer")),
        }
        out.append(entry)
        if s.complete and s.kind == "comfy":
            out.extend(_alternatives(s, entry))
    return out


def _dit_line(check: Any) -> str:
    """``GGUF Q4_K DiT, 3.5 GB — about 6.0 GiB of GPU memory at 1024×1024 (8 GB cards and up)``."""
    if check is None:
        return ""
    from zitdesk.memory_predict import candidate_line

    try:
        size = Path(check.path).stat().st_size
    except OSError:
        return ""
    return candidate_line(check.quant, size)


def _alternatives(src: Any, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The other usable DiT files of a complete ComfyUI source, each as its own choice (a small
    ``*.zitmodel.json`` naming the three files; nothing is copied)."""
    from zitdesk.models.discovery import write_manifest

    chosen = src.files.get("transformer")
    alts: list[dict[str, Any]] = []
    for check in src.candidates.get("transformer", []):
        if chosen is not None and Path(check.path) == Path(chosen):
            continue
        files = {role: str(path) for role, path in src.files.items()}
        files["transformer"] = str(check.path)
        try:
            manifest = write_manifest(files)
        except OSError:
            continue
        alts.append(
            entry
            | {
                "label": f"{src.label}: {Path(check.path).name}",
                "model_path": str(manifest),
                "files": files,
                "dit_line": _dit_line(check),
            }
        )
    return alts


def _variant(src: Any) -> str:
    """Which Z-Image it is (Turbo / Base / De-Turbo) and how that is known, for the list."""
    from zitdesk.models.variants import detect_variant

    return detect_variant(src).describe()


def _check_folder(path: str) -> dict[str, Any]:
    from zitdesk.models.discovery import resolve_model

    src = resolve_model(path)
    return src.to_dict() | {
        "describe": src.describe(),
        "model_path": path,
        "variant": _variant(src),
        "dit_line": _dit_line(src.checks.get("transformer")),
    }


def _check_files(files: dict[str, str]) -> dict[str, Any]:
    """Validate three chosen files and find one folder the engine can resolve to exactly them."""
    from zitdesk.models.discovery import comfy_source, resolve_model

    paths = {k: Path(v) for k, v in files.items() if v}
    common = Path(os.path.commonpath([str(p.parent) for p in paths.values()])) if paths else Path()
    src = comfy_source({k: paths.get(k) for k, _, _ in ROLES}, common, label=common.name)
    out = src.to_dict() | {
        "describe": src.describe(),
        "model_path": "",
        "variant": _variant(src),
        "dit_line": _dit_line(src.checks.get("transformer")),
    }
    if not src.complete:
        return out
    wanted = {k: str(p.resolve()) for k, p in paths.items()}
    for root in (common, common.parent):
        try:
            found = resolve_model(root)
        except ModelError:
            continue
        got = {k: str(Path(v).resolve()) for k, v in found.files.items()}
        if found.complete and got == wanted:
            out["model_path"] = str(root)
            return out
    # The files live apart (or beside other model files): record exactly these three in a small
    # manifest that the engine resolves like a folder. Nothing is copied.
    from zitdesk.models.discovery import write_manifest

    out["model_path"] = str(write_manifest(wanted))
    return out


class ModelSetupDialog(QDialog):
    def __init__(
        self, extra_roots: list[str] | None = None, current: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set up Z-Image Turbo")
        self.resize(760, 600)
        self.extra_roots = list(extra_roots or [])
        self.model_path = current
        self.model_files: dict[str, str] = {}
        intro = QLabel(
            "<b>zitdesk needs the Z-Image Turbo model</b> (about 20 GB). Point it at files you "
            "already have: a Hugging Face download, a ComfyUI/Forge/SwarmUI models folder, or the "
            "three ComfyUI files. Nothing is copied or downloaded."
        )
        intro.setWordWrap(True)
        self.status = plain_label(  # quotes folder and file paths
            "Looking in the Hugging Face cache and ComfyUI, Forge, SwarmUI and "
            "StabilityMatrix folders…"
        )
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.current = current
        self.in_use = plain_label(
            f"In use now: {current}" if current else "No model is set up yet."
        )
        self.in_use.setWordWrap(True)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        self.list.setSpacing(3)
        self.rescan_button = QPushButton("Search again")
        self.folder_button = QPushButton("Choose a folder…")
        self.folder_button.setToolTip(
            "A diffusers folder (with model_index.json), a Hugging Face "
            "cache folder, or a ComfyUI / Forge models folder"
        )
        row = QHBoxLayout()
        row.addWidget(self.folder_button)
        row.addWidget(self.rescan_button)
        row.addStretch(1)
        files_box = QGroupBox("…or choose the three ComfyUI files")
        files_form = QFormLayout(files_box)
        self.file_edits: dict[str, QLineEdit] = {}
        for role, label, example in ROLES:
            edit = QLineEdit()
            edit.setPlaceholderText(f"e.g. {example}")
            browse = QPushButton("Browse…")
            browse.setProperty("role", role)
            browse.clicked.connect(self._browse_file)
            line = QHBoxLayout()
            line.addWidget(edit, 1)
            line.addWidget(browse)
            files_form.addRow(label, line)
            self.file_edits[role] = edit
        self.check_files_button = QPushButton("Check these files")
        files_form.addRow("", self.check_files_button)
        self.error = plain_label(object_name="error")
        self.error.setWordWrap(True)
        self.error.hide()
        self.box = QDialogButtonBox()
        self.use_button = self.box.addButton(
            "Use this model", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.later_button = self.box.addButton("Later", QDialogButtonBox.ButtonRole.RejectRole)
        self.use_button.setEnabled(False)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.in_use)
        lay.addWidget(self.status)
        lay.addWidget(self.list, 1)
        lay.addLayout(row)
        lay.addWidget(files_box)
        lay.addWidget(self.error)
        lay.addWidget(self.box)

        self._tasks = TaskSignals(self)
        self._tasks.succeeded.connect(self._on_result)
        self._tasks.failed.connect(self._on_failed)
        self.rescan_button.clicked.connect(self.rescan)
        self.folder_button.clicked.connect(self._choose_folder)
        self.check_files_button.clicked.connect(self.check_files)
        self.list.currentItemChanged.connect(self._on_current)
        self.box.accepted.connect(self.accept)
        self.box.rejected.connect(self.reject)
        self.busy = False
        self.rescan()

    # -- actions --------------------------------------------------------------------------------
    @Slot()
    def rescan(self) -> None:
        self._start("discover", _discover, self.extra_roots)

    def check_folder(self, path: str) -> None:
        self.status.setText(f"Checking {path}…")
        self._start("folder", _check_folder, path)

    @Slot()
    def check_files(self) -> None:
        files = {role: e.text().strip() for role, e in self.file_edits.items()}
        missing = [label for role, label, _ in ROLES if not files[role]]
        if missing:
            self._show_error("Choose all three files first (missing: " + ", ".join(missing) + ").")
            return
        for path in files.values():
            if not Path(path).is_file():
                self._show_error(f"{path} does not exist.")
                return
        self.model_files = files
        self.status.setText("Checking the three files…")
        self._start("files", _check_files, files)

    def _start(self, tag: str, fn, *args) -> None:
        self.busy = True
        self.error.hide()
        run_task(self._tasks, tag, fn, *args)

    @Slot()
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the model folder")
        if folder:
            self.check_folder(folder)

    @Slot()
    def _browse_file(self) -> None:
        role = self.sender().property("role")
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a model file", "", "Model files (*.safetensors *.gguf);;All files (*)"
        )
        if path:
            self.file_edits[role].setText(path)

    # -- results --------------------------------------------------------------------------------
    @Slot(object, object)
    def _on_result(self, tag: object, result: object) -> None:
        self.busy = False
        if tag == "discover":
            self._fill(result)  # type: ignore[arg-type]
            return
        info: dict[str, Any] = result  # type: ignore[assignment]
        if tag == "files":
            info["chosen_files"] = dict(self.model_files)
        if info.get("complete") and info.get("model_path"):
            item = self._add_item(info, top=True)
            self.list.setCurrentItem(item)
            self.status.setText("This model is complete. Press “Use this model”.")
        else:
            self._show_error(self._plain(info))

    @Slot(object, object)
    def _on_failed(self, tag: object, message: object) -> None:
        self.busy = False
        if tag == "discover":
            self.status.setText(
                f"Searching failed ({message}). Choose a folder or the files below."
            )
        else:
            self._show_error(str(message))

    def _fill(self, found: list[dict[str, Any]]) -> None:
        self.list.clear()
        for info in found:
            info["model_path"] = info.get("model_path") or info["root"]
            self._add_item(info)
        complete = sum(1 for i in found if i["complete"])
        if not found:
            self.status.setText(
                "No Z-Image Turbo files were found in the usual places. Choose the "
                "folder that holds them, or the three ComfyUI files."
            )
        else:
            self.status.setText(
                f"Found {len(found)} candidate{'s' if len(found) != 1 else ''}, "
                f"{complete} complete. Pick one, or choose another folder."
            )
        usable = [r for r in range(self.list.count()) if self.list.item(r).data(PathRole)]
        in_use = [r for r in usable if self._same(self.list.item(r).data(PathRole), self.current)]
        if in_use:  # the model in use is preselected, and says so
            item = self.list.item(in_use[0])
            item.setText(item.text().replace("\n", "  — in use\n", 1))
        if in_use or usable:
            self.list.setCurrentRow((in_use or usable)[0])

    @staticmethod
    def _same(a: str, b: str) -> bool:
        if not a or not b:
            return False
        try:
            return Path(a).resolve() == Path(b).resolve()
        except OSError:
            return a == b

    def _add_item(self, info: dict[str, Any], top: bool = False) -> QListWidgetItem:
        origin = ORIGINS.get(info.get("origin", ""), info.get("origin", ""))
        head = f"{info.get('label') or Path(info['model_path']).name}  ({origin})"
        if info.get("complete"):
            text = f"✔  {head}\n     ready — {info['model_path']}"
            if info.get("dit_line"):  # format, size and GPU memory of the DiT file (#17)
                text += f"\n     {info['dit_line']}"
            if info.get("variant"):  # zitdesk.models.variants; the Generate form can change it
                text += f"\n     {info['variant']}"
        else:
            text = f"⚠  {head}\n     {self._plain(info)}\n     {info['model_path']}"
        item = QListWidgetItem(text)
        item.setData(PathRole, info["model_path"] if info.get("complete") else "")
        item.setData(FilesRole, dict(info.get("chosen_files") or {}))
        item.setToolTip(plain_tooltip(info["model_path"]))
        if not info.get("complete"):
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
        if top:
            self.list.insertItem(0, item)
        else:
            self.list.addItem(item)
        return item

    @staticmethod
    def _plain(info: dict[str, Any]) -> str:
        parts = []
        if info.get("missing"):
            parts.append("missing " + ", ".join(info["missing"]))
        parts.extend(info.get("problems") or [])
        return "; ".join(parts) or str(info.get("describe", "not usable"))

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()
        # A refused choice is not usable: "Use this model" waits for a valid one to be picked.
        self.list.setCurrentItem(None)
        self.list.clearSelection()
        self.use_button.setEnabled(False)
        self.status.setText("That choice cannot be used yet:")

    def _on_current(self, current: QListWidgetItem | None, _previous=None) -> None:
        path = current.data(PathRole) if current is not None else ""
        self.use_button.setEnabled(bool(path))
        if path:
            self.error.hide()
            self.model_path = path
            self.model_files = dict(current.data(FilesRole) or {})
