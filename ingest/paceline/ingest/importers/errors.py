"""What can be wrong with a file handed to `paceline import`; every error names the file."""

from __future__ import annotations

from pathlib import Path

from paceline.ingest import IngestError


class ImportFileError(IngestError):
    """A file that cannot be imported; nothing of it was stored."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


class UnknownFormatError(ImportFileError, ValueError):
    """Neither a FIT file, an Apple Health export, a Fitbit/Takeout file nor a Health Connect export."""


class UnsafeArchiveError(ImportFileError):
    """A zip archive that would expand beyond the limits (a zip bomb, or simply too large)."""


class UnsafeXmlError(ImportFileError):
    """XML that declares entities or otherwise tries to expand (an XML bomb)."""


class MalformedFileError(ImportFileError, ValueError):
    """A file of a known format whose content is broken beyond what can be recovered."""


class DiskSpaceError(ImportFileError, OSError):
    """Not enough free disk space for the temporary files the import needs."""


class UnknownPatientError(ImportFileError, LookupError):
    """The patient the file is to be imported for does not exist."""
