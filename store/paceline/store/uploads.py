"""Export files uploaded on the dashboard and the outcome of their import (migration 0022).

A person (a clinician of the patient's care team, or the patient) stores a
file with `request_import`, which calls the SECURITY DEFINER function
``paceline_request_import``: PostgreSQL checks the verified identity, stores
the bytes, audits the request and defers the worker's ``paceline.import_upload``
job, all in one transaction. The worker claims the upload (`claim`), imports
it and records the outcome (`finish`); people read outcomes with `recent`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from paceline.store.errors import StoreError

#: Largest upload (Streamlit's default ``server.maxUploadSize``; a year of Apple
#: Watch data zips to well under it). The database refuses larger ones as well.
MAX_UPLOAD_BYTES: Final = 200 * 1024 * 1024
#: Longest file name kept (longer names are cut, keeping the end with its suffix).
MAX_FILENAME: Final = 255

Status = Literal["queued", "running", "done", "failed"]


class UploadError(StoreError):
    """An upload that cannot be stored or imported."""


class UploadTooLargeError(UploadError, ValueError):
    """A file larger than `MAX_UPLOAD_BYTES`, or an empty one."""

    def __init__(self, filename: str, size: int) -> None:
        self.filename = filename
        self.size = size
        super().__init__(
            f"{filename}: {size:,} bytes; an upload holds 1 byte to {MAX_UPLOAD_BYTES:,} bytes"
            " (import larger exports with `paceline import`)"
        )


class UploadRefusedError(UploadError, PermissionError):
    """The signed-in person may not import for this patient."""

    def __init__(self, patient_id: int) -> None:
        self.patient_id = patient_id
        super().__init__(f"you may not import files for patient {patient_id}")


class UnknownUploadError(UploadError, LookupError):
    """No upload with this id."""

    def __init__(self, upload_id: int) -> None:
        self.upload_id = upload_id
        super().__init__(f"no upload {upload_id}")


@dataclass(frozen=True)
class Upload:
    """One uploaded file and what its import did (the bytes themselves are not read)."""

    upload_id: int
    patient_id: int
    requested_by: str
    filename: str
    size_bytes: int
    sha256: str
    status: Status
    summary: dict[str, Any] | None
    error: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Claimed:
    """An upload the worker is about to import."""

    upload_id: int
    patient_id: int
    filename: str
    content: bytes


def _filename(name: str) -> str:
    name = name.replace("\x00", "").strip() or "upload"
    return name if len(name) <= MAX_FILENAME else name[-MAX_FILENAME:]


def request_import(
    conn: psycopg.Connection[Any], patient_id: int, filename: str, content: bytes
) -> int:
    """Store `content` for `patient_id` and defer its import, in the caller's person session.

    Returns the upload id. Raises `UploadTooLargeError` before sending anything
    for an empty file or one above `MAX_UPLOAD_BYTES`, and `UploadRefusedError`
    when PostgreSQL refuses the person (another team's patient, another patient).
    """
    name = _filename(filename)
    if not 0 < len(content) <= MAX_UPLOAD_BYTES:
        raise UploadTooLargeError(name, len(content))
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT paceline_request_import(%s, %s, %s)", (patient_id, name, content)
            ).fetchone()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise UploadRefusedError(patient_id) from exc
    assert row is not None
    return int(row[0])


def recent(conn: psycopg.Connection[Any], patient_id: int, limit: int = 20) -> list[Upload]:
    """The patient's latest uploads, newest first (row security decides whose are visible)."""
    with conn.cursor(row_factory=class_row(Upload)) as cur:
        cur.execute(
            "SELECT upload_id, patient_id, requested_by, filename, size_bytes, sha256, status,"
            " summary, error, requested_at, started_at, finished_at FROM import_upload"
            " WHERE patient_id = %s ORDER BY requested_at DESC, upload_id DESC LIMIT %s",
            (patient_id, limit),
        )
        return cur.fetchall()


def claim(conn: psycopg.Connection[Any], upload_id: int) -> Claimed | None:
    """Mark the upload running and return its bytes; None if it has finished already.

    Commits on its own, so the page shows "running" while the import goes on.
    A job run again after its worker died finds the upload running and takes it
    over: the import adds nothing twice.
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT patient_id, filename, content, status FROM import_upload"
            " WHERE upload_id = %s FOR UPDATE",
            (upload_id,),
        ).fetchone()
        if row is None:
            raise UnknownUploadError(upload_id)
        patient_id, filename, content, status = row
        if status in ("done", "failed") or content is None:
            return None
        conn.execute(
            "UPDATE import_upload SET status = 'running', started_at = now() WHERE upload_id = %s",
            (upload_id,),
        )
    return Claimed(upload_id, patient_id, filename, bytes(content))


def finish(
    conn: psycopg.Connection[Any],
    upload_id: int,
    *,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
) -> Status:
    """Record the outcome (done with its summary, or failed with the error) and drop the bytes."""
    status: Status = "failed" if error is not None else "done"
    with conn.transaction():
        row = conn.execute(
            "UPDATE import_upload SET status = %s, summary = %s, error = %s, content = NULL,"
            " finished_at = now() WHERE upload_id = %s RETURNING patient_id, filename",
            (status, None if summary is None else Jsonb(summary), error, upload_id),
        ).fetchone()
        if row is None:
            raise UnknownUploadError(upload_id)
        conn.execute(
            "INSERT INTO audit_log (actor, patient_id, action, object, detail)"
            " VALUES ('import-worker', %s, %s, 'import_upload', %s)",
            (
                row[0],
                f"import.{status}",
                Jsonb({"upload_id": upload_id, "filename": row[1], "error": error}),
            ),
        )
    return status
