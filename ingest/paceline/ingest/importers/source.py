"""Opening a file safely: what it is (from its content), its digest, and bounded reading.

The format comes from the bytes, never from the name: FIT files carry ``.FIT``
in their header, zip archives are told apart by their members, SQLite by its
header, an Apple Health export by its ``HealthData`` root element, Fitbit files
by their JSON shape or CSV header. Archives are checked before anything is
read from them: the sum of the sizes their members declare, and each member's
expansion ratio (`zipfile` stops a member at its declared size, so a lying
header cannot expand further; it fails the CRC instead).
"""

from __future__ import annotations

import enum
import hashlib
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from paceline.ingest.importers.errors import DiskSpaceError, UnknownFormatError, UnsafeArchiveError

#: Largest uncompressed total an archive may declare (an Apple Health export of
#: a decade of Apple Watch use is a few GB of XML).
MAX_ARCHIVE_BYTES: Final = 32 * 1024**3
#: Largest expansion of one member. Text exports deflate 10-30x; deflate's own
#: ceiling is about 1030x, which only crafted input (a zip bomb) approaches.
MAX_RATIO: Final = 200
#: Members smaller than this are not ratio-checked (a tiny file can compress 500x).
RATIO_FLOOR_BYTES: Final = 1024 * 1024
HEAD_BYTES: Final = 64 * 1024
_FIT_MAGIC: Final = b".FIT"
_ZIP_MAGIC: Final = b"PK\x03\x04"
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"


class Format(enum.StrEnum):
    """The file formats `paceline import` reads."""

    FIT = "fit"
    APPLE_HEALTH = "apple-health"
    FITBIT = "fitbit"
    HEALTH_CONNECT = "health-connect"


@dataclass(frozen=True)
class Detected:
    """A file's format and, for an archive, the members to read."""

    format: Format
    members: tuple[str, ...] = ()


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes (the content part of every batch id)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(block)
    return h.hexdigest()


def is_fit(head: bytes) -> bool:
    """Whether `head` starts with a FIT file header (12 or 14 bytes, ``.FIT`` at 8)."""
    return len(head) >= 12 and head[0] in (12, 14) and head[8:12] == _FIT_MAGIC


def _text_format(head: bytes) -> Format | None:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return Format.APPLE_HEALTH if b"<HealthData" in head else None
    if text.startswith((b"[", b"{")):
        return Format.FITBIT
    first = text.split(b"\n", 1)[0].strip().lower()
    if b"," in first and first.split(b",")[0] in (b"id", b"timestamp", b"time", b"datetime"):
        return Format.FITBIT
    return None


def check_archive(path: Path, archive: zipfile.ZipFile) -> None:
    """Raise `UnsafeArchiveError` if the archive would expand beyond the limits."""
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if info.file_size >= RATIO_FLOOR_BYTES and (
            info.compress_size == 0 or info.file_size / info.compress_size > MAX_RATIO
        ):
            raise UnsafeArchiveError(
                path,
                f"member {info.filename!r} would expand {info.file_size:,} bytes from"
                f" {info.compress_size:,} (more than {MAX_RATIO}x): refused as a zip bomb",
            )
    if total > MAX_ARCHIVE_BYTES:
        raise UnsafeArchiveError(
            path, f"archive would expand to {total:,} bytes, more than {MAX_ARCHIVE_BYTES:,}"
        )


def _zip_format(path: Path, archive: zipfile.ZipFile) -> Detected:
    check_archive(path, archive)
    names = [i.filename for i in archive.infolist() if not i.is_dir()]
    apple = [n for n in names if n.rsplit("/", 1)[-1].lower() == "export.xml"]
    if apple:
        return Detected(Format.APPLE_HEALTH, (apple[0],))
    sqlite = [n for n in names if n.lower().endswith(".db")]
    for name in sqlite:
        with archive.open(name) as fh:
            if fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
                return Detected(Format.HEALTH_CONNECT, (name,))
    fitbit = []
    for name in names:
        if not name.lower().endswith((".json", ".csv")):
            continue
        with archive.open(name) as fh:
            if _text_format(fh.read(HEAD_BYTES)) is Format.FITBIT:
                fitbit.append(name)
    if fitbit:
        return Detected(Format.FITBIT, tuple(sorted(fitbit)))
    raise UnknownFormatError(
        path,
        "a zip archive with no Apple Health export.xml, Health Connect database or Fitbit data",
    )


def detect(path: Path) -> Detected:
    """What `path` holds, from its content; `UnknownFormatError` if none of the formats."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if is_fit(head):
        return Detected(Format.FIT)
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                return _zip_format(path, archive)
        except zipfile.BadZipFile as exc:
            raise UnknownFormatError(
                path, f"looks like a zip archive but is not one: {exc}"
            ) from exc
    if head.startswith(_SQLITE_MAGIC):
        return Detected(Format.HEALTH_CONNECT)
    found = _text_format(head)
    if found is None:
        raise UnknownFormatError(
            path,
            "not a FIT file, an Apple Health export, a Fitbit/Google Takeout file or a"
            " Health Connect export",
        )
    return Detected(found)


@contextmanager
def open_member(path: Path, member: str | None) -> Iterator[IO[bytes]]:
    """The file itself, or one member of the archive at `path`, as a binary stream."""
    if member is None:
        with path.open("rb") as fh:
            yield fh
        return
    with zipfile.ZipFile(path) as archive, archive.open(member) as fh:
        yield fh


def member_size(path: Path, member: str | None) -> int:
    """Uncompressed size of the member (or of the file)."""
    if member is None:
        return path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        return archive.getinfo(member).file_size


def require_free_space(path: Path, directory: Path, needed: int, what: str) -> None:
    """Raise `DiskSpaceError` unless `directory`'s file system has `needed` bytes free."""
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise DiskSpaceError(
            path,
            f"{what} needs {needed:,} bytes in {directory} but only {free:,} are free;"
            " free some space or set TMPDIR to a larger disk",
        )
