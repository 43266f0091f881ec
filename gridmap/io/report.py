"""What an import did, row by row where a row did not go in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RowIssue:
    """A row that was rejected, repaired or skipped. ``row`` counts data rows from 1 (a CSV header is row 0)."""

    row: int
    field: str
    reason: str
    value: str | None = None

    def describe(self, file: str) -> str:
        shown = f" (value {self.value!r})" if self.value is not None else ""
        return f"{file}, row {self.row}, field {self.field}: {self.reason}{shown}"


@dataclass
class ImportReport:
    layer: str
    file: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: list[RowIssue] = field(default_factory=list)
    skipped_empty: list[RowIssue] = field(default_factory=list)
    outside_territory: list[RowIssue] = field(default_factory=list)
    rejected: list[RowIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def accounted(self) -> int:
        """Rows inserted, updated, unchanged, skipped or rejected: equals ``rows_read`` after an import."""
        return self.inserted + self.updated + self.unchanged + len(self.skipped_empty) + len(self.rejected)

    def summary(self) -> dict[str, int]:
        return {
            "rows read": self.rows_read,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "invalid geometries repaired": len(self.repaired),
            "empty geometries skipped": len(self.skipped_empty),
            "outside the city's territory": len(self.outside_territory),
            "rejected": len(self.rejected),
        }

    def lines(self) -> list[str]:
        """Return the rejected, repaired and skipped rows as sentences naming file, row and field."""
        out = [f"rejected: {issue.describe(self.file)}" for issue in self.rejected]
        out += [f"repaired: {issue.describe(self.file)}" for issue in self.repaired]
        out += [f"skipped: {issue.describe(self.file)}" for issue in self.skipped_empty]
        return out
