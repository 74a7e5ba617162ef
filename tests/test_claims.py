"""Claims ([words]{.claim if="..."}) are found with their line, evaluated against the registry
with a closed grammar, and a claim the results do not support fails with file, line and values."""

from __future__ import annotations

import pytest

from metabuild import claims
from metabuild.claims import ClaimError, check_document, evaluate, find_claims

NUMBERS = {
    "week2.p": {"value": 0.012, "text": "= .012"},
    "week4.p": {"value": 0.31, "text": "= .31"},
    "week4.estimate": {"value": -0.4, "text": "\u22120.40"},
    "week2.estimate": {"value": -2.2, "text": "\u22122.20"},
    "protocol.alpha": {"value": 0.05, "text": ".05"},
    "primary.studies": {"value": ["amr2010", "sigtermans2009"], "text": "Amr 2010, Sigtermans 2009"},
    "primary.k": {"value": 6, "text": "6"},
    "week8.p": {"value": None, "text": "not estimable"},
}


def test_a_claim_is_found_with_its_line_words_and_condition():
    text = 'line one\nthe effect was [still there at two weeks]{.claim if="week2.p < protocol.alpha"}.\n'
    found, problems = find_claims(text, "paper.qmd")
    assert problems == []
    assert [(c.line, c.text, c.condition) for c in found] == [
        (2, "still there at two weeks", "week2.p < protocol.alpha")
    ]


def test_a_claim_may_hold_spans_and_wrap_across_lines():
    text = 'x\n[pain was lower at [week2.weeks]{.num .word}\nweeks]{.claim if="week2.p <\n  protocol.alpha"}\n'
    (claim,), problems = find_claims(text, "p.qmd")
    assert problems == []
    assert claim.line == 2
    assert claim.text == "pain was lower at [week2.weeks]{.num .word} weeks"
    assert claim.condition == "week2.p < protocol.alpha"


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ("week2.p < protocol.alpha", True),
        ("week4.p < protocol.alpha", False),
        ("week2.p < protocol.alpha and week4.p >= protocol.alpha", True),
        ("not week4.p < protocol.alpha", True),
        ("abs(week4.estimate) < abs(week2.estimate)", True),
        ("'amr2010' in primary.studies", True),
        ("'salas2012' not in primary.studies", True),
        ("len(primary.studies) == 2 and primary.k - 4 == 2", True),
        ("0.01 < week2.p < 0.02", True),
        ("week2.estimate * 2 < -5", False),
    ],
)
def test_conditions_evaluate_with_registry_values(condition, holds):
    result, used = evaluate(condition, NUMBERS)
    assert result is holds
    assert used  # the values used are reported back for the message
    assert all(k in NUMBERS for k in used)


@pytest.mark.parametrize(
    "condition",
    [
        "__import__('os').system('true')",
        "week2.p.__class__",
        "open('/etc/passwd')",
        "[x for x in primary.studies]",
        "lambda: 1",
        "primary.studies[0] == 'amr2010'",
        "week2.p if True else 1",
        "f'{week2.p}'",
        "week2.p ** 2 < 1",
    ],
)
def test_anything_but_the_grammar_is_refused(condition):
    with pytest.raises(ClaimError):
        evaluate(condition, NUMBERS)


def test_unknown_key_and_not_estimable_value_are_named():
    with pytest.raises(ClaimError, match="'week9.p', which is not in the registry"):
        evaluate("week9.p < 0.05", NUMBERS)
    with pytest.raises(ClaimError, match="week8.p, which is not estimable"):
        evaluate("week8.p < 0.05", NUMBERS)


def test_a_false_claim_fails_the_check_naming_file_line_condition_and_values(tmp_path):
    qmd = tmp_path / "paper.qmd"
    qmd.write_text(
        "Intro.\n\nAt four weeks [the difference was still significant]{.claim\n"
        'if="week4.p < protocol.alpha"} and at two [it was too]{.claim if="week2.p < protocol.alpha"}.\n',
        encoding="utf-8",
    )
    with pytest.raises(ClaimError) as error:
        check_document(qmd, NUMBERS, display="manuscript/paper.qmd")
    message = str(error.value)
    assert "manuscript/paper.qmd:3" in message
    assert '"the difference was still significant"' in message
    assert "week4.p < protocol.alpha is false with week4.p = 0.31 (printed = .31), protocol.alpha = 0.05" in message
    assert "it was too" not in message  # the true claim is not reported
    assert message.startswith("1 problem(s)")


def test_true_claims_pass_and_are_returned(tmp_path):
    qmd = tmp_path / "paper.qmd"
    qmd.write_text('[lower]{.claim if="week2.estimate < 0"} and [k]{.num}\n', encoding="utf-8")
    (claim,) = check_document(qmd, NUMBERS)
    assert claim.holds is True and claim.values == {"week2.estimate": -2.2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p [primary.k{.num} and more\n", "paper.qmd:1: a {.num} attribute that follows no [...]"),
        ("ok\nsee primary.k]{.num}\n", "paper.qmd:2: the [...] before {.num} is never opened"),
        ("[a claim]{.claim}\n", 'paper.qmd:1: the claim "a claim" has no if="condition"'),
        ("x {.cite} y\n", "paper.qmd:1: a {.cite} attribute that follows no [...]"),
    ],
)
def test_malformed_spans_are_refused_with_their_line(tmp_path, text, expected):
    qmd = tmp_path / "paper.qmd"
    qmd.write_text(text, encoding="utf-8")
    with pytest.raises(ClaimError, match=r"problem\(s\)") as error:
        check_document(qmd, NUMBERS, display="paper.qmd")
    assert expected in str(error.value)


def test_the_manuscripts_claims_all_parse():
    """Every claim in the project's own documents uses the grammar (whatever the data say)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    total = 0
    for qmd in sorted((root / "manuscript").glob("*.qmd")):
        found, problems = find_claims(qmd.read_text(encoding="utf-8"), str(qmd))
        assert problems == []
        for claim in found:
            claims.parse_condition(claim.condition)
        total += len(found)
    assert total >= 20
