"""The patient's own page: today framed as progress, questionnaire instructions, feedback.

Wording follows graded-activity practice: the quota is a ceiling as much as a
target, so reaching it is framed as done for the day ("stopping here is part
of the plan"), and going beyond it as a cue to rest, never as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

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
