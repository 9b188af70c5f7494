"""Text helpers shared by the heuristic metrics: normalization, tokenizers, word splitting.

Each tokenizer is memoized on the exact input string, because one row is usually scored by
several metrics that tokenize the same output and expected answers (rouge1, rouge2 and
rougeL share one tokenization; exact_match and token_f1 share another). Tokens come back as
tuples so a cached value cannot be changed by a caller.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable
from functools import lru_cache

__all__ = [
    "best_of_expected",
    "rouge_tokens",
    "squad_normalize",
    "squad_tokens",
    "words",
]

# Big enough for all the distinct strings of a batch of rows scored metric after metric,
# small enough (a few MB of short tuples) not to matter.
_CACHE_SIZE = 8192

_ASCII_PUNCTUATION = frozenset(string.punctuation)
_ASCII_DELETE = str.maketrans("", "", string.punctuation)


class _UnicodePunctuationTable(dict[int, "int | None"]):
    """A ``str.translate`` table that deletes ASCII and Unicode punctuation, filled lazily.

    Building the table for every code point up front would cost ~0.3 s at import; texts use
    few distinct characters, so each one is classified once, on first sight.
    """

    def __missing__(self, code_point: int) -> int | None:
        char = chr(code_point)
        delete = char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")
        value = None if delete else code_point
        self[code_point] = value
        return value


_UNICODE_DELETE = _UnicodePunctuationTable()
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@lru_cache(maxsize=_CACHE_SIZE)
def squad_normalize(text: str) -> str:
    """Normalize an answer the way SQuAD's official evaluation script does.

    Lowercase, remove punctuation, remove the articles a/an/the, collapse whitespace.
    On ASCII text this is exactly ``normalize_answer`` from SQuAD v1.1/v2.0. It also removes
    Unicode punctuation (curly quotes, dashes, CJK marks), which the official script keeps,
    because chat models emit it freely and it should not decide a match.
    """
    lowered = text.lower()
    if lowered.isascii():
        no_punctuation = lowered.translate(_ASCII_DELETE)
    else:
        no_punctuation = lowered.translate(_UNICODE_DELETE)
    return " ".join(_ARTICLES.sub(" ", no_punctuation).split())


@lru_cache(maxsize=_CACHE_SIZE)
def squad_tokens(text: str) -> tuple[str, ...]:
    """Tokens of :func:`squad_normalize` (split on whitespace), as SQuAD's F1 uses them."""
    return tuple(squad_normalize(text).split())


_ROUGE_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=_CACHE_SIZE)
def rouge_tokens(text: str) -> tuple[str, ...]:
    """Tokenize like the ``rouge-score`` package's default tokenizer (no stemming).

    Lowercase, replace every run of characters outside ``[a-z0-9]`` with a space, split.
    Letters outside ASCII are dropped, exactly as ``rouge-score`` drops them, so scores agree
    with it; the price is that text in non-Latin scripts has no ROUGE tokens at all.
    """
    return tuple(_ROUGE_NON_ALPHANUMERIC.sub(" ", text.lower()).split())


# A word: letters or digits (any script), joined by apostrophes or hyphens ("don't",
# "well-known"), or by a point or comma between digits ("3.5", "10,000").
_WORD = re.compile(r"[^\W_]+(?:(?:['’\-]|(?<=\d)[.,](?=\d))[^\W_]+)*")


@lru_cache(maxsize=_CACHE_SIZE)
def words(text: str) -> tuple[str, ...]:
    """The words of ``text`` as a reader counts them; used by word_count and readability.

    Punctuation and symbols are not words; "well-known", "don't" and "3.5" are one word each.
    Scripts written without spaces (Chinese, Japanese) count a whole run as one word.
    """
    return tuple(_WORD.findall(text))


def best_of_expected(
    output: str, expected: tuple[str, ...], score: Callable[[str, str], float]
) -> float | None:
    """The best ``score(output, answer)`` over the acceptable answers, as SQuAD takes it.

    Returns None when there is no expected answer, so the row is left out of aggregates
    instead of counting as a zero.
    """
    if not expected:
        return None
    return max(score(output, answer) for answer in expected)
