"""Dark theme: Fusion style, a dark palette and a small style sheet for accents.

High-DPI: Qt 6 scales by the system factor on its own; we only ask for exact (pass-through)
fractional factors before the application is created, so 125 %/150 % displays are not rounded.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#4c8bf5"
OK = "#4caf50"
WARN = "#e0a030"
BAD = "#e05545"
MUTED = "#9aa0a6"

STYLE_SHEET = f"""
QPushButton#primaryButton {{
    background: {ACCENT}; color: white; font-weight: 600; padding: 8px 18px;
    border-radius: 4px; border: none;
}}
QPushButton#primaryButton:disabled {{ background: #3a4150; color: #8a8f98; }}
QPushButton#primaryButton:hover {{ background: #5d98fa; }}
QPushButton#dangerButton {{ padding: 8px 14px; }}
QLabel#hint, QLabel#muted {{ color: {MUTED}; }}
QLabel#warning {{ color: {WARN}; }}
QLabel#error {{ color: {BAD}; }}
QLabel#sectionTitle {{ font-weight: 600; }}
QLabel#placeholderTitle {{ font-size: 18pt; font-weight: 600; }}
QFrame#banner {{ border-radius: 4px; padding: 4px; }}
QFrame#banner[level="info"] {{ background: #23364f; }}
QFrame#banner[level="warning"] {{ background: #4a3a16; }}
QFrame#banner[level="error"] {{ background: #4d2222; }}
QTabWidget::pane {{ border-top: 1px solid #3a3f47; }}
QTabBar::tab {{ padding: 8px 18px; }}
QStatusBar {{ border-top: 1px solid #3a3f47; }}
"""


def prepare_high_dpi() -> None:
    """Call before the QApplication exists."""
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )


def dark_palette() -> QPalette:
    p = QPalette()
    window, base, text = QColor("#202328"), QColor("#17191d"), QColor("#e6e6e6")
    disabled = QColor("#6b7078")
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, QColor("#262a30"))
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor("#2b3038"))
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor("#7d828a"))
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, QColor("#2b2f36"))
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.BrightText, QColor("#ff6b6b"))
    p.setColor(QPalette.ColorRole.Link, QColor(ACCENT))
    p.setColor(QPalette.ColorRole.Highlight, QColor(ACCENT))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    p.setColor(QPalette.ColorRole.Mid, QColor("#3a3f47"))
    p.setColor(QPalette.ColorRole.Dark, QColor("#15171a"))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(STYLE_SHEET)
