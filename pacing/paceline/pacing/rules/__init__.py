"""The flag rules: one module per family of detectors, and this catalogue of what the engine runs.

To add a rule, write its `RuleSpec` and its detector (a function of a
`History` returning one `DaySignal` per day from `History.first` on, with the
thresholds it decided by) in the module of its family, or a new module here,
and add it to `RULES` below. The state machine that turns signals into flag
episodes (`paceline.pacing.flags`) and the engine need no change.

=================  ========================================================
module             rules
=================  ========================================================
``overexertion``   boom: over quota, above the HR ceiling, ACWR spike, pain after a boom
``avoidance``      bust: under quota, chronic decline, skipped exposures, fear-avoidance
``contingency``    pain-contingent pacing (same-day and next-day lags)
``cycling``        boom-bust cycling
``dataquality``    no wear, silent device, unusable metrics, missing diary
``flare``          flare episode, flare risk above threshold
``safety``         a positive red-flag screen (held while progression is paused),
                   an exposure session stopped at the stop rule
``relapse``        maintenance phase: renewed avoidance, returning boom-bust (weekly
                   windows; the programme's bust and boom-bust rules stand down)
=================  ========================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from paceline.pacing.flags import DaySignal, Flag, RuleSpec, episodes
from paceline.pacing.history import History
from paceline.pacing.rules import (
    avoidance,
    contingency,
    cycling,
    dataquality,
    flare,
    overexertion,
    relapse,
    safety,
)
from paceline.pacing.rules.relapse import programme_only


@dataclass(frozen=True)
class Rule:
    """A flag rule: what it is called and how it reads a history."""

    spec: RuleSpec
    detect: Callable[[History], list[DaySignal]]

    def flags(self, h: History) -> list[Flag]:
        """The rule's episodes over the days of the history the rules decide on."""
        return episodes(self.spec, self.detect(h))


RULES: Final[tuple[Rule, ...]] = (
    Rule(overexertion.OVER_QUOTA, overexertion.over_quota),
    Rule(overexertion.ABOVE_CEILING, overexertion.above_ceiling),
    Rule(overexertion.ACWR_SPIKE, overexertion.acwr_spike),
    Rule(overexertion.PAIN_AFTER_BOOM, overexertion.pain_after_boom),
    Rule(avoidance.UNDER_QUOTA, programme_only(avoidance.under_quota)),
    Rule(avoidance.CHRONIC_DECLINE, programme_only(avoidance.chronic_decline)),
    Rule(avoidance.SKIPPED_EXPOSURE, avoidance.skipped_exposure),
    Rule(avoidance.FEAR_AVOIDANCE, programme_only(avoidance.fear_avoidance)),
    Rule(contingency.PAIN_CONTINGENT, contingency.pain_contingent),
    Rule(cycling.BOOM_BUST, programme_only(cycling.boom_bust)),
    Rule(dataquality.NO_WEAR, dataquality.no_wear),
    Rule(dataquality.DEVICE_SILENT, dataquality.device_silent),
    Rule(dataquality.BAD_METRICS, dataquality.bad_metrics),
    Rule(dataquality.MISSING_DIARY, dataquality.missing_diary),
    Rule(flare.FLARE_EPISODE, flare.flare_episode),
    Rule(flare.FLARE_RISK, flare.risk_high),
    Rule(safety.RED_FLAG, safety.red_flag),
    Rule(safety.EXPOSURE_STOPPED, safety.exposure_stopped),
    Rule(relapse.RELAPSE_AVOIDANCE, relapse.relapse_avoidance),
    Rule(relapse.RELAPSE_BOOM_BUST, relapse.relapse_boom_bust),
)

#: Every rule id the engine manages.
RULE_IDS: Final[tuple[str, ...]] = tuple(r.spec.rule_id for r in RULES)


def all_flags(h: History) -> list[Flag]:
    """Every rule's episodes over the history."""
    return [f for rule in RULES for f in rule.flags(h)]
