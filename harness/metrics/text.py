"""Text helpers shared by the heuristic metrics: normalization, tokenizers, word splitting.

Each tokenizer is memoized on the exact input string, because one row is usually scored by
several metrics that tokenize the same output and expected answers: rouge1, rouge2 and
rougeL share one tokenization; exact_match, token_f1, word_count and the readability grades
share another. Tokens come back as tuples so a cached value cannot be changed by a caller.
"""

from __future__ import annotations

import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

__all__ = [
    "MEMO_SIZE",
    "best_of_expected",
    "clipped_overlap",
    "rouge_tokens",
    "squad_normalize",
    "squad_tokens",
    "words",
]

# How many texts each memoized tokenizer keeps. Rows are scored one at a time by every
# metric, so only the current row's few texts need to stay; 512 leaves room for expected
# answers shared across rows ("yes", "no"); all caches full of 200-word texts held 13 MB.
MEMO_SIZE = 512

_ASCII_PUNCTUATION = frozenset(string.punctuation)
_ASCII_PUNCTUATION_BYTES = string.punctuation.encode("ascii")


class _LazyTranslation(dict[int, "int | str | None"]):
    """A ``str.translate`` table for all of Unicode, filled one character at a time.

    Classifying every code point up front would cost ~0.3 s at import; a text uses few
    distinct characters, so each is classified once, on first sight, by ``classify``.
    """

    def __init__(self, classify: Callable[[str], str | None]) -> None:
        super().__init__()
        self._classify = classify

    def __missing__(self, code_point: int) -> int | str | None:
        char = chr(code_point)
        replacement = self._classify(char)
        value: int | str | None = code_point if replacement == char else replacement
        self[code_point] = value
        return value


def _squad_punctuation(char: str) -> str | None:
    if char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P"):
        return None
    return char


_SQUAD_DELETE = _LazyTranslation(_squad_punctuation)
_ARTICLES = frozenset({"a", "an", "the"})


@lru_cache(maxsize=MEMO_SIZE)
def squad_tokens(text: str) -> tuple[str, ...]:
    """Tokens of ``text`` after SQuAD's answer normalization (see :func:`squad_normalize`)."""
    lowered = text.lower()
    if lowered.isascii():
        tokens: Iterable[str] = words(text)  # the same pass, shared with word_count
    else:
        tokens = lowered.translate(_SQUAD_DELETE).split()
    # Once punctuation is gone, dropping tokens equal to an article is what the official
    # regex \b(a|an|the)\b does (exactly so on ASCII text), without a second regex pass.
    return tuple([token for token in tokens if token not in _ARTICLES])


def squad_normalize(text: str) -> str:
    """Normalize an answer the way SQuAD's official evaluation script does.

    Lowercase, remove punctuation, remove the articles a/an/the, collapse whitespace.
    On ASCII text this is exactly ``normalize_answer`` from SQuAD v1.1/v2.0. It also removes
    Unicode punctuation (curly quotes, dashes, CJK marks), which the official script keeps,
    because chat models emit it freely and it should not decide a match.
    """
    return " ".join(squad_tokens(text))


# rouge-score replaces every run of characters outside [a-z0-9] with a space; as bytes,
# after encoding non-ASCII characters as "?", that is one C-speed translate.
_ROUGE_SEPARATORS = bytes(
    byte if chr(byte) in string.ascii_lowercase + string.digits else ord(" ") for byte in range(256)
)


@lru_cache(maxsize=MEMO_SIZE)
def rouge_tokens(text: str) -> tuple[str, ...]:
    """Tokenize like the ``rouge-score`` package's default tokenizer (no stemming).

    Lowercase, replace every run of characters outside ``[a-z0-9]`` with a space, split.
    Letters outside ASCII are dropped, exactly as ``rouge-score`` drops them, so scores agree
    with it; the price is that text in non-Latin scripts has no ROUGE tokens at all.
    """
    ascii_bytes = text.lower().encode("ascii", "replace")
    return tuple(ascii_bytes.translate(_ROUGE_SEPARATORS).decode("ascii").split())


def _word_character(char: str) -> str | None:
    if char.isspace() or unicodedata.category(char)[0] in "LMN":
        return char
    return None  # punctuation, symbols, controls


_WORD_CHARACTERS = _LazyTranslation(_word_character)


@lru_cache(maxsize=MEMO_SIZE)
def words(text: str) -> tuple[str, ...]:
    """The words of ``text``, lowercased and stripped of punctuation and symbols.

    A word is what whitespace separates, if it holds a letter or a digit, as word processors
    count: "well-known", "don't", "3.5" and "and/or" are one word each (returned as
    "wellknown", "dont", "35", "andor"); a lone "—" or "..." is none. Used by word_count and
    the readability grades. Scripts written without spaces (Chinese, Japanese) count a whole
    run as one word.
    """
    lowered = text.lower()
    if lowered.isascii():
        # As bytes, deleting the ASCII punctuation is one C pass, half the time of
        # str.translate's per-character table lookups (~1.7 us of a 40-word answer's 3.4).
        kept = lowered.encode("ascii").translate(None, _ASCII_PUNCTUATION_BYTES)
        return tuple(kept.decode("ascii").split())
    return tuple(lowered.translate(_WORD_CHARACTERS).split())


def clipped_overlap(first: Counter[str], second: Counter[str]) -> int:
    """How many items two multisets share, counting each at most as often as in both."""
    common = first.keys() & second.keys()
    # map() over bound methods keeps the loop in C; a set iterates in the same order twice.
    return sum(map(min, map(first.__getitem__, common), map(second.__getitem__, common)))


def best_of_expected(
    output: str, expected: tuple[str, ...], score: Callable[[str, str], float]
) -> float | None:
    """The best ``score(output, answer)`` over the acceptable answers, as SQuAD takes it.

    Returns None when there is no expected answer, so the row is left out of aggregates
    instead of counting as a zero.
    """
    if not expected:
        return None
    if len(expected) == 1:  # the usual row: no generator for max() to walk
        return score(output, expected[0])
    return max(score(output, answer) for answer in expected)
