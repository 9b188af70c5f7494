"""word_count and latency, and the word splitting that word_count and readability share."""

from __future__ import annotations

import string

import pytest

from harness.metrics import ScoringRow, get_metric
from harness.metrics.text import words


def score(name: str, output: str, latency_s: float | None = None) -> float | None:
    row = ScoringRow(input="", output=output, expected=(), context=None, latency_s=latency_s)
    return get_metric(name).score(row)


@pytest.mark.parametrize(
    ("output", "count"),
    [
        ("The cat sat on the mat.", 6),
        ("", 0),
        ("   \n\t ", 0),
        ("... -- !!! (—)", 0),
        ("well-known don't 3.5 10,000 e.g.", 5),
        ("and/or x—y (a)", 3),
        ("x — y", 2),
        ("L’Hôpital’s rule", 2),
        ("Ünïcödé wörds çount", 3),
        ("p < 0.05, n = 120", 4),
        ("東京 は 首都", 3),
        ("東京は首都です", 1),
        ("line one\nline two", 4),
    ],
)
def test_word_count(output: str, count: int) -> None:
    assert score("word_count", output) == float(count)
    assert len(words(output)) == count


def test_words_are_lowercased_and_stripped_of_punctuation() -> None:
    assert words("Well-known, isn't it? 3.5%") == ("wellknown", "isnt", "it", "35")
    assert words("“Quoted” — text… ±2 ©") == ("quoted", "text", "2")


def test_ascii_words_drop_exactly_the_ascii_punctuation() -> None:
    # ASCII text takes a bytes pass; every printable ASCII character and the whitespace
    # split must come out as str.translate with string.punctuation deleted makes them.
    every = "".join(chr(code) for code in range(32, 127)) + " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
    reference = str.maketrans("", "", string.punctuation)
    for text in (every, every[::-1], 'A-b_c d.E, f\'g "h" (i) [j] {k} ~l~ @m #n $5.00 100%'):
        assert words(text) == tuple(text.lower().translate(reference).split())


def test_word_count_is_a_float_even_for_empty_output() -> None:
    value = score("word_count", "")
    assert value == 0.0 and isinstance(value, float)


@pytest.mark.parametrize("latency", [0.0, 0.25, 12.5])
def test_latency_is_the_rows_latency(latency: float) -> None:
    assert score("latency", "anything", latency_s=latency) == latency


def test_latency_is_none_when_unknown() -> None:
    assert score("latency", "anything", latency_s=None) is None
