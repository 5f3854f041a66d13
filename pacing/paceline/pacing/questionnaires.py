"""Questionnaire scoring exactly as published: TSK-11, TSK-17, PCS and PSEQ.

Every instrument is a frozen `Instrument` value: number of items, the answer
range, the reverse-keyed items and the subscales. `score` validates the answers
(count, whole numbers, range) and returns a `QuestionnaireScore`.

Reverse keying: of these four versions only the TSK-17 has reverse-keyed items
(4, 8, 12 and 16, scored ``5 - answer``). The TSK-11 was made by removing those
four items and items 9 and 14 (Woby et al. 2005), so a TSK-11 answer sheet is
summed as given; a 17-answer sheet submitted as TSK-11 is refused with a hint
rather than summed without its reverse keying. PCS and PSEQ have no
reverse-keyed items.

Reassessment: TSK-11, PCS and PSEQ are given at enrolment (the baseline) and
again every N weeks (`reassessment`; N is the plan setting
``reassess_every_weeks``, default `DEFAULT_REASSESS_WEEKS`).

References
----------
Kori SH, Miller RP, Todd DD. Kinesiophobia: a new view of chronic pain behavior.
Pain Manag 1990;3:35-43 (TSK-17; scoring as in Miller, Kori & Todd 1991).
Woby SR, Roach NK, Urmston M, Watson PJ. Psychometric properties of the TSK-11:
a shortened version of the Tampa Scale for Kinesiophobia. Pain 2005;117:137-144.
Sullivan MJL, Bishop SR, Pivik J. The Pain Catastrophizing Scale: development and
validation. Psychol Assess 1995;7:524-532; Sullivan MJL. The Pain Catastrophizing
Scale: user manual. Montreal: McGill University; 2009.
Nicholas MK. The pain self-efficacy questionnaire: taking pain into account.
Eur J Pain 2007;11:153-163.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Final

from paceline.pacing.errors import NotAnIntegerError, OutOfRangeError, QuestionnaireError


class InstrumentName(StrEnum):
    """The questionnaires Paceline scores (values are the names stored in the database)."""

    TSK_11 = "TSK-11"
    TSK_17 = "TSK-17"
    PCS = "PCS"
    PSEQ = "PSEQ"


@dataclass(frozen=True)
class Instrument:
    """How one published questionnaire is answered and scored."""

    name: InstrumentName
    title: str
    n_items: int
    low: int
    high: int
    reverse_items: frozenset[int] = frozenset()
    subscales: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    source: str = ""

    @property
    def total_range(self) -> tuple[int, int]:
        """Lowest and highest possible total."""
        return self.n_items * self.low, self.n_items * self.high


TSK_11: Final = Instrument(
    InstrumentName.TSK_11,
    "Tampa Scale for Kinesiophobia, 11 items",
    n_items=11,
    low=1,
    high=4,
    source="Woby et al. 2005, Pain 117:137-144",
)
TSK_17: Final = Instrument(
    InstrumentName.TSK_17,
    "Tampa Scale for Kinesiophobia, 17 items",
    n_items=17,
    low=1,
    high=4,
    reverse_items=frozenset({4, 8, 12, 16}),
    source="Kori, Miller & Todd 1990; Miller, Kori & Todd 1991",
)
PCS: Final = Instrument(
    InstrumentName.PCS,
    "Pain Catastrophizing Scale",
    n_items=13,
    low=0,
    high=4,
    subscales={
        "rumination": (8, 9, 10, 11),
        "magnification": (6, 7, 13),
        "helplessness": (1, 2, 3, 4, 5, 12),
    },
    source="Sullivan, Bishop & Pivik 1995, Psychol Assess 7:524-532",
)
PSEQ: Final = Instrument(
    InstrumentName.PSEQ,
    "Pain Self-Efficacy Questionnaire",
    n_items=10,
    low=0,
    high=6,
    source="Nicholas 2007, Eur J Pain 11:153-163",
)

INSTRUMENTS: Final[Mapping[InstrumentName, Instrument]] = {
    i.name: i for i in (TSK_11, TSK_17, PCS, PSEQ)
}

#: The TSK-17 items kept in the TSK-11, in TSK-11 order (Woby et al. 2005 removed
#: the reverse-keyed items 4, 8, 12, 16 and the weak items 9 and 14).
TSK_11_FROM_TSK_17: Final = (1, 2, 3, 5, 6, 7, 10, 11, 13, 15, 17)


@dataclass(frozen=True)
class QuestionnaireScore:
    """A scored answer sheet: the answers as given, the keyed item scores and the totals."""

    instrument: InstrumentName
    answers: tuple[int, ...]
    item_scores: tuple[int, ...]
    total: int
    subscales: Mapping[str, int]

    def as_json(self) -> dict[str, object]:
        """The scores as stored in `questionnaire_response.scores`."""
        low, high = INSTRUMENTS[self.instrument].total_range
        return {
            "total": self.total,
            "range": [low, high],
            "subscales": dict(self.subscales),
            "item_scores": list(self.item_scores),
        }


def instrument(name: str) -> Instrument:
    """The instrument called `name` (``TSK-11``, ``TSK-17``, ``PCS``, ``PSEQ``)."""
    try:
        return INSTRUMENTS[InstrumentName(name)]
    except ValueError:
        valid = ", ".join(i.value for i in InstrumentName)
        raise QuestionnaireError(name, f"unknown instrument; valid ones are {valid}") from None


def _count_hint(inst: Instrument, n: int) -> str:
    if inst.name is InstrumentName.TSK_11 and n == TSK_17.n_items:
        return (
            "; 17 answers look like the TSK-17, whose reverse-keyed items 4, 8, 12 and 16 "
            "are not in the TSK-11; submit them as TSK-17"
        )
    if inst.name is InstrumentName.TSK_17 and n == TSK_11.n_items:
        return "; 11 answers look like the TSK-11; submit them as TSK-11"
    return ""


def score(name: str | InstrumentName, answers: Sequence[int]) -> QuestionnaireScore:
    """Validate one answer sheet (items in published order) and score it as published."""
    inst = instrument(str(name))
    if len(answers) != inst.n_items:
        raise QuestionnaireError(
            inst.name,
            f"needs exactly {inst.n_items} answers, got {len(answers)}"
            + _count_hint(inst, len(answers)),
        )
    checked: list[int] = []
    for number, answer in enumerate(answers, start=1):
        label = f"{inst.name} item {number}"
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise NotAnIntegerError(label, answer)
        if not inst.low <= answer <= inst.high:
            raise OutOfRangeError(label, answer, inst.low, inst.high)
        checked.append(answer)
    keyed = tuple(
        (inst.low + inst.high - a) if n in inst.reverse_items else a
        for n, a in enumerate(checked, start=1)
    )
    subscales = {name: sum(keyed[i - 1] for i in items) for name, items in inst.subscales.items()}
    return QuestionnaireScore(inst.name, tuple(checked), keyed, sum(keyed), subscales)


def tsk11_from_tsk17(answers: Sequence[int]) -> QuestionnaireScore:
    """Score the TSK-11 contained in a TSK-17 answer sheet (Woby et al. 2005 item mapping)."""
    full = score(InstrumentName.TSK_17, answers)
    return score(InstrumentName.TSK_11, [full.answers[i - 1] for i in TSK_11_FROM_TSK_17])


# Reassessment schedule ---------------------------------------------------------------------

#: The instruments given at every reassessment (issue 14): fear of movement, catastrophising
#: and self-efficacy, the three the graded-exposure and graded-activity protocols track.
REASSESSED: Final = (InstrumentName.TSK_11, InstrumentName.PCS, InstrumentName.PSEQ)
#: Weeks between reassessments when the plan does not say. Four weeks is the clinical
#: convention of a monthly review, not a figure from these instruments' papers; the plan
#: setting ``reassess_every_weeks`` changes it per patient (1 to 26 weeks).
DEFAULT_REASSESS_WEEKS: Final = 4
REASSESS_WEEKS_RANGE: Final = (1, 26)
#: An answer sheet given up to this many days before an occasion counts for that occasion
#: (a patient who fills it in on Friday for Monday's review is not asked again).
EARLY_DAYS: Final = 3
#: Instruments whose answers also count for another one: a TSK-17 contains the TSK-11
#: (Woby et al. 2005), so a TSK-17 answer sheet covers a TSK-11 reassessment.
COUNTS_FOR: Final[Mapping[InstrumentName, InstrumentName]] = {
    InstrumentName.TSK_17: InstrumentName.TSK_11
}


@dataclass(frozen=True)
class Reassessment:
    """Where a patient stands in the reassessment schedule on one local day.

    Occasion 0 is the enrolment day (the baseline); occasion k is k x `every_weeks`
    weeks later. `due` lists the instruments not answered for the current occasion.
    """

    every_weeks: int
    index: int
    occasion: date
    next_occasion: date
    due: tuple[InstrumentName, ...]
    last_answered: Mapping[InstrumentName, date | None]

    @property
    def window_start(self) -> date:
        """The first day an answer counts for the current occasion."""
        return self.occasion - timedelta(days=EARLY_DAYS)


def check_reassess_weeks(weeks: object) -> int:
    """`weeks` as a whole number of weeks in `REASSESS_WEEKS_RANGE`, or a typed error."""
    label = "reassess_every_weeks"
    if isinstance(weeks, bool) or not isinstance(weeks, int):
        raise NotAnIntegerError(label, weeks)
    low, high = REASSESS_WEEKS_RANGE
    if not low <= weeks <= high:
        raise OutOfRangeError(label, weeks, low, high)
    return weeks


def occasion_of(enrolled_day: date, day: date, every_weeks: int) -> tuple[int, date]:
    """The index and day of the latest occasion on or before `day` (occasion 0 before enrolment)."""
    period = 7 * check_reassess_weeks(every_weeks)
    index = max(0, (day - enrolled_day).days // period)
    return index, enrolled_day + timedelta(days=index * period)


def reassessment(
    enrolled_day: date,
    today: date,
    answered: Mapping[str, date | None],
    *,
    every_weeks: int = DEFAULT_REASSESS_WEEKS,
    instruments: Sequence[InstrumentName] = REASSESSED,
) -> Reassessment:
    """Which of `instruments` are due on `today`, given the last local day each was answered.

    `answered` maps instrument names (as stored) to the local day of the latest
    answer sheet; a TSK-17 counts for the TSK-11 (`COUNTS_FOR`).
    """
    index, occasion = occasion_of(enrolled_day, today, every_weeks)
    latest: dict[InstrumentName, date | None] = dict.fromkeys(instruments)
    for name, day in answered.items():
        inst = instrument(name).name
        inst = COUNTS_FOR.get(inst, inst)
        if inst in latest and day is not None:
            before = latest[inst]
            latest[inst] = day if before is None else max(before, day)
    first = occasion - timedelta(days=EARLY_DAYS)
    due = tuple(i for i in instruments if (d := latest[i]) is None or d < first)
    if today < enrolled_day:
        due = ()
    return Reassessment(
        every_weeks=every_weeks,
        index=index,
        occasion=occasion,
        next_occasion=occasion + timedelta(weeks=every_weeks),
        due=due,
        last_answered=latest,
    )
