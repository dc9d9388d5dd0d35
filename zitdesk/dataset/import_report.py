"""What a dataset import reports: every source :class:`Imported` or :class:`Skipped` with its
reason, in one :class:`ImportReport` (``to_json`` is ``zitdesk dataset import --json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Imported:
    source: str
    image: str
    caption: str | None = None
    caption_source: str | None = None
    converted: str = ""
    renamed_from: str = ""
    width: int = 0
    height: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Skipped:
    source: str
    reason: str


@dataclass
class ImportReport:
    target: str
    imported: list[Imported] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    cancelled: bool = False
    errors: list[str] = field(default_factory=list)  # sentences: what could not be done

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "imported": [asdict(x) for x in self.imported],
            "skipped": [asdict(x) for x in self.skipped],
            "errors": list(self.errors),
            "counts": {
                "imported": len(self.imported),
                "skipped": len(self.skipped),
                "with_caption": sum(1 for x in self.imported if x.caption),
                "converted": sum(1 for x in self.imported if x.converted),
                "renamed": sum(1 for x in self.imported if x.renamed_from),
            },
            "cancelled": self.cancelled,
        }
