"""exact_match and token_f1 against SQuAD's official normalization and F1."""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

import pytest

from harness.metrics import ScoringRow, get_metric
from harness.metrics.match import exact_match_score, token_f1_score
from harness.metrics.text import squad_normalize, squad_tokens


def official_normalize_answer(s: str) -> str:
    """``normalize_answer`` as published in SQuAD's evaluate-v1.1.py (and v2.0)."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def official_f1(prediction: str, ground_truth: str) -> float:
    """``f1_score`` from SQuAD's evaluate-v1.1.py."""
    prediction_tokens = official_normalize_answer(prediction).split()
    ground_truth_tokens = official_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def score(name: str, output: str, *expected: str) -> float | None:
    row = ScoringRow(input="", output=output, expected=expected, context=None, latency_s=None)
    return get_metric(name).score(row)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("  an   apple,  a   day! ", "apple day"),
        ("Theory of the atom.", "theory of atom"),  # "the" inside a word stays
        ("A.B.C.", "abc"),  # punctuation removed before articles: not "a b c"
        ("the-end", "theend"),
        ("Anna ate an ANT", "anna ate ant"),
        ("$1,000.50 (approx.)", "100050 approx"),
        ("snake_case", "snakecase"),
        ("\tTabs\nand\r\nnewlines ", "tabs and newlines"),
        ("", ""),
        ("The", ""),
    ],
)
def test_normalization_known_values(text: str, normalized: str) -> None:
    assert squad_normalize(text) == normalized
    assert official_normalize_answer(text) == normalized


def test_normalization_matches_the_official_script_on_real_text(
    pubmedqa: list[dict[str, Any]],
) -> None:
    checked = 0
    for record in pubmedqa:
        for text in (record["question"], record["answer"], record["context"]):
            if text.isascii():
                assert squad_normalize(text) == official_normalize_answer(text)
                checked += 1
    assert checked > 2500


def test_unicode_punctuation_is_removed_too() -> None:
    # The official script keeps these; chat models emit them, and they should not decide.
    assert squad_normalize("“Paris” — the capital…") == "paris capital"
    assert squad_normalize("L’Hôpital’s rule") == "lhôpitals rule"
    assert squad_normalize("東京。") == "東京"
    assert score("exact_match", "“The Paris.”", "Paris") == 1.0
    # Letters with accents are letters, not punctuation.
    assert squad_normalize("Café Crème") == "café crème"


@pytest.mark.parametrize(
    ("output", "expected", "value"),
    [
        ("Paris", ("paris",), 1.0),
        ("The Paris!", ("Paris",), 1.0),
        ("Paris, France", ("Paris",), 0.0),
        ("London", ("Paris", "London"), 1.0),  # max over acceptable answers
        ("Lyon", ("Paris", "London"), 0.0),
        ("", ("",), 1.0),
        ("", ("Paris",), 0.0),
        ("yes", ("Yes.", "no"), 1.0),
    ],
)
def test_exact_match_known_values(output: str, expected: tuple[str, ...], value: float) -> None:
    assert score("exact_match", output, *expected) == value


def test_exact_match_is_none_without_expected() -> None:
    assert score("exact_match", "Paris") is None


def test_token_f1_known_values() -> None:
    # output tokens: cat sat on mat (4); answer: cat on mat (3); common 3.
    assert token_f1_score("The cat sat on the mat", "cat on mat") == pytest.approx(6 / 7)
    # Repeated tokens count as often as both sides have them: common = 2 of (3, 2).
    assert token_f1_score("no no no", "no no") == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    assert token_f1_score("completely different", "nothing shared") == 0.0
    assert token_f1_score("Paris", "paris.") == 1.0


def test_token_f1_takes_the_best_answer() -> None:
    best = score("token_f1", "the red car", "a blue car", "red car")
    assert best == 1.0
    assert score("token_f1", "the red car", "a blue car") == pytest.approx(0.5)


def test_token_f1_empty_sides_follow_squad_v2() -> None:
    assert token_f1_score("", "") == 1.0
    assert token_f1_score("the", "a") == 1.0  # both normalize to nothing
    assert token_f1_score("", "Paris") == 0.0
    assert token_f1_score("Paris", "") == 0.0
    assert score("token_f1", "...", "Paris") == 0.0


def test_token_f1_matches_the_official_script_on_real_rows(
    pubmedqa: list[dict[str, Any]],
) -> None:
    compared = 0
    for index, record in enumerate(pubmedqa[:300]):
        answer = record["answer"]
        neighbour = pubmedqa[index - 1]["answer"]
        for output in (
            record["context"],
            record["question"],
            neighbour,
            answer[: len(answer) // 2],
        ):
            if not (output.isascii() and answer.isascii()):
                continue
            assert token_f1_score(output, answer) == pytest.approx(official_f1(output, answer))
            compared += 1
    assert compared > 1000


def test_exact_match_on_real_decisions(pubmedqa: list[dict[str, Any]]) -> None:
    matches = [
        score("exact_match", f"{r['final_decision'].upper()}.", r["final_decision"])
        for r in pubmedqa
    ]
    assert matches == [1.0] * len(pubmedqa)
    misses = [score("exact_match", "maybe not", r["final_decision"]) for r in pubmedqa]
    assert misses == [0.0] * len(pubmedqa)


def test_tokens_are_cached_and_immutable() -> None:
    first = squad_tokens("The quick brown fox")
    assert first == ("quick", "brown", "fox")
    assert squad_tokens("The quick brown fox") is first
    assert isinstance(first, tuple)
    assert exact_match_score("quick brown fox", "The quick brown fox") == 1.0


def test_best_of_expected_takes_the_best_answer_or_none() -> None:
    from harness.metrics.text import best_of_expected

    def overlap(output: str, answer: str) -> float:
        return float(len(set(output) & set(answer)))

    assert best_of_expected("abc", (), overlap) is None
    assert best_of_expected("abc", ("b",), overlap) == 1.0  # one answer: its score
    assert best_of_expected("abc", ("b", "abx", "z"), overlap) == 2.0
    nan = float("nan")
    assert best_of_expected("a", ("a",), lambda output, answer: nan) is nan
