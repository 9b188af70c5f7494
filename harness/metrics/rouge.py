"""ROUGE-1, ROUGE-2 and ROUGE-L F-measures, computed as the ``rouge-score`` package does.

Same tokenizer as ``rouge_score.rouge_scorer.RougeScorer`` with its defaults (lowercase,
runs of characters outside ``[a-z0-9]`` become spaces, no stemming), same precision,
recall and F-measure arithmetic, and the best expected answer wins, as in its
``score_multi``; tests/metrics check the numbers against the package itself.

ROUGE-L needs the longest common subsequence of two token lists. The textbook table costs
n*m steps (40,000 for two 200-word texts); this module uses the bit-parallel algorithm of
Allison & Dix (1986) / Hyyrö (2004) on Python integers, one step per token.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import compress, islice
from operator import and_
from typing import Any

from harness.metrics import Metric, ScoringRow, register_metric
from harness.metrics.text import best_of_expected, rouge_tokens

__all__ = ["clipped_overlap", "lcs_length", "rouge_l_score", "rouge_n_score"]


def _f_measure(overlap: int, output_count: int, answer_count: int) -> float:
    # The operations and their order are rouge-score's, so the floats are identical.
    precision = overlap / max(output_count, 1)
    recall = overlap / max(answer_count, 1)
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


@lru_cache(maxsize=8192)
def _unigram_counts(text: str) -> Counter[str]:
    return Counter(rouge_tokens(text))


def clipped_overlap(first: Counter[Any], second: Counter[Any]) -> int:
    """How many items two multisets share, counting each at most as often as in both."""
    common = first.keys() & second.keys()
    # map() over bound methods keeps the loop in C; a set iterates in the same order twice.
    return sum(map(min, map(first.__getitem__, common), map(second.__getitem__, common)))


def _shared_ngram_counts(tokens: Sequence[str], n: int, shared: set[str]) -> Counter[Any]:
    # Only n-grams made of tokens both texts contain can be common, so only those are
    # counted (each with all its occurrences); building a tuple for every n-gram was the
    # slowest part of scoring. zip, map and compress keep the loop in C.
    shared_at = list(map(shared.__contains__, tokens))
    ngrams = zip(*(islice(tokens, i, None) for i in range(n)), strict=False)
    all_shared: Iterator[bool] = iter(shared_at)
    for offset in range(1, n):
        all_shared = map(and_, all_shared, islice(shared_at, offset, None))
    return Counter(compress(ngrams, all_shared))


def rouge_n_score(output: str, answer: str, n: int) -> float:
    """ROUGE-N F-measure of ``output`` against one ``answer`` (n-gram overlap, clipped)."""
    output_tokens = rouge_tokens(output)
    answer_tokens = rouge_tokens(answer)
    output_unigrams = _unigram_counts(output)
    answer_unigrams = _unigram_counts(answer)
    if n == 1:
        overlap = clipped_overlap(output_unigrams, answer_unigrams)
    else:
        shared = output_unigrams.keys() & answer_unigrams.keys()
        overlap = 0
        if shared:
            overlap = clipped_overlap(
                _shared_ngram_counts(output_tokens, n, shared),
                _shared_ngram_counts(answer_tokens, n, shared),
            )
    output_count = max(len(output_tokens) - n + 1, 0)
    answer_count = max(len(answer_tokens) - n + 1, 0)
    return _f_measure(overlap, output_count, answer_count)


def lcs_length(first: Sequence[str], second: Sequence[str], shared: set[str] | None = None) -> int:
    """Length of the longest common subsequence of two token sequences.

    Bit-parallel: bit i of ``row`` stands for position i of the longer sequence, and each
    token of the shorter one updates all positions at once with integer arithmetic.
    ``shared``, the set of tokens both contain, may be passed when already known.
    """
    if shared is None:
        shared = set(first).intersection(second)
    if not shared:
        return 0
    # A token missing from either side cannot be in a common subsequence: dropping those
    # first (at C speed) leaves the length unchanged and the loops below much shorter.
    first = list(filter(shared.__contains__, first))
    second = list(filter(shared.__contains__, second))
    longer, shorter = (first, second) if len(first) >= len(second) else (second, first)
    positions: dict[str, int] = dict.fromkeys(shared, 0)
    bit = 1
    for token in longer:
        positions[token] |= bit
        bit <<= 1
    row = bit - 1
    for token in shorter:
        matches = positions[token] & row
        # Carries past the top bit only ever move upward, so they never disturb the low
        # bits and are masked off once at the end instead of on every step.
        row = (row + matches) | (row - matches)
    # Each zero bit left in the row is one token of the common subsequence.
    return len(longer) - (row & (bit - 1)).bit_count()


def rouge_l_score(output: str, answer: str) -> float:
    """ROUGE-L F-measure of ``output`` against one ``answer`` (longest common subsequence)."""
    output_tokens = rouge_tokens(output)
    answer_tokens = rouge_tokens(answer)
    if not output_tokens or not answer_tokens:
        return 0.0
    shared = _unigram_counts(output).keys() & _unigram_counts(answer).keys()
    lcs = lcs_length(answer_tokens, output_tokens, shared)
    return _f_measure(lcs, len(output_tokens), len(answer_tokens))


def rouge_n_metric(n: int) -> Metric:
    """A ``rouge{n}`` metric: the best ROUGE-N F-measure over the expected answers."""

    def score(row: ScoringRow) -> float | None:
        return best_of_expected(
            row.output, row.expected, lambda output, answer: rouge_n_score(output, answer, n)
        )

    return Metric(
        name=f"rouge{n}",
        description=f"ROUGE-{n} F-measure against the best expected answer (as rouge-score)",
        needs_expected=True,
        fn=score,
    )


def _rouge_l(row: ScoringRow) -> float | None:
    return best_of_expected(row.output, row.expected, rouge_l_score)


register_metric(rouge_n_metric(1))
register_metric(rouge_n_metric(2))
register_metric(
    Metric(
        name="rougeL",
        description="ROUGE-L (longest common subsequence) F-measure against the best answer",
        needs_expected=True,
        fn=_rouge_l,
    )
)
