"""Errors of imports and exports; each message names the file and says what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridmap.io.report import ImportReport


class ImportFailed(Exception):
    """The import cannot run at all (unreadable file, unknown layer, missing column …); nothing was written."""


class ImportRejected(ImportFailed):
    """``strict`` import with rejected rows: nothing was written. ``report`` lists them."""

    def __init__(self, report: ImportReport):
        self.report = report
        super().__init__(
            f"{report.file}: {len(report.rejected)} row(s) rejected, strict import: nothing was imported"
        )


class ExportFailed(Exception):
    """The export cannot run (unknown layer or format); nothing was written."""
