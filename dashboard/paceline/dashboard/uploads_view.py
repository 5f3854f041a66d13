"""The patient page's import uploads: what each uploaded file became, as a table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

import pandas as pd

from paceline.dashboard.times import shown_at
from paceline.store.uploads import Upload

#: What the page says about each status.
STATUS_TEXT = {
    "queued": "waiting for a worker",
    "running": "importing",
    "done": "imported",
    "failed": "refused",
}


def _stored(upload: Upload) -> str:
    if upload.summary is None:
        return ""
    s = upload.summary
    parts = [
        f"{s.get(k, 0):,} {label}"
        for k, label in (("hr", "HR"), ("rr", "RR"), ("steps", "step min"))
    ]
    if s.get("sdnn"):
        parts.append(f"{s['sdnn']:,} SDNN")
    return ", ".join(parts)


def upload_table(uploads: Sequence[Upload], zone: tzinfo) -> pd.DataFrame:
    """One row per upload, newest first: file, who, when, status, rows stored, what was refused.

    The uploads are the patient's data, so when is the patient's wall time in `zone`.
    """
    return pd.DataFrame(
        {
            "file": [u.filename for u in uploads],
            "uploaded by": [u.requested_by for u in uploads],
            "uploaded": [shown_at(u.requested_at, zone) for u in uploads],
            "status": [STATUS_TEXT.get(u.status, u.status) for u in uploads],
            "stored": [_stored(u) for u in uploads],
            "duplicates": [
                (u.summary or {}).get("duplicates", "") if u.summary else "" for u in uploads
            ],
            "rejected": [
                (u.summary or {}).get("rejected", "") if u.summary else "" for u in uploads
            ],
            "error": [u.error or "" for u in uploads],
        },
        columns=[
            "file",
            "uploaded by",
            "uploaded",
            "status",
            "stored",
            "duplicates",
            "rejected",
            "error",
        ],
    )
