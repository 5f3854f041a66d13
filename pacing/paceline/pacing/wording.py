"""The sentences patients and clinicians read about the plan, built from the numbers decided.

Every number in a sentence is the number the rule used, rounded for display in
one place (`amount`), so that the patient view, the plan's reason and the audit
trail never show two different values for one quantity (a quota of 53 is "53",
not "55" in one place and "53" in another, and a stored 4980.6 is never
"4980.6001").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Final

from paceline.pacing.days import Measure


def amount(m: Measure, value: float) -> str:
    """A quantity of measure `m` for display: whole steps, else at most one decimal."""
    if m is Measure.STEPS:
        return f"{value:,.0f}"
    text = f"{value:,.1f}"
    return text[:-2] if text.endswith(".0") else text


def number(value: float) -> str:
    """A plain number for display (at most one decimal)."""
    text = f"{value:,.1f}"
    return text[:-2] if text.endswith(".0") else text


def default_reason(
    baseline_days: int, start_fraction: float, step_fraction: float, period: int
) -> str:
    """Why version 1 exists."""
    return (
        f"default plan: baseline from the first {baseline_days} valid days, quota"
        f" from {start_fraction:.0%} of it, +{step_fraction:.0%} of baseline each {period} days"
        " when met"
    )


def baseline_reason(
    m: Measure, baseline: float, n_days: int, start_fraction: float, quota: float
) -> str:
    """Why the first quota is what it is."""
    return (
        f"baseline {amount(m, baseline)} {m.unit} from the first {n_days} valid days;"
        f" quota starts at {start_fraction:.0%} of it: {amount(m, quota)}"
    )


def first_quota_reason(start_fraction: float) -> str:
    """Why a quota appears on a plan that had a baseline but none (a clinician cleared it)."""
    return f"quota starts at {start_fraction:.0%} of the baseline"


def declared_flare_reason(step_back: str, clinician_reason: str) -> str:
    """A flare a clinician declared: what the step-back did, then the clinician's words."""
    return f"{step_back}. {clinician_reason}"


def step_back_reason(
    m: Measure,
    flare_start: date,
    *,
    previous: float,
    flare_fraction: float,
    stepped: float,
    floor: float,
    floor_fraction: float,
    baseline: float,
    quota: float,
) -> str:
    """What a flare did to the quota, with the real numbers (stepped back, or held at the floor)."""
    head = f"flare from {flare_start.isoformat()}: "
    floor_text = (
        f"the floor of {floor_fraction:.0%} of the baseline {amount(m, baseline)}"
        f" ({amount(m, floor)})"
    )
    if stepped >= floor:
        body = (
            f"quota stepped back to {flare_fraction:.0%} of {amount(m, previous)}"
            f" = {amount(m, quota)}"
        )
    elif previous <= floor:
        body = (
            f"{flare_fraction:.0%} of {amount(m, previous)} would be {amount(m, stepped)}, below"
            f" {floor_text}; the quota was already there and is held at {amount(m, quota)}"
        )
    else:
        body = (
            f"{flare_fraction:.0%} of {amount(m, previous)} would be {amount(m, stepped)}, below"
            f" {floor_text}; quota lowered only to the floor: {amount(m, quota)}"
        )
    return f"{head}{body}; rebuild from there"


def progression_reason(
    m: Measure,
    *,
    met_days: int,
    valid_days: int,
    start: date,
    end: date,
    step_fraction: float,
    quota: float,
) -> str:
    """Why the quota rose."""
    return (
        f"quota met on {met_days} of {valid_days} valid days"
        f" ({start.isoformat()} to {end.isoformat()}):"
        f" raised by {step_fraction:.0%} of baseline to {amount(m, quota)}"
    )


def _when(day: date, local_today: date | None) -> tuple[str, bool]:
    """How to name the day ("today" or its date) and whether it is still in progress."""
    if local_today is None or day == local_today:
        return "today", True
    return f"{day:%a} {day.isoformat()}", False


def baseline_message(day: date, local_today: date | None, seen: int, need: int) -> str:
    """The patient view while the baseline is measured."""
    when, current = _when(day, local_today)
    so_far = "so far" if current else f"by the end of {when}"
    tail = " Go about your day as usual." if current else ""
    return f"We are measuring your usual activity: {min(seen, need)} of {need} valid days {so_far}.{tail}"


def above_envelope_message(
    m: Measure, day: date, local_today: date | None, done: float, quota: float
) -> str:
    """The patient view above the day's envelope."""
    when, current = _when(day, local_today)
    figures = f"{amount(m, done)} of {amount(m, quota)} {m.unit}"
    if current:
        return f"You are above today's plan ({figures}); time to ease off and rest."
    return f"On {when} you went above the plan ({figures}); ease off the day after a high day."


def met_message(m: Measure, day: date, local_today: date | None, done: float, quota: float) -> str:
    """The patient view with the quota met."""
    when, current = _when(day, local_today)
    figures = f"{amount(m, done)} of {amount(m, quota)} {m.unit}"
    if current:
        return f"You have met today's plan ({figures}). Stopping here is part of the plan."
    return f"On {when} you met the plan ({figures})."


def below_message(
    m: Measure, *, day: date, local_today: date | None, done: float, quota: float, remaining: float
) -> str:
    """The patient view below the quota."""
    when, current = _when(day, local_today)
    figures = f"{amount(m, done)} of {amount(m, quota)} {m.unit}"
    if current:
        return (
            f"You have done {figures} today; {amount(m, remaining)} {m.unit} left in today's plan."
        )
    return f"On {when} you did {figures}, {amount(m, remaining)} short of the plan."


# Prescribed exercise -----------------------------------------------------------------------


def target_text(
    duration_min: float | None,
    repetitions: int | None,
    sets: int | None,
    hr_zone: tuple[int, int] | None,
) -> str:
    """A session target as people read it: "3 × 10 repetitions, 20 min in HR zone 2-3"."""
    parts = []
    if repetitions is not None:
        parts.append(
            f"{sets} × {repetitions} repetitions" if sets else f"{repetitions} repetitions"
        )
    if duration_min is not None:
        parts.append(f"{number(duration_min)} min")
    text = ", ".join(parts)
    if hr_zone is not None:
        low, high = hr_zone
        text += f" in HR zone {low}" if low == high else f" in HR zone {low}-{high}"
    return text


def exercise_rise_reason(name: str, n_sessions: int, previous: str, new: str) -> str:
    """Why a session target rose."""
    return (
        f"{name}: {n_sessions} sessions in a row reached {previous} without pain rising"
        f" afterwards; target raised to {new}"
    )


def exercise_step_down_reason(name: str, flare_start: date, previous: str, new: str) -> str:
    """What a flare did to a session target."""
    return (
        f"{name}: flare from {flare_start.isoformat()}: target stepped down from {previous}"
        f" to {new}; rebuild from there"
    )


def exercise_clinician_reason(name: str, new: str, reason: str) -> str:
    """A clinician set a session target."""
    return f"{name}: target set to {new}. {reason}"


def exercise_feedback(*, completed: bool, worsened: bool, rpe: int, minutes: float) -> str:
    """What the patient reads after logging a session (progress first, never blame)."""
    load = f"Session load {number(rpe * minutes)} (effort {rpe} × {number(minutes)} min)."
    if worsened:
        return (
            f"Logged. Pain rose after this session, so the target stays where it is for now;"
            f" that is how the plan keeps you safe. {load}"
        )
    if completed:
        return f"Logged: you reached today's target. {load}"
    return f"Logged. Every session counts, even a shorter one. {load}"


# Safety: red-flag screening (paceline.pacing.redflags) ------------------------------------

#: The red-flag questions as the patient reads them: plain words, one sign each, "new"
#: because a long-standing, already assessed sign is not a new red flag (Finucane 2020).
RED_FLAG_QUESTIONS: Final[Mapping[str, str]] = {
    "saddle_numbness": (
        "Do you have new numbness or tingling around your bottom, genitals or inner thighs?"
    ),
    "bladder_bowel": (
        "Have you had new trouble passing or holding urine, or lost control of your bladder"
        " or bowels?"
    ),
    "limb_weakness": (
        "Do you have new or worsening weakness, numbness or pins and needles in a leg or arm?"
    ),
    "fever": "Have you had a fever, chills or night sweats together with your pain?",
    "weight_loss": "Have you lost weight recently without trying to?",
    "night_pain": ("Does pain wake you at night and not ease when you rest or change position?"),
    "trauma": "Have you had a fall, an accident or another injury since your last check?",
}

RED_FLAG_EMERGENCY: Final = (
    "Please seek medical care now. What you told us can be a sign of a problem that needs"
    " an emergency check today: go to an emergency department or call your emergency number"
    " (999 in the UK, 112 in Europe, 911 in North America). Do not wait for your next"
    " appointment. Your care team has been told, and your plan is paused until they have"
    " spoken with you."
)
RED_FLAG_URGENT: Final = (
    "Please see a doctor today. What you told us needs a medical check before you carry on"
    " with your programme: call your GP or doctor's practice today, or an urgent care"
    " service if they are closed. If you feel very unwell, go to an emergency department."
    " Your care team has been told, and your plan is paused until they have spoken with you."
)
RED_FLAG_PAUSED: Final = (
    "Your plan is paused after your safety check. Your care team will contact you; until"
    " then keep to what you are doing now and do not push further. If you get worse, seek"
    " medical care."
)


def red_flag_message(emergency: bool) -> str:
    """What the patient reads after a positive red-flag answer."""
    return RED_FLAG_EMERGENCY if emergency else RED_FLAG_URGENT


def red_flag_summary(positive: Sequence[str], pathologies: Sequence[str]) -> str:
    """The clinician's one line about a positive screen."""
    pairs = ", ".join(f"{c} ({p})" for c, p in zip(positive, pathologies, strict=True))
    return f"positive red-flag screen: {pairs}; progression paused until cleared"


def pause_reason(positive: Sequence[str]) -> str:
    """Why progression was paused."""
    return "positive red-flag screen (" + ", ".join(positive) + ")"


def exposure_debrief(why: str, patient_words: str | None) -> str:
    """The debrief note of a stopped exposure session: why it stopped, then the patient's words."""
    text = f"Stopped: {why}. Go over it with the patient before repeating this step."
    if patient_words and patient_words.strip():
        text += f" The patient wrote: {patient_words.strip()}"
    return text[:4000]


def rest_day_message(day: date, local_today: date | None) -> str:
    """A rest day with no quota."""
    when, _ = _when(day, local_today)
    return f"{when[0].upper()}{when[1:]} is a rest day in your plan: no goal, rest is part of it."


def lighter_day_note(kind: str) -> str:
    """The note before a lighter day's message."""
    if kind == "rest":
        return "A rest day: a lighter goal today."
    return "A lighter week: your goal is lower this week to let your body consolidate."


# Goals and milestones ----------------------------------------------------------------------


def rung_mastered(activity: str) -> str:
    """A rung of the fear ladder mastered."""
    return f"You mastered a step on your ladder: {activity}."


def goal_reached(title: str) -> str:
    """A valued goal reached."""
    return f"Goal reached: {title}. This is what the work was for."


def target_raised(name: str, target: str) -> str:
    """An exercise target raised after consistent sessions."""
    return f"Your {name} target went up to {target}: your body is handling more."


def week_on_plan(met_days: int, valid_days: int) -> str:
    """A plan period met on enough days."""
    return f"A week on plan: you met your activity plan on {met_days} of {valid_days} days."


def goal_progress(title: str, fraction: float) -> str:
    """How far a goal has come, as progress."""
    if fraction >= 1.0:
        return f"{title}: reached"
    if fraction <= 0.0:
        return f"{title}: the first steps are ahead"
    return f"{title}: {fraction:.0%} of the way"
