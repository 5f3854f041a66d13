"""The flag evidence in sentences (`paceline.pacing.flag_wording`), the words both front ends print."""

from __future__ import annotations

import subprocess
import sys

from paceline.pacing import flag_wording


def test_evidence_reads_as_sentences_with_the_detectors_numbers() -> None:
    ev = {
        "rule": "Load above the day's envelope (quota × envelope fraction)",
        "thresholds": {"envelope_fraction": 1.3},
        "episode_days": 2,
        "first_day": "2026-11-20",
        "last_day": "2026-11-21",
        "daily": [
            {"day": "2026-11-20", "load": 62.0, "quota": 35.0, "ratio": 1.77, "envelope": 45.5}
        ],
    }
    out = flag_wording.sentences("boom.over_quota", ev)
    assert out[0] == (
        "Load above the day's envelope (quota × envelope fraction): 2 days from 2026-11-20"
        " to 2026-11-21."
    )
    assert out[1] == "Thresholds used: envelope fraction 1.30."
    assert out[2] == "On 2026-11-20: load 62, quota 35, load/quota 177%, envelope 46."
    assert flag_wording.rule_title("boom.over_quota") == ev["rule"]


def test_the_cli_words_flags_without_the_dashboard() -> None:
    # The sentences are pacing's (the dashboard holds no business rules): the CLI's
    # `flags` and `patients show` load none of the dashboard to print them.
    probe = (
        "import sys, paceline.cli.flags, paceline.cli.patients;"
        "print(sorted(m for m in sys.modules if m.startswith('paceline.dashboard')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"
