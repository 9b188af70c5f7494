"""rouge1, rouge2 and rougeL agree exactly with the ``rouge-score`` package."""

from __future__ import annotations

import random
from typing import Any

import pytest
from rouge_score import rouge_scorer, tokenize

from harness.metrics import ScoringRow, get_metric
from harness.metrics.rouge import _text_positions, lcs_length, rouge_l_score, rouge_n_score
from harness.metrics.text import rouge_tokens

ROUGE_TYPES = ["rouge1", "rouge2", "rougeL"]


@pytest.fixture(scope="module")
def reference() -> rouge_scorer.RougeScorer:
    # rouge-score's defaults: no stemming, its own tokenizer. rouge3 checks any n works.
    return rouge_scorer.RougeScorer([*ROUGE_TYPES, "rouge3"])


def score(name: str, output: str, *expected: str) -> float | None:
    row = ScoringRow(input="", output=output, expected=expected, context=None, latency_s=None)
    return get_metric(name).score(row)


def pairs_from(pubmedqa: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(output, answer) pairs of several kinds: long, short, unrelated, partial, copied."""
    pairs = []
    for index, record in enumerate(pubmedqa[:300]):
        answer = record["answer"]
        pairs.append((record["context"], answer))
        pairs.append((record["question"], answer))
        pairs.append((pubmedqa[index - 1]["answer"], answer))
        pairs.append((answer[: len(answer) // 2] + " " + record["question"], answer))
    pairs.append((pubmedqa[0]["answer"], pubmedqa[0]["answer"]))
    return pairs


def test_same_floats_as_rouge_score_on_real_rows(
    pubmedqa: list[dict[str, Any]], reference: rouge_scorer.RougeScorer
) -> None:
    pairs = pairs_from(pubmedqa)
    assert len(pairs) == 1201
    for output, answer in pairs:
        expected = reference.score(answer, output)  # rouge-score takes (target, prediction)
        assert rouge_n_score(output, answer, 1) == expected["rouge1"].fmeasure
        assert rouge_n_score(output, answer, 2) == expected["rouge2"].fmeasure
        assert rouge_l_score(output, answer) == expected["rougeL"].fmeasure
        assert rouge_n_score(output, answer, 3) == expected["rouge3"].fmeasure


def test_scores_are_spread_out_on_real_rows(pubmedqa: list[dict[str, Any]]) -> None:
    # Guards the comparison above against passing on degenerate values (all 0 or all 1).
    values = {round(rouge_l_score(output, answer), 2) for output, answer in pairs_from(pubmedqa)}
    assert len(values) > 40
    assert 1.0 in values


def test_best_expected_answer_wins_as_in_score_multi(
    pubmedqa: list[dict[str, Any]], reference: rouge_scorer.RougeScorer
) -> None:
    for index, record in enumerate(pubmedqa[:100]):
        answers = (pubmedqa[index - 1]["answer"], record["answer"], record["final_decision"])
        output = record["context"]
        expected = reference.score_multi(list(answers), output)
        for rouge_type in ROUGE_TYPES:
            assert score(rouge_type, output, *answers) == expected[rouge_type].fmeasure


def test_tokenizer_matches_rouge_score() -> None:
    texts = [
        "Hello, World! It's 2024-01-01.",
        "Straße naïve café ΔΨm İstanbul",  # non-ASCII letters are separators
        "UPPER lower MiXeD 3.14 x_y",
        "",
        "   \t\n ",
        "€100 — “quoted”",
    ]
    for text in texts:
        assert list(rouge_tokens(text)) == tokenize.tokenize(text, None)


def test_known_values() -> None:
    # unigrams shared: the, cat, the, mat -> 4 of 6 and 4 of 6
    assert rouge_n_score("the cat sat on the mat", "the cat lay on the mat", 1) == pytest.approx(
        5 / 6
    )
    # bigrams: (the cat) (on the) (the mat) shared, 3 of 5 each
    assert rouge_n_score("the cat sat on the mat", "the cat lay on the mat", 2) == pytest.approx(
        3 / 5
    )
    # LCS: the cat on the mat = 5 of 6
    assert rouge_l_score("the cat sat on the mat", "the cat lay on the mat") == pytest.approx(5 / 6)
    # Order matters for L, not for 1.
    assert rouge_n_score("a b c d", "d c b a", 1) == 1.0
    assert rouge_l_score("a b c d", "d c b a") == pytest.approx(1 / 4)


def test_rouge_n_needs_a_positive_n() -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        rouge_n_score("a b", "a b", 0)


def test_empty_and_unscorable_text_scores_zero() -> None:
    for name in ROUGE_TYPES:
        assert score(name, "", "Paris is the capital") == 0.0
        assert score(name, "Paris is the capital", "") == 0.0
        assert score(name, "!!!", "???") == 0.0
        assert score(name, "東京は首都です", "東京は首都です") == 0.0  # as in rouge-score
        assert score(name, "Paris") is None


def test_bit_parallel_lcs_matches_the_textbook_table() -> None:
    def textbook(first: list[str], second: list[str]) -> int:
        table = [[0] * (len(second) + 1) for _ in range(len(first) + 1)]
        for i, a in enumerate(first, 1):
            for j, b in enumerate(second, 1):
                table[i][j] = (
                    table[i - 1][j - 1] + 1 if a == b else max(table[i - 1][j], table[i][j - 1])
                )
        return table[-1][-1]

    generator = random.Random(7)
    for _ in range(400):
        alphabet = "abcdef"[: generator.randint(1, 6)]
        first = [generator.choice(alphabet) for _ in range(generator.randint(0, 90))]
        second = [generator.choice(alphabet) for _ in range(generator.randint(0, 90))]
        assert lcs_length(first, second) == textbook(first, second)
        assert lcs_length(second, first) == textbook(first, second)
    assert lcs_length(["x"] * 300, ["x"] * 200) == 200


def test_rouge_l_builds_the_table_of_the_shorter_text_only() -> None:
    # A short output against a long answer (or the other way round): the long text's
    # positions table, a Python loop over all its tokens, is never needed.
    short = "the lace plant cells"
    long = " ".join(f"the plant word{index} cells" for index in range(200))
    _text_positions.cache_clear()
    assert rouge_l_score(short, long) == rouge_l_score(long, short) > 0
    _text_positions(short)  # already there: no new table
    info = _text_positions.cache_info()
    assert (info.misses, info.hits, info.currsize) == (1, 2, 1)
