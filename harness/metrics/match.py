"""Answer matching as SQuAD scores it: ``exact_match`` and ``token_f1``.

Both compare the output with each expected answer after :func:`squad_normalize`
(lowercase, no punctuation, no a/an/the, single spaces) and keep the best answer's score,
as SQuAD's official script does with its several human answers.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from harness.metrics.registry import Metric, ScoringRow, register_metric
from harness.metrics.text import MEMO_SIZE, best_of_expected, clipped_overlap, squad_tokens

__all__ = ["exact_match_score", "token_f1_score"]


def exact_match_score(output: str, answer: str) -> float:
    """1.0 if ``output`` and ``answer`` are equal after SQuAD normalization, else 0.0."""
    return 1.0 if squad_tokens(output) == squad_tokens(answer) else 0.0


@lru_cache(maxsize=MEMO_SIZE)
def _token_counts(text: str) -> Counter[str]:
    return Counter(squad_tokens(text))


def token_f1_score(output: str, answer: str) -> float:
    """Harmonic mean of token precision and recall, counting repeated tokens (SQuAD's F1).

    When either side has no tokens after normalization, the score is 1.0 if both have
    none and 0.0 otherwise (SQuAD v2.0's rule; v1.1 gave 0.0 even for two empty answers).
    """
    output_counts = _token_counts(output)
    answer_counts = _token_counts(answer)
    if not output_counts or not answer_counts:
        return 1.0 if output_counts == answer_counts else 0.0
    common = clipped_overlap(output_counts, answer_counts)
    if common == 0:
        return 0.0
    precision = common / len(squad_tokens(output))
    recall = common / len(squad_tokens(answer))
    return 2 * precision * recall / (precision + recall)


def _exact_match(row: ScoringRow) -> float | None:
    return best_of_expected(row.output, row.expected, exact_match_score)


def _token_f1(row: ScoringRow) -> float | None:
    return best_of_expected(row.output, row.expected, token_f1_score)


register_metric(
    Metric(
        name="exact_match",
        description="1 if the output equals an expected answer after SQuAD normalization, else 0",
        needs_expected=True,
        fn=_exact_match,
        binary=True,
    )
)
register_metric(
    Metric(
        name="token_f1",
        description="SQuAD token F1 between the output and the best-matching expected answer",
        needs_expected=True,
        fn=_token_f1,
        bounds=(0.0, 1.0),
    )
)
