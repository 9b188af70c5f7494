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
from itertools import filterfalse

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
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ARTICLE_WORDS = frozenset({"a", "an", "the"})


@lru_cache(maxsize=_CACHE_SIZE)
def squad_tokens(text: str) -> tuple[str, ...]:
    """Tokens of ``text`` after SQuAD's answer normalization (see :func:`squad_normalize`)."""
    lowered = text.lower()
    if lowered.isascii():
        # Without punctuation only letters, digits and spaces remain, so "a whole token is
        # an article" is what the official regex \b(a|an|the)\b finds, at C speed.
        return tuple(
            filterfalse(_ARTICLE_WORDS.__contains__, lowered.translate(_ASCII_DELETE).split())
        )
    return tuple(_ARTICLES.sub(" ", lowered.translate(_SQUAD_DELETE)).split())


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


@lru_cache(maxsize=_CACHE_SIZE)
def rouge_tokens(text: str) -> tuple[str, ...]:
    """Tokenize like the ``rouge-score`` package's default tokenizer (no stemming).

    Lowercase, replace every run of characters outside ``[a-z0-9]`` with a space, split.
    Letters outside ASCII are dropped, exactly as ``rouge-score`` drops them, so scores agree
    with it; the price is that text in non-Latin scripts has no ROUGE tokens at all.
    """
    ascii_bytes = text.lower().encode("ascii", "replace")
    return tuple(ascii_bytes.translate(_ROUGE_SEPARATORS).decode("ascii").split())


# Inside a word, apostrophes, hyphens, points and commas join ("don't", "well-known", "3.5",
# "10,000", "e.g."); other punctuation and symbols separate ("and/or", "x—y", "(a)").
_JOINERS = "'’‐‑-.,"


def _word_character(char: str) -> str | None:
    if char in _JOINERS:
        return None
    if char.isspace() or unicodedata.category(char)[0] in "LMN":
        return char
    return " "


_WORD_CHARACTERS = _LazyTranslation(_word_character)
_ASCII_WORD_CHARACTERS = str.maketrans(
    {char: (None if char in _JOINERS else " ") for char in string.punctuation}
)


@lru_cache(maxsize=_CACHE_SIZE)
def words(text: str) -> tuple[str, ...]:
    """The words of ``text`` as a reader counts them, stripped of punctuation.

    Used by word_count and the readability grades. Punctuation and symbols are not words;
    "well-known", "don't" and "3.5" are one word each (returned as "wellknown", "dont",
    "35"), "and/or" is two. Scripts written without spaces (Chinese, Japanese) count a
    whole run as one word.
    """
    if text.isascii():
        return tuple(text.translate(_ASCII_WORD_CHARACTERS).split())
    return tuple(text.translate(_WORD_CHARACTERS).split())


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
