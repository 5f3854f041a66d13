"""File importers: exports people already have, stored like live data.

`import_file` detects the format from the content (`source.detect`) and parses
the file into temporary columns (`collect.Collected`); meanwhile a writer
thread stores every full batch through the exactly-once batch writer
(`load.BatchStream`), all in one transaction that commits only once the whole
file has parsed. A file that fails to parse therefore stores nothing. One module per format:

- `fit`: Garmin FIT activity and monitoring files (`fitdecode`).
- `apple`: Apple Health ``export.zip`` / ``export.xml`` (`lxml.etree.iterparse`).
- `fitbit`: Fitbit and Google Takeout CSV and JSON heart rate and steps.
- `healthconnect`: Android Health Connect export zip (its SQLite database).

Rolling up the days that received samples is the caller's next step, as for
live data: the writer has queued their spans in ``sample_span``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import psycopg

from paceline.ingest.importers import apple, fit, fitbit, healthconnect
from paceline.ingest.importers.collect import Collected
from paceline.ingest.importers.errors import (
    DiskSpaceError,
    ImportFileError,
    MalformedFileError,
    UnknownFormatError,
    UnknownPatientError,
    UnsafeArchiveError,
    UnsafeXmlError,
)
from paceline.ingest.importers.load import (
    BatchStream,
    ImportSummary,
    MinuteSplitter,
    source_address,
)
from paceline.ingest.importers.source import (
    Detected,
    Format,
    detect,
    file_digest,
    member_size,
    open_member,
    require_free_space,
)

#: Parsed rows take at most this fraction of the XML or text they came from
#: (about 24 bytes per row against 150-400 bytes of text), which is what the
#: temporary files are checked against before parsing.
_SPILL_FRACTION = 4


def parse_file(path: Path, detected: Detected, out: Collected) -> None:
    """Parse `path` (of the detected format) into `out`."""
    name = path.name
    if detected.format is Format.FIT:
        with open_member(path, None) as fh:
            fit.parse(fh, name, out)
    elif detected.format is Format.APPLE_HEALTH:
        member = detected.members[0] if detected.members else None
        size = member_size(path, member)
        require_free_space(path, out.workdir, size // _SPILL_FRACTION, "reading the export")
        with open_member(path, member) as fh:
            apple.parse(fh, name, out)
    elif detected.format is Format.FITBIT:
        fitbit.parse(path, detected.members, out)
    else:
        healthconnect.parse(path, detected.members, out)


def import_file(
    conn: psycopg.Connection[Any],
    path: Path,
    *,
    patient_id: int,
    timezone: str,
    split_minutes: MinuteSplitter,
    birth_year: int | None = None,
    workdir: Path | None = None,
) -> ImportSummary:
    """Import `path` for `patient_id`; raise an `ImportFileError` and store nothing if it is bad.

    `timezone` (the patient's IANA zone) reads the local wall-clock times some
    exports hold. `workdir` is where temporary files go (a private directory is
    made inside it and removed afterwards).
    """
    path = Path(path)
    if not path.is_file():
        raise UnknownFormatError(path, "no such file")
    detected = detect(path)
    with tempfile.TemporaryDirectory(prefix="paceline-import-", dir=workdir) as tmp:
        out = Collected(Path(tmp), timezone=timezone, birth_year=birth_year)
        batches = BatchStream(
            conn,
            out,
            patient_id=patient_id,
            fmt=detected.format.value,
            digest=lambda: file_digest(path),
            split_minutes=split_minutes,
        )
        batches.start()
        try:
            parse_file(path, detected, out)
        except BaseException:
            batches.abort()
            raise
        return batches.finish()


__all__ = [
    "Detected",
    "DiskSpaceError",
    "Format",
    "ImportFileError",
    "ImportSummary",
    "MalformedFileError",
    "MinuteSplitter",
    "UnknownFormatError",
    "UnknownPatientError",
    "UnsafeArchiveError",
    "UnsafeXmlError",
    "detect",
    "import_file",
    "source_address",
]
