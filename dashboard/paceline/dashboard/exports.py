"""The patient page's export downloads: FHIR R4 and CSV, read in the clinician's session.

Both go through `paceline.pacing.export`, inside the signed-in clinician's
person session, so row security decides what exists and the audit entry
names the verified clinician. Nothing is written to disk: the files are built
in memory for the browser's download.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from paceline.pacing.export import export_csv, export_fhir


@dataclass(frozen=True)
class Download:
    """One file offered for download."""

    filename: str
    data: bytes
    mime: str


def downloads(
    conn: psycopg.Connection[Any], patient_id: int, start: date, end: date, *, clinician_id: int
) -> list[Download]:
    """The FHIR bundle and a zip of the three CSV files for `start` … `end`, both audited."""
    stem = f"paceline-patient-{patient_id}-{start:%Y%m%d}-{end:%Y%m%d}"
    bundle = export_fhir(conn, patient_id, start, end, clinician_id=clinician_id)
    with tempfile.TemporaryDirectory(prefix="paceline-export-") as tmp:
        paths = export_csv(conn, patient_id, start, end, Path(tmp), clinician_id=clinician_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in paths:
                archive.write(path, path.name)
    return [
        Download(
            f"{stem}.fhir.json", json.dumps(bundle, indent=1).encode(), "application/fhir+json"
        ),
        Download(f"{stem}.csv.zip", buffer.getvalue(), "application/zip"),
    ]
