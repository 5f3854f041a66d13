"""Red-flag screening for musculoskeletal pain: the questions, a validated screen, what it means.

Graded activity and graded exposure assume the pain is not a sign of serious
pathology. The screen asks the patient, in the diary and in a short weekly
check, about new signs that call for a medical assessment before any further
progression: the red flags of the International Framework for Red Flags for
Potential Serious Spinal Pathologies (Finucane et al. 2020) and of NICE NG59
(low back pain and sciatica in over-16s), with the cauda equina symptoms NICE
and the framework both treat as an emergency.

=====================  ==============================================  ===========
question               the pathology it screens for                    care
=====================  ==============================================  ===========
``saddle_numbness``    cauda equina syndrome                           emergency
``bladder_bowel``      cauda equina syndrome                           emergency
``limb_weakness``      progressive neurological deficit               emergency
``fever``              spinal infection                                urgent
``weight_loss``        malignancy                                      urgent
``night_pain``         malignancy, infection (non-mechanical pain)     urgent
``trauma``             fracture                                        urgent
=====================  ==============================================  ===========

A "yes" to any question is a positive screen. A pain rating, however high,
is never one: the framework is explicit that pain intensity alone does not
indicate serious pathology, and the pacing model treats pain as expected
(the rules in `paceline.pacing.rules.safety` read screens only). The screen
does not diagnose; it stops progression and asks a clinician to look.

References
----------
Finucane LM, Downie A, Mercer C, et al. International framework for red flags
for potential serious spinal pathologies. J Orthop Sports Phys Ther
2020;50(7):350-372. doi:10.2519/jospt.2020.9971
National Institute for Health and Care Excellence. Low back pain and sciatica
in over 16s: assessment and management (NG59). 2016, updated 2020.
Greenhalgh S, Finucane L, Mercer C, Selfe J. International framework for
cauda equina syndrome. Musculoskelet Sci Pract 2018;33:A1-A2 (the
emergency wording of the saddle and bladder questions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Final

from paceline.pacing import wording
from paceline.pacing.errors import PacingError, ReportTimeError


class RedFlagError(PacingError):
    """A red-flag screen that cannot be stored as given."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"red-flag screen: {reason}")
        self.reason = reason


class Care(StrEnum):
    """How soon a positive answer needs medical care."""

    #: Go to an emergency department now (cauda equina, a progressing deficit).
    EMERGENCY = "emergency"
    #: See a doctor today (infection, malignancy, fracture are to be ruled out).
    URGENT = "urgent"


class Source(StrEnum):
    """Where the screen was asked (values stored in `red_flag_screen.source`)."""

    DIARY = "diary"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Question:
    """One red-flag question: its stable code, what it screens for and how urgent a yes is."""

    code: str
    pathology: str
    care: Care

    @property
    def text(self) -> str:
        """The question as the patient reads it."""
        return wording.RED_FLAG_QUESTIONS[self.code]


QUESTIONS: Final[tuple[Question, ...]] = (
    Question("saddle_numbness", "cauda equina syndrome", Care.EMERGENCY),
    Question("bladder_bowel", "cauda equina syndrome", Care.EMERGENCY),
    Question("limb_weakness", "progressive neurological deficit", Care.EMERGENCY),
    Question("fever", "spinal infection", Care.URGENT),
    Question("weight_loss", "malignancy", Care.URGENT),
    Question("night_pain", "malignancy or infection (non-mechanical pain)", Care.URGENT),
    Question("trauma", "fracture", Care.URGENT),
)
CODES: Final[tuple[str, ...]] = tuple(q.code for q in QUESTIONS)
_BY_CODE: Final = {q.code: q for q in QUESTIONS}
#: The weekly check falls due this many days after the last complete screen.
WEEKLY_CHECK_DAYS: Final = 7


@dataclass(frozen=True)
class Screen:
    """One answered red-flag screen: every question answered yes or no."""

    answered_at: datetime
    source: Source
    answers: Mapping[str, bool]

    def __post_init__(self) -> None:
        """Refuse unknown questions, missing ones and answers that are not plain yes/no."""
        if not isinstance(self.answered_at, datetime) or self.answered_at.tzinfo is None:
            raise ReportTimeError(self.answered_at, "needs an aware timestamp")
        unknown = sorted(set(self.answers) - set(CODES))
        if unknown:
            raise RedFlagError(f"unknown questions {unknown}; the questions are {list(CODES)}")
        missing = [c for c in CODES if c not in self.answers]
        if missing:
            raise RedFlagError(f"unanswered questions {missing}: answer every one yes or no")
        for code, value in self.answers.items():
            if not isinstance(value, bool):
                raise RedFlagError(f"{code} must be answered true or false; got {value!r}")

    @property
    def positive(self) -> tuple[str, ...]:
        """The questions answered yes, in the order they are asked."""
        return tuple(c for c in CODES if self.answers[c])

    @property
    def is_positive(self) -> bool:
        """Whether any answer was yes."""
        return bool(self.positive)

    @property
    def care(self) -> Care | None:
        """The most urgent care a yes asks for (None for a negative screen)."""
        cares = {_BY_CODE[c].care for c in self.positive}
        if not cares:
            return None
        return Care.EMERGENCY if Care.EMERGENCY in cares else Care.URGENT


def screen(answers: Mapping[str, bool], *, answered_at: datetime, source: Source | str) -> Screen:
    """A validated screen; `source` is 'diary' or 'weekly'."""
    try:
        src = Source(source)
    except ValueError:
        raise RedFlagError(
            f"source must be one of {[s.value for s in Source]}; got {source!r}"
        ) from None
    return Screen(answered_at, src, dict(answers))


@dataclass(frozen=True)
class StoredScreen:
    """A stored positive-or-negative screen as the rules read it (on the patient's local day)."""

    screen_id: int
    day: date
    answered_at: datetime
    source: Source
    positive: tuple[str, ...]

    @property
    def care(self) -> Care | None:
        """The most urgent care the positive answers ask for."""
        cares = {_BY_CODE[c].care for c in self.positive if c in _BY_CODE}
        if not cares:
            return None
        return Care.EMERGENCY if Care.EMERGENCY in cares else Care.URGENT


@dataclass(frozen=True)
class Pause:
    """A pause of the patient's progression: from a positive screen until a clinician clears it."""

    pause_id: int
    started_at: datetime
    start_day: date
    reason: str
    screen_id: int | None
    cleared_at: datetime | None
    cleared_day: date | None
    cleared_by: int | None
    clear_note: str | None

    def covers(self, day: date) -> bool:
        """Whether progression is paused on local `day` (the clearing day is no longer paused)."""
        return self.start_day <= day and (self.cleared_day is None or day < self.cleared_day)


def pathology(code: str) -> str:
    """What a question screens for."""
    return _BY_CODE[code].pathology
