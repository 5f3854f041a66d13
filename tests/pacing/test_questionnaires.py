"""Questionnaires scored exactly as published, with item validation and reverse keying."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paceline.pacing.errors import (
    NotAnIntegerError,
    OutOfRangeError,
    PacingError,
    QuestionnaireError,
)
from paceline.pacing.questionnaires import (
    INSTRUMENTS,
    PCS,
    TSK_11_FROM_TSK_17,
    InstrumentName,
    score,
    tsk11_from_tsk17,
)


def test_pcs_worked_example_gives_total_and_the_three_subscales() -> None:
    # Rumination = items 8-11, magnification = 6, 7, 13, helplessness = 1-5 and 12
    # (Sullivan, Bishop & Pivik 1995; PCS user manual).
    answers = [2, 3, 1, 2, 3, 0, 1, 4, 4, 3, 2, 1, 0]
    result = score("PCS", answers)
    assert result.total == 26
    assert result.subscales == {"rumination": 13, "magnification": 1, "helplessness": 12}


def test_pcs_extremes_are_0_and_52() -> None:
    assert score("PCS", [0] * 13).total == 0
    top = score("PCS", [4] * 13)
    assert top.total == 52
    assert top.subscales == {"rumination": 16, "magnification": 12, "helplessness": 24}


def test_tsk11_is_summed_as_given_from_11_to_44() -> None:
    assert score("TSK-11", [1] * 11).total == 11
    assert score("TSK-11", [4] * 11).total == 44
    assert score("TSK-11", [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3]).total == 26


def test_tsk17_reverses_items_4_8_12_16() -> None:
    # Strongly agreeing with everything: 13 items score 4, the 4 reverse-keyed items score 1.
    assert score("TSK-17", [4] * 17).total == 13 * 4 + 4 * 1
    assert score("TSK-17", [1] * 17).total == 13 * 1 + 4 * 4
    only_item_4 = [1] * 17
    only_item_4[3] = 4
    result = score("TSK-17", only_item_4)
    assert result.item_scores[3] == 1
    assert result.answers[3] == 4


def test_tsk11_inside_a_tsk17_sheet_uses_the_woby_items() -> None:
    answers = list(range(1, 5)) * 4 + [1]
    derived = tsk11_from_tsk17(answers)
    assert derived.instrument is InstrumentName.TSK_11
    assert derived.answers == tuple(answers[i - 1] for i in TSK_11_FROM_TSK_17)
    assert not {4, 8, 12, 16} & set(TSK_11_FROM_TSK_17)


def test_pseq_is_summed_from_0_to_60() -> None:
    assert score("PSEQ", [6] * 10).total == 60
    assert score("PSEQ", [0, 1, 2, 3, 4, 5, 6, 5, 4, 3]).total == 33


def test_seventeen_answers_sent_as_tsk11_are_refused_with_a_hint() -> None:
    with pytest.raises(QuestionnaireError, match="TSK-17"):
        score("TSK-11", [2] * 17)


@pytest.mark.parametrize(
    ("instrument", "answers", "error"),
    [
        ("PCS", [0] * 12, QuestionnaireError),
        ("PCS", [0] * 12 + [5], OutOfRangeError),
        ("TSK-11", [0] + [1] * 10, OutOfRangeError),
        ("PSEQ", [7] + [0] * 9, OutOfRangeError),
        ("PSEQ", [1.5] + [0] * 9, NotAnIntegerError),
        ("PSEQ", [True] + [0] * 9, NotAnIntegerError),
        ("ODI", [0] * 10, QuestionnaireError),
    ],
)
def test_invalid_sheets_are_refused(
    instrument: str, answers: list[int], error: type[PacingError]
) -> None:
    with pytest.raises(error):
        score(instrument, answers)


def test_an_out_of_range_item_names_its_number() -> None:
    with pytest.raises(OutOfRangeError, match="PCS item 13"):
        score("PCS", [0] * 12 + [9])


@given(st.data())
def test_every_valid_sheet_scores_inside_the_published_range(data: st.DataObject) -> None:
    inst = data.draw(st.sampled_from(list(INSTRUMENTS.values())))
    answers = data.draw(
        st.lists(st.integers(inst.low, inst.high), min_size=inst.n_items, max_size=inst.n_items)
    )
    result = score(inst.name, answers)
    low, high = inst.total_range
    assert low <= result.total <= high
    if inst is PCS:
        assert sum(result.subscales.values()) == result.total
