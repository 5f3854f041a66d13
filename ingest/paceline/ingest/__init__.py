"""The gateway side: the ingest daemon, the durable spool, the uploader and file importers."""

from __future__ import annotations


class IngestError(Exception):
    """Root of every error raised by `paceline.ingest`."""


__all__ = ["IngestError"]
