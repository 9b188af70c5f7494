"""Readability grade levels: the Automated Readability Index and Flesch-Kincaid.

Both are US school grades computed from counts of sentences, words, letters and syllables:

- ARI = 4.71 * characters/words + 0.5 * words/sentences - 21.43 (characters are letters
  and digits);
- Flesch-Kincaid grade = 0.39 * words/sentences + 11.8 * syllables/words - 15.59.

Syllables come from a pure-Python English heuristic (no dictionary, nothing downloaded:
textstat, for one, fetches the CMU dictionary through nltk on first use). It agrees with
the CMU Pronouncing Dictionary on 98% of the running words of PubMedQA (99% of plain
English prose), and moves a PubMedQA answer's Flesch-Kincaid grade by 0.2 on average;
tests/metrics/test_readability.py keeps those numbers from slipping.
A text with no words has no grade: the metrics return None for it.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from harness.metrics.registry import Metric, ScoringRow, register_metric
from harness.metrics.text import MEMO_SIZE, words

__all__ = [
    "TextStats",
    "automated_readability_index",
    "count_sentences",
    "count_syllables",
    "flesch_kincaid_grade",
    "text_stats",
]

_LATIN_LETTERS = re.compile(r"[a-z]+")
# Vowel pairs that are usually two syllables: bacte-ri-a, bi-o-logy, me-di-um, vi-de-o,
# ac-tu-al, flu-ent, flu-id, cha-os, di-et, expe-ri-ence, be-ing, go-ing, my-o-cardial.
_TWO_SYLLABLE_PAIR = re.compile(
    r"ia|io|iu|eo|ua|uo|ao|ue(?=[^sd])|ui(?=d)|ie(?=t|nc|nt)|[eoy]i(?=ng)|(?<=^c)oe|(?<=[^aeiou])yo"
)
# ...except after a consonant that merges with the i, e or u: na-tion, spe-cial, pa-tient,
# re-gion, gor-geous, qua-lity, lan-guage; and "peo(ple)". Not before t (associ-a-ted) and
# not at the end of the word (ra-ti-o).
_MERGING_CONSONANT = re.compile(r"(?:[tcsxg]i|[cg]e|[qg]u|pe(?=o))(?!at)..")
# A final vowel that is not spoken: "make", "rates", "jumped", "technique", "lately",
# "basically" (but "wanted", "changes").
_SILENT_FINAL_E = re.compile(
    r"[^aeiouy]e$|(?:[^aeiouyszxcgh]|[^aeiouycs]h)es$|[^aeiouytd]ed$|ques?$"
    r"|[^aeiouy]e(?=ly$|ment$|ments$|ful$|less$|ness$)|ically$"
)
# ...but spoken after a consonant + l ("table", "tables") and in -ire ("fire", "entire").
_SPOKEN_FINAL_E = re.compile(r"[^aeiouyl]l(?:es?|ed)$|ire[sd]?$")
# Endings with one more syllable than vowel groups: mecha-nis-m, neo-pla-sm, are-a, ide-as.
_SPOKEN_FINAL_SYLLABLE = re.compile(r"sms?$|..eas?$")
# The endings these rules can match at all, for a quick str.endswith test first.
_SPOKEN_FINAL_SYLLABLE_ENDS = ("sm", "sms", "ea", "eas")
_SILENT_FINAL_E_ENDS = ("e", "es", "ed", "ly", "ment", "ments", "ful", "less", "ness")
_VOWEL_SHAPE = str.maketrans(
    {char: "v" if char in "aeiouy" else " " for char in string.ascii_lowercase}
)
_DIAERESIS = re.compile(r"(?<=[aeiou])[äëïöü]")


def count_syllables(word: str) -> int:
    """Estimate the syllables of one English word (at least 1 for any word).

    Counts vowel groups, then corrects the common cases where spelling and sound differ:
    a silent final e ("make", "rates", "lately"), silent -ed ("jumped"), a spoken one
    after consonant + l or in -ire ("table", "fire"), and vowel pairs spoken as two
    syllables ("bacteria", "being").
    Accents are folded to plain letters; a word with no Latin vowel (a number, an acronym,
    another script) counts as one syllable.
    """
    return _syllables[word]


class _SyllableCache(dict[str, int]):
    """Syllables per word, each computed on first sight.

    ``map(cache.__getitem__, words)`` stays in C for words seen before, which after a few
    rows are nearly all of them; an lru_cache wrapper cost 1.7 times as much per word.
    """

    def __missing__(self, word: str) -> int:
        if len(self) >= 200_000:  # bound the memory on endless vocabularies
            self.clear()
        count = self[word] = _count_syllables(word)
        return count


_syllables = _SyllableCache()


def _count_syllables(word: str) -> int:
    # Regex calls cost ~2,000 instructions each even on a short word, so cheap string
    # tests decide first whether a rule can apply at all.
    lowered = word.lower()
    spoken_final_e = False
    diaereses = 0
    if not lowered.isascii():
        spoken_final_e = lowered.endswith("é")  # café, résumé
        # A diaeresis splits a vowel pair: na-ïve, co-ördinate.
        diaereses = len(_DIAERESIS.findall(lowered))
        decomposed = unicodedata.normalize("NFKD", lowered)
        lowered = "".join(c for c in decomposed if not unicodedata.combining(c))
    if lowered.isascii() and lowered.isalpha():
        letters = lowered
    else:
        letters = "".join(_LATIN_LETTERS.findall(lowered))
    # A leading y before a vowel is a consonant ("year", "you").
    if len(letters) > 1 and letters[0] == "y" and letters[1] in "aeiou":
        letters = letters[1:]
    shape = letters.translate(_VOWEL_SHAPE)  # "mitochondria" -> " v v  v   vv"
    count = diaereses + len(shape.split())
    if "vv" in shape:
        for pair in _TWO_SYLLABLE_PAIR.finditer(letters):
            at_end = pair.end() == len(letters)
            if at_end or not _MERGING_CONSONANT.match(letters, max(0, pair.start() - 1)):
                count += 1
    if letters.endswith(_SPOKEN_FINAL_SYLLABLE_ENDS) and _SPOKEN_FINAL_SYLLABLE.search(letters):
        count += 1
    if (
        letters.endswith(_SILENT_FINAL_E_ENDS)
        and _SILENT_FINAL_E.search(letters)
        and not (spoken_final_e or _SPOKEN_FINAL_E.search(letters))
    ):
        count -= 1
    return max(1, count)


# A sentence ends at a run of . ! or ? followed by a space or the end (not "3.5"), maybe
# through closing quotes or brackets, or at a blank line. A point after a common
# abbreviation ("e.g.", "et al.", "Dr.") does not end one; after a single letter it does
# ("vitamin D."), so initials ("J. Smith") are miscounted, rarely met in model answers.
# Python needs each look-behind to have one width, hence one per width. One split and no
# Python loop per sentence keeps this cheap.
_END_TAIL = r"[.!?]*[\"'”’)\]]*(?:\s+|$)"
_POINT_END = (
    r"\.(?<!\b(?:al|vs|cf|ca|dr|mr|ms|st|jr|sr|eq)\.)(?<!\b(?:e\.g|i\.e|mrs|fig|vol)\.)"
    r"(?<!\b(?:prof|figs)\.)(?<!\bapprox\.)" + _END_TAIL
)
_SENTENCE_BREAK = re.compile(
    "|".join([_POINT_END, "!" + _END_TAIL, r"\?" + _END_TAIL, r"\n[ \t]*\n"]), re.IGNORECASE
)
# The same for the common text with no ! ? or line break: a pattern that starts with one
# literal lets the engine jump between points 5x faster than a choice of four.
_POINT_BREAK = re.compile(_POINT_END, re.IGNORECASE)
_HAS_LETTER = re.compile(r"[^\W\d_]")


def count_sentences(text: str) -> int:
    """Count sentences: runs ending in . ! or ? before a space, or separated by a blank line.

    A point after a common abbreviation ("e.g.", "et al.", "Dr.") does not end a sentence,
    a point inside a number ("3.5") is not an end, and a run without letters ("1." in a
    numbered list) is not a sentence. A single line break does not end a sentence (prose
    is often wrapped).
    """
    if "!" in text or "?" in text or "\n" in text:
        pieces = _SENTENCE_BREAK.split(text)
    else:
        pieces = _POINT_BREAK.split(text)
    return sum(map(bool, map(_HAS_LETTER.search, pieces)))


@dataclass(frozen=True)
class TextStats:
    """The counts readability formulas are made of."""

    sentences: int
    words: int
    characters: int  # letters and digits inside words
    syllables: int


@lru_cache(maxsize=MEMO_SIZE)
def text_stats(text: str) -> TextStats:
    """Count sentences, words, characters and syllables of ``text`` (memoized per text)."""
    text_words = words(text)
    return TextStats(
        # Words without a sentence end still make one sentence ("42", a heading).
        sentences=max(1, count_sentences(text)) if text_words else 0,
        words=len(text_words),
        characters=sum(map(len, text_words)),
        syllables=sum(map(_syllables.__getitem__, text_words)),
    )


def automated_readability_index(text: str) -> float | None:
    """ARI grade of ``text``; None when it has no words."""
    stats = text_stats(text)
    if not stats.words:
        return None
    return 4.71 * stats.characters / stats.words + 0.5 * stats.words / stats.sentences - 21.43


def flesch_kincaid_grade(text: str) -> float | None:
    """Flesch-Kincaid grade level of ``text``; None when it has no words."""
    stats = text_stats(text)
    if not stats.words:
        return None
    return 0.39 * stats.words / stats.sentences + 11.8 * stats.syllables / stats.words - 15.59


def _ari_of_output(row: ScoringRow) -> float | None:
    return automated_readability_index(row.output)


def _fk_of_output(row: ScoringRow) -> float | None:
    return flesch_kincaid_grade(row.output)


register_metric(
    Metric(
        name="ari_grade_level",
        description="Automated Readability Index of the output (US grade); None if no words",
        needs_expected=False,
        direction=0,  # the right reading grade depends on the audience
        fn=_ari_of_output,
    )
)
register_metric(
    Metric(
        name="flesch_kincaid_grade_level",
        description="Flesch-Kincaid grade level of the output (offline syllable heuristic)",
        needs_expected=False,
        direction=0,  # the right reading grade depends on the audience
        fn=_fk_of_output,
    )
)
