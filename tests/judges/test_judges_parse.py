"""The verdict parser against a corpus of messy judge answers, accepted and rejected."""

from __future__ import annotations

import pytest

from harness.errors import JudgeParseError
from harness.judges.output import OutputSpec
from harness.judges.parse import parse_verdict

SCALE = OutputSpec.parse("1-5")
TEN = OutputSpec.parse("0-10")
YES_NO = OutputSpec.parse("yes/no")
GRADES = OutputSpec.parse(["bad", "okay", "good"])
PAIR = OutputSpec.parse(["1", "2", "tie"], key="winner")
SIGNED = OutputSpec.parse("-2..2")  # "any integer range": a minus sign is part of the score

# (output type, judge answer, the label it must read)
ACCEPTED = [
    # one answer, then words that name no second one
    (PAIR, "Winner: 1, because Response 2 misses the dose", "1"),
    (YES_NO, "Verdict: no, no errors were found", "no"),
    (YES_NO, "Verdict: yes and the answer is complete", "yes"),
    # JSON as asked, and the ways it arrives wrapped
    (SCALE, '{"rationale": "Covers every point.", "score": 5}', "5"),
    (SCALE, '```json\n{"score": 3, "rationale": "Half right."}\n```', "3"),
    (SCALE, '```\n{"score": 2}\n```', "2"),
    (SCALE, '{"score": 4, "rationale": "Good."}\n\nLet me know if you need anything else!', "4"),
    (SCALE, 'Here is my evaluation:\n{"score": 1, "rationale": "Contradicts it."}', "1"),
    (SCALE, "{'score': 4, 'rationale': 'a Python dict'}", "4"),
    (SCALE, '{"score": 3, "rationale": "trailing comma",}', "3"),
    (SCALE, '{"Score": 2, "Reasoning": "capitalised keys"}', "2"),
    (SCALE, '{"rating": 5}', "5"),
    (SCALE, '{"score": "4"}', "4"),
    (SCALE, '{"score": "4/5"}', "4"),
    (SCALE, '{"score": 4.0}', "4"),
    (SCALE, '{"evaluation": {"score": 3, "rationale": "nested"}}', "3"),
    (SCALE, '[{"score": 2, "rationale": "in a list"}]', "2"),
    (SCALE, '{"rationale": "It says {x} and \\"quotes\\" inside", "score": 4}', "4"),
    (SCALE, '<think>Maybe a 2? {"score": 2} no...</think>\n{"score": 5, "rationale": "ok"}', "5"),
    (SCALE, '{"rationale": "no score key here"}\n{"score": 3}', "3"),
    (SCALE, "I don't think it's perfect. {\"score\": 4}", "4"),
    (SCALE, '{"score": 4} and again: {"rationale": "Good.", "score": "4/5"}', "4"),
    (SCALE, 'a < b, so {"score": 4, "rationale": "less-than, no think block"}', "4"),
    # prose
    (SCALE, "Score: 4", "4"),
    (SCALE, "Score: 4/5", "4"),
    (SCALE, "**Score:** 3\nThe answer misses the dosage.", "3"),
    (SCALE, "Rating: [[5]]", "5"),
    (SCALE, "The answer is accurate but brief.\n\nFinal score: 4", "4"),
    (SCALE, "Score = 2", "2"),
    (SCALE, "Score (1-5): 3", "3"),
    (SCALE, "A score of 5 would need the exact figure.\nScore: 3", "3"),
    (SCALE, "Score: 2\n...on reflection...\nFinal score: 3", "3"),
    (SCALE, "4", "4"),
    (SCALE, "4/5", "4"),
    (SCALE, "  5.  ", "5"),
    (SCALE, "I would give this answer a score of 4 because it is mostly right.", "4"),
    (SCALE, "Overall rating: 4 out of 5", "4"),
    (SCALE, '"score": 2, "rationale": "The answer is mostly', "2"),  # cut off by max_tokens
    (TEN, "Score: 7/10", "7"),
    (TEN, '{"score": 0}', "0"),
    (SIGNED, "-2", "-2"),
    (SIGNED, "Score: -2", "-2"),
    (SIGNED, "**Score:** **-1**", "-1"),
    (SIGNED, "Rating: [[-2]]", "-2"),
    (SIGNED, "- 2", "2"),  # a bullet, then a space: not a minus sign
    (SCALE, "Score: 4 - a solid answer", "4"),  # a dash, then words: no range
    (SCALE, "Score: 4 out of 5 - 1 point off for the dose", "4"),
    (SCALE, "Score: 3-4\n\nOn reflection, final score: 4", "4"),
    (YES_NO, '{"claim 1": {"verdict": "yes"}, "claim 2": {"verdict": "yes"}}', "yes"),
    (SCALE, '{"criteria": {"a": {"score": 2}, "b": {"score": 5}}, "score": 4}', "4"),
    (SCALE, '{"results": [{"score": 4, "rationale": "fine"}]}', "4"),
    # yes/no
    (YES_NO, '{"rationale": "Same conclusion.", "verdict": "yes"}', "yes"),
    (YES_NO, '{"verdict": "No", "rationale": "Wrong."}', "no"),
    (YES_NO, '{"verdict": true}', "yes"),
    (YES_NO, '{"verdict": "pass"}', "yes"),
    (YES_NO, '{"result": "FAIL"}', "no"),
    (YES_NO, '{"correct": false}', "no"),
    (YES_NO, '{"answer": "yes", "score": 4}', "yes"),
    (YES_NO, '{"score": 1}', "yes"),
    (YES_NO, "Yes", "yes"),
    (YES_NO, "yes.", "yes"),
    (YES_NO, "Yes, the candidate is correct.", "yes"),
    (YES_NO, "No - the answer contradicts the reference.", "no"),
    (YES_NO, "**No**", "no"),
    (YES_NO, "Verdict: yes", "yes"),
    (YES_NO, "**Verdict:** **No**", "no"),
    (YES_NO, "Answer: No.", "no"),
    (YES_NO, "Verdict: no / the dose is wrong", "no"),
    (YES_NO, "The claims match the context.\n\nVerdict: YES", "yes"),
    (YES_NO, "The answer says 40 mg; the reference says 20 mg.\n\nNo", "no"),
    (YES_NO, "[[Yes]]", "yes"),
    (YES_NO, "PASS", "yes"),
    (YES_NO, "Correct.", "yes"),
    (YES_NO, "Incorrect: it names the wrong drug.", "no"),
    (YES_NO, "<think>The reference says no. Hmm.</think>Yes, it matches.", "yes"),
    # labels
    (GRADES, '{"label": "good", "rationale": "fine"}', "good"),
    (GRADES, '{"label": "OKAY"}', "okay"),
    (GRADES, "Label: bad", "bad"),
    (GRADES, "okay", "okay"),
    (PAIR, '{"winner": "1", "rationale": "more complete"}', "1"),
    (PAIR, '{"winner": 2}', "2"),
    (PAIR, '{"winner": "Response 2"}', "2"),
    (PAIR, "[[2]]", "2"),
    (PAIR, "Winner: tie", "tie"),
    (PAIR, "Tie.", "tie"),
    (PAIR, "2, because it cites the study.", "2"),
    (PAIR, "1. Response 1 misses the dose.\n2. Response 2 gives it.\n\n2", "2"),
]

# (output type, judge answer, a piece of the error)
REJECTED = [
    (SCALE, '{"score": 0}', "outside the 1-5 scale"),
    (SCALE, '{"score": 6, "rationale": "excellent"}', "outside the 1-5 scale"),
    (SCALE, "Score: 9", "outside the 1-5 scale"),
    (SCALE, "Score: 8/10", "not on the 1-5 scale"),
    (SCALE, "score: 3.5", "not an integer"),
    (SCALE, '{"score": "N/A"}', "no verdict"),
    (SCALE, "The answer is good.", "no verdict"),
    (SCALE, "A score of 2 is too low; a score of 4 is too high.", "several scores"),
    (SCALE, '{"rationale": "The answer is mostly', "no verdict"),
    (
        SCALE,
        'Draft: {"score": 2}. On reflection it is complete.\n{"rationale": "ok", "score": 5}',
        "several verdicts (2, 5)",
    ),
    (YES_NO, '{"verdict": "no"} at first, but {"verdict": "yes"}', "several verdicts (no, yes)"),
    # nested objects that disagree, and no overall verdict: reading the first is a guess
    (SCALE, '{"accuracy": {"score": 2}, "clarity": {"score": 5}}', "several verdicts (2, 5)"),
    (
        YES_NO,
        '{"claim 1": {"verdict": "yes"}, "claim 2": {"verdict": "no", "reason": "not in it"}}',
        "several verdicts (yes, no)",
    ),
    (SCALE, '{"results": [{"score": 2}, {"score": 5}]}', "several verdicts (2, 5)"),
    (
        YES_NO,
        '{"claims": [{"claim": "a", "verdict": "yes"}, {"claim": "b", "verdict": "no"}]}',
        "several verdicts (yes, no)",
    ),
    (SCALE, "", "empty"),
    (SCALE, "<think>Score: 4</think>", "empty"),
    (SCALE, "<THINK>Score: 4</Think>  ", "empty"),
    (
        SCALE,
        '{"score": 5} {"score": 2} {"score": 5} {"score": 4}',
        "several verdicts (5, 2, 4)",
    ),
    (TEN, "Score: 11/10", "outside the 0-10 scale"),
    (SCALE, "-1", "score -1 is outside the 1-5 scale"),
    (SCALE, "Score: -3", "score -3 is outside the 1-5 scale"),
    (SCALE, "**-2**", "score -2 is outside the 1-5 scale"),
    # a range is no verdict: reading its first score would be a guess
    (SCALE, "Score: 3-4", "a range of scores (3 to 4)"),
    (SCALE, "**Rating:** 4 – 5", "a range of scores (4 to 5)"),
    (SCALE, "Final score: 4 or 5", "a range of scores (4 to 5)"),
    (SCALE, "Score: 3 to 4/5", "a range of scores (3 to 4)"),
    (SCALE, "I would give it a score of 3-4.", "several scores (3, 4)"),
    (YES_NO, "Maybe.", "no verdict"),
    (YES_NO, "No issues found; the answer is right.", "no verdict"),
    (YES_NO, '{"verdict": "partially"}', "no verdict"),
    (YES_NO, '{"score": 4}', "no verdict"),
    (YES_NO, "I cannot determine this from the information given.", "no verdict"),
    # "N/A" is not the word "N" (no): not applicable is no verdict, never a silent 0
    (YES_NO, "Verdict: N/A", "no verdict"),
    (YES_NO, "**Answer:** n/a - the reference is empty", "no verdict"),
    (YES_NO, "Decision: Yes/No", "no verdict"),
    (GRADES, '{"label": "excellent"}', "not one of the labels"),
    (PAIR, '{"winner": "3"}', "not one of the labels"),
    (PAIR, "Both responses are fine.", "no verdict"),
    # a numbered list's "1." is no verdict "1"
    (PAIR, "1. Response 2 is more complete.", "no verdict"),
    (
        PAIR,
        "1) Response 1 misses the dose.\n2) Response 2 gives it.\nSo Response 2 is better.",
        "no verdict",
    ),
    # a labelled line naming two answers was read as its first
    (PAIR, "Winner: 1 or 2, hard to say", "two answers (1, 2)"),
    (PAIR, "Winner: Response 1 and Response 2 are tied", "two answers (1, 2)"),
    (YES_NO, "Verdict: yes and no", "two answers (yes, no)"),
    (GRADES, "Label: good or okay", "two answers (good, okay)"),
]


@pytest.mark.parametrize(
    ("spec", "text", "label"),
    ACCEPTED,
    ids=[f"{i}:{t[:30]}" for i, (_, t, _) in enumerate(ACCEPTED)],
)
def test_accepted_answers(spec: OutputSpec, text: str, label: str) -> None:
    verdict = parse_verdict(text, spec)
    assert verdict.label == label
    assert verdict.value == spec.value_of(label)


@pytest.mark.parametrize(
    ("spec", "text", "message"),
    REJECTED,
    ids=[f"{i}:{t[:30]}" for i, (_, t, _) in enumerate(REJECTED)],
)
def test_rejected_answers(spec: OutputSpec, text: str, message: str) -> None:
    with pytest.raises(JudgeParseError) as caught:
        parse_verdict(text, spec)
    assert message in str(caught.value)
    assert caught.value.raw == text  # the raw text travels with the error


def test_values_stored_per_output_type() -> None:
    assert parse_verdict("Yes", YES_NO).value == 1.0
    assert parse_verdict("No", YES_NO).value == 0.0
    assert parse_verdict("Score: 3", SCALE).value == 3.0
    assert [parse_verdict(g, GRADES).value for g in ("bad", "okay", "good")] == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    ("spec", "text", "rationale"),
    [
        (
            SCALE,
            '{"score": 4, "rationale": "Covers the main finding."}',
            "Covers the main finding.",
        ),
        (SCALE, '{"score": 4, "explanation": "From another key."}', "From another key."),
        (SCALE, '{"score": 4, "reason": ["a", "b"]}', '["a", "b"]'),
        (SCALE, "The dose is wrong.\nScore: 2", "The dose is wrong."),
        # what follows the answer on its line is the reason
        (SCALE, "Score: 4 - it misses the dose.", "it misses the dose."),
        (SCALE, "**Rating:** [[4]] because it misses the dose", "because it misses the dose"),
        (YES_NO, "Verdict: No, it contradicts the reference.", "it contradicts the reference."),
        (SCALE, 'It matches the abstract. {"score": 5}', "It matches the abstract."),
        (SCALE, '{"score": 5}', None),
        (SCALE, '```json\n{"score": 5}\n```', None),  # a code fence is no rationale
        (SCALE, 'It cites the trial.\n```json\n{"score": 5}\n```', "It cites the trial."),
        (SCALE, "5", None),
        (YES_NO, "Yes, the candidate is correct.", "the candidate is correct."),
        # the verdict on the last line is taken out there, not where its text first occurs
        (
            SCALE,
            "The answer makes 4 claims; 3 are supported.\n\n4",
            "The answer makes 4 claims; 3 are supported.",
        ),
        (
            SCALE,
            "Score: 3 at first glance.\nThe dose is wrong.\nScore: 3",
            "Score: 3 at first glance. The dose is wrong.",
        ),
    ],
)
def test_rationale_is_kept(spec: OutputSpec, text: str, rationale: str | None) -> None:
    assert parse_verdict(text, spec).rationale == rationale
