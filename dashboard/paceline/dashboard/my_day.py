"""The patient's own page: today framed as progress, its forms' ratings, instructions, feedback.

Wording follows graded-activity practice: the quota is a ceiling as much as a
target, so reaching it is framed as done for the day ("stopping here is part
of the plan"), and going beyond it as a cue to rest, never as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from paceline.pacing.progression import TodayState, TodayStatus
from paceline.pacing.questionnaires import Instrument

STOP_HERE = "Stopping here is part of the plan."


@dataclass(frozen=True)
class TodayCard:
    """What the top of the patient's page says."""

    progress: float
    headline: str
    message: str
    reassurance: str | None


def today_card(status: TodayStatus | None) -> TodayCard:
    """Today's progress toward the quota as a bar, a headline and the engine's sentence."""
    if status is None:
        return TodayCard(
            0.0, "Your plan starts soon", "Your clinician is setting up your plan.", None
        )
    if status.state is TodayState.BASELINE or status.quota is None:
        return TodayCard(0.0, "Getting to know your usual day", status.message, None)
    if status.quota == 0:
        return TodayCard(1.0, "A rest day in your plan", status.message, None)
    unit = status.measure.unit
    fraction = min(1.0, status.fraction or 0.0)
    headline = f"{status.done:.0f} of {status.quota:.0f} {unit} today"
    reassurance = None
    if status.state in (TodayState.MET, TodayState.ABOVE_ENVELOPE):
        reassurance = f"You have done today's plan. {STOP_HERE}"
    elif fraction >= 0.5:
        reassurance = "More than half way. Steady progress is what builds tolerance."
    return TodayCard(fraction, headline, status.message, reassurance)


@dataclass(frozen=True)
class Rating:
    """One slider of a form: the keyword of the pacing call it fills, its wording and scale."""

    name: str
    label: str
    high: int
    start: int
    key: str
    low: int = 0


#: The diary's ratings (`intake.submit_diary`), 0-10 like the paper diary.
DIARY: Final = (
    Rating("pain_now", "Pain right now (0 = none, 10 = worst imaginable)", 10, 3, "diary_pain"),
    Rating("fatigue", "Fatigue (0-10)", 10, 3, "diary_fatigue"),
    Rating("fear_of_movement", "Worry about moving (0-10)", 10, 3, "diary_fear"),
    Rating(
        "sleep_quality", "Last night's sleep (0 = very poor, 10 = very good)", 10, 6, "diary_sleep"
    ),
)

#: A logged exercise session's ratings (`intake.submit_exercise`): session RPE and pain.
EXERCISE: Final = (
    Rating("rpe", "How hard was the whole session? (0 = rest, 10 = maximal)", 10, 4, "ex_rpe"),
    Rating("pain_before", "Pain before (0-10)", 10, 3, "ex_pain_before"),
    Rating("pain_after", "Pain after (0-10)", 10, 3, "ex_pain_after"),
)


def exposure_ratings(fear_rating: int) -> tuple[Rating, ...]:
    """A practised step's ratings (`ladder.record_session`), fear starting at the rung's rating."""
    return (
        Rating("fear_before", "Fear before (0-100)", 100, fear_rating, "exp_before"),
        Rating(
            "peak_distress",
            "Highest fear or distress during it (0-100)",
            100,
            fear_rating,
            "exp_peak",
        ),
        Rating("fear_after", "Fear after (0-100)", 100, fear_rating, "exp_after"),
        Rating("expected_harm", "How much harm did you expect? (0-100)", 100, 50, "exp_expected"),
        Rating("actual_harm", "How much harm happened? (0-100)", 100, 10, "exp_actual"),
    )


def instructions(inst: Instrument) -> str:
    """How to answer an instrument (the licensed item wording is on the paper form)."""
    return (
        f"{inst.title}: answer each item from {inst.low} to {inst.high} as on your paper form"
        f" ({inst.source})."
    )


def exposure_feedback(before: int, after: int, expected: int, actual: int) -> str:
    """A sentence about what the session showed (expectancy violation first; Craske 2014)."""
    parts = []
    if expected > actual:
        parts.append(f"You expected {expected} of harm and {actual} happened")
    if before > after:
        parts.append(f"your fear went from {before} to {after}")
    if not parts:
        return "Session logged. Every practice counts, whatever it felt like."
    return "Session logged. " + " and ".join(parts).capitalize() + "."


def stopped_feedback(debrief: str | None) -> str:
    """What the patient reads after a session that was stopped at the stop rule."""
    return (
        "Session logged as stopped. Stopping when it was too much was the right call;"
        " your clinician will go over it with you before you repeat this step."
        + (f" ({debrief})" if debrief else "")
    )
