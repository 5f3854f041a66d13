"""Clinicians' progress notes: free text and the ratings the protocols name, audited.

A note is about the patient's progress, and optionally about one task (the
`activity`, e.g. "carrying the shopping 200 m"), rated on three scales:

- **confidence** (0-10): the patient's confidence that they can do the task
  now, 0 "cannot do it at all" to 10 "highly certain can do". Self-efficacy is
  task-specific and is rated as strength of belief on a 0-10 (or 0-100) scale
  (Bandura 2006); the PSEQ (Nicholas 2007) measures the same construct in
  general, this rating per task.
- **task independence** (1-7): how much help the patient needs for the task,
  on the seven levels of the Functional Independence Measure (Keith et al.
  1987): 1 total assistance, 2 maximal, 3 moderate, 4 minimal assistance,
  5 supervision or set-up, 6 modified independence (a device, extra time),
  7 complete independence.
- **perceived capability** (0-10): how able the patient reports being to do
  the task, the Patient-Specific Functional Scale (Stratford et al. 1995):
  0 "unable to perform the activity" to 10 "able to perform it at the same
  level as before the problem".

Notes are never edited: a correction is a new note that `amends` the earlier
one, so the record shows what was written when. Writing a note and a person's
reading of notes are audited.

References
----------
Bandura A. Guide for constructing self-efficacy scales. In: Pajares F, Urdan T,
eds. Self-efficacy beliefs of adolescents. Greenwich, CT: Information Age; 2006:307-337.
Keith RA, Granger CV, Hamilton BB, Sherwin FS. The functional independence measure:
a new tool for rehabilitation. Adv Clin Rehabil 1987;1:6-18.
Stratford P, Gill C, Westaway M, Binkley J. Assessing disability and change on
individual patients: a report of a patient specific measure. Physiother Can
1995;47:258-263.
Nicholas MK. The pain self-efficacy questionnaire: taking pain into account.
Eur J Pain 2007;11:153-163.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import psycopg

from paceline.pacing import records
from paceline.pacing.errors import NotAnIntegerError, OutOfRangeError, PacingError
from paceline.pacing.records import StoredNote
from paceline.store.access import audit, record_reads

BODY_MAX_CHARS: Final = 4000
ACTIVITY_MAX_CHARS: Final = 200


@dataclass(frozen=True)
class Scale:
    """One structured rating of a progress note: its range and what the ends mean."""

    name: str
    title: str
    low: int
    high: int
    anchors: tuple[str, ...]
    source: str


CONFIDENCE: Final = Scale(
    "confidence",
    "Confidence (task self-efficacy)",
    0,
    10,
    ("0 cannot do it at all", "10 highly certain can do"),
    "Bandura 2006",
)
TASK_INDEPENDENCE: Final = Scale(
    "task_independence",
    "Task independence (FIM levels)",
    1,
    7,
    (
        "1 total assistance",
        "2 maximal assistance",
        "3 moderate assistance",
        "4 minimal assistance",
        "5 supervision or set-up",
        "6 modified independence",
        "7 complete independence",
    ),
    "Keith et al. 1987",
)
PERCEIVED_CAPABILITY: Final = Scale(
    "perceived_capability",
    "Perceived capability (PSFS)",
    0,
    10,
    ("0 unable to perform", "10 able to perform at the level before the problem"),
    "Stratford et al. 1995",
)
SCALES: Final = (CONFIDENCE, TASK_INDEPENDENCE, PERCEIVED_CAPABILITY)


class ProgressNoteError(PacingError):
    """A progress note that cannot be stored as given (empty text, rating without a task …)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"progress note: {reason}")
        self.reason = reason


def _rating(scale: Scale, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotAnIntegerError(scale.name, value)
    if not scale.low <= value <= scale.high:
        raise OutOfRangeError(scale.name, value, scale.low, scale.high)
    return value


def add_note(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    clinician_id: int,
    body: str,
    activity: str | None = None,
    confidence: int | None = None,
    task_independence: int | None = None,
    perceived_capability: int | None = None,
    amends: int | None = None,
    now: datetime | None = None,
) -> StoredNote:
    """Write a clinician's progress note about the patient, audited; the stored note."""
    text = body.strip()
    if not 1 <= len(text) <= BODY_MAX_CHARS:
        raise ProgressNoteError(f"the text has 1 to {BODY_MAX_CHARS} characters, got {len(text)}")
    if "\x00" in body or (activity is not None and "\x00" in activity):
        raise ProgressNoteError("the text must not contain a NUL character")
    task = activity.strip() if activity is not None else None
    if task is not None and not 1 <= len(task) <= ACTIVITY_MAX_CHARS:
        raise ProgressNoteError(f"the task is named in 1 to {ACTIVITY_MAX_CHARS} characters")
    ratings = {
        s.name: _rating(s, v)
        for s, v in zip(SCALES, (confidence, task_independence, perceived_capability), strict=True)
    }
    if task is None and any(v is not None for v in ratings.values()):
        raise ProgressNoteError("a rating is about a task: name the activity it rates")
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ProgressNoteError("the time of a note needs a time zone")
    records.patient_context(conn, patient_id)
    with conn.transaction():
        if amends is not None and not records.progress_notes(conn, patient_id, note_id=amends):
            raise ProgressNoteError(f"patient {patient_id} has no note {amends} to amend")
        note_id = records.insert_note(
            conn,
            {
                "patient_id": patient_id,
                "clinician_id": clinician_id,
                "written_at": moment,
                "body": text,
                "activity": task,
                **ratings,
                "amends": amends,
            },
        )
        audit(
            conn,
            actor=f"clinician:{clinician_id}",
            action="note.add",
            obj="progress_note",
            patient_id=patient_id,
            clinician_id=clinician_id,
            detail={"note_id": note_id, "amends": amends, "activity": task, **ratings},
        )
        (stored,) = records.progress_notes(conn, patient_id, note_id=note_id)
    return stored


def list_notes(
    conn: psycopg.Connection[Any],
    patient_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[StoredNote]:
    """The patient's progress notes, newest first; a person's read is audited."""
    records.patient_context(conn, patient_id)
    with conn.transaction():
        notes = records.progress_notes(conn, patient_id, since=since, until=until)
        record_reads(conn, obj="progress_note", patient_ids=[patient_id])
    return notes


def scale_label(scale: Scale, value: int | None) -> str:
    """A rating as a reader sees it: ``"6/10"``, or the FIM level's name."""
    if value is None:
        return "—"
    if scale is TASK_INDEPENDENCE:
        return scale.anchors[value - scale.low]
    return f"{value}/{scale.high}"
