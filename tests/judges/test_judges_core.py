"""The judge core: messages, version and cache key, repairs, errors, samples, params."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

import pytest
from judge_helpers import judge_bodies

from harness.cache.keys import request_key
from harness.calls import Caller
from harness.errors import MetricError
from harness.judges import builtin_judge, make_judge
from harness.judges.judge import MAX_REPAIRS, REPAIR_SEPARATOR, Judge
from harness.metrics import ScoringRow
from harness.providers.openai import OpenAIProvider
from harness.providers.python import PythonProvider
from harness.store.rows import ScoreRow

ROW = ScoringRow(
    input="Does aspirin lower fever?",
    output="Yes, it does.",
    expected=("Yes.",),
    context="Aspirin is an antipyretic.",
    latency_s=0.1,
)
REMOTE = OpenAIProvider("judge", "http://127.0.0.1:9/v1")  # only builds requests here


def judge_with(fn_name: str) -> PythonProvider:
    return PythonProvider(f"fake_judges:{fn_name}")


def evaluate(
    judge: Judge,
    provider: Any,
    row: ScoringRow = ROW,
    samples: int = 1,
    caller: Caller | None = None,
) -> tuple[list[ScoreRow], Caller]:
    caller = caller or Caller(cache=None, mode="off")
    rows = asyncio.run(
        judge.evaluate(row, example_id="r1", caller=caller, provider=provider, samples=samples)
    )
    return rows, caller


def key_of(judge: Judge, row: ScoringRow = ROW) -> str:
    return request_key(REMOTE.request(judge.messages(row), judge.request_params(REMOTE, 1)))


def test_messages_hold_definition_rubric_data_and_answer_format() -> None:
    judge = builtin_judge("answer_correctness")
    system, user = judge.messages(ROW)
    assert system["role"] == "system" and user["role"] == "user"
    assert (
        '{"rationale": "<your reasoning, in one to three sentences>", "score": <an integer '
        "from 1 to 5>}" in system["content"]
    )
    assert user["content"].startswith("Judge how correct the answer is")
    assert "Rubric:\n5: fully correct" in user["content"]
    assert user["content"].endswith(
        "Question:\nDoes aspirin lower fever?\n\nReference answer:\n"
        "Yes.\n\nAnswer to judge:\nYes, it does."
    )


def test_several_expected_answers_are_all_shown() -> None:
    row = dataclasses.replace(ROW, expected=("Yes.", "It does."))
    user = builtin_judge("correctness").messages(row)[1]["content"]
    assert "Reference answer:\nany of these:\n- Yes.\n- It does." in user


def test_a_user_message_is_its_parts_stripped_and_joined_by_blank_lines() -> None:
    # The fixed parts are made once per judge (Judge._fixed_text); the text must be what
    # joining every part, the row's own included, gives, or every cached judge call misses.
    judge = make_judge(
        "parts",
        "\n  Q: {input}\nA: {output}  \n",
        definition="  Decide whether the answer is right.\n",
        rubric={"yes": "right", "no": "wrong"},
        examples=[{"input": "q1", "output": "a1", "answer": "yes", "rationale": "fine"}],
        system="Be terse.",
    )
    user = judge.messages(ROW)[1]["content"]
    again = judge.messages(dataclasses.replace(ROW, output="Something else."))[1]["content"]
    rendered = Judge.render(judge.template, {"input": ROW.input, "output": ROW.output})
    parts = [
        judge.definition,
        "Rubric:\n" + (judge.rubric or "").strip(),
        "Examples:\n\n" + judge._example(1, judge.examples[0]),
        rendered,
    ]
    assert user == "\n\n".join(p.strip() for p in parts if p is not None)
    assert again.endswith("A: Something else.") and again.startswith(user[: user.index("Q:")])


@pytest.mark.parametrize(
    "template",
    [
        "Q: {input}\nA: {output}",
        "{output}{output}{input}",
        "no placeholder at all",
        "",
        '{"score": 1} {{output}} { output } {output.text} {unknown} {output',
        "{context}: {expected} / {input}-{output}.",
        "\u00e9 {input} \u6771 {output} {{{input}}}",
    ],
)
def test_render_fills_what_the_placeholder_pattern_matches(template: str) -> None:
    # Rendering splits a template once and joins it per row: the text must be what
    # substituting each match of the placeholder pattern makes, braces and unknowns kept.
    values = {"input": "the {question}", "output": "an answer \\1", "expected": "", "context": "c"}
    reference = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)
    assert Judge.render(template, values) == reference


def test_custom_prompt_keeps_literal_braces() -> None:
    judge = make_judge("j", 'Q: {input}\nA: {output}\nNote: JSON looks like {"a": 1}.')
    assert 'Note: JSON looks like {"a": 1}.' in judge.messages(ROW)[1]["content"]


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "Question: {input}\nAnswer: {output}\nIs it right?"},
        {"definition": "Decide strictly."},
        {"rubric": "yes: all facts right"},
        {"examples": [{"input": "q", "output": "a", "answer": "no"}]},
        {"output": "1-5"},
        {"output": ["wrong", "right"]},
        {"system": "Be terse."},
    ],
)
def test_every_part_of_a_judge_changes_its_version_and_its_cache_key(
    change: dict[str, Any],
) -> None:
    base = {"prompt": "Question: {input}\nAnswer: {output}\nIs it correct?", "output": "yes/no"}
    before = make_judge("j", **base)
    after = make_judge("j", **{**base, **change})
    assert after.version != before.version
    assert key_of(after) != key_of(before)
    assert make_judge("j", **base).version == before.version  # and nothing else does


def test_params_change_version_and_key() -> None:
    before = make_judge("j", "{input} {output}")
    after = make_judge("j", "{input} {output}", params={"max_tokens": 200})
    assert after.version != before.version and key_of(after) != key_of(before)


def test_parser_version_is_in_the_version_but_not_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    judge = builtin_judge("correctness")
    version, key = judge.version, key_of(judge)
    monkeypatch.setattr("harness.judges.judge.PARSER_VERSION", 999)
    assert judge.version != version
    assert key_of(judge) == key  # a better parser re-reads cached answers for free


def test_guidelines_are_part_of_the_prompt_and_version() -> None:
    one = builtin_judge("guidelines", guidelines=["Answer in one sentence."])
    two = builtin_judge("guidelines", guidelines=["Answer in one sentence.", "Cite a study."])
    assert "- Answer in one sentence.\n- Cite a study." in two.messages(ROW)[1]["content"]
    assert one.version != two.version and key_of(one) != key_of(two)
    with pytest.raises(MetricError, match="needs at least one --guideline"):
        builtin_judge("guidelines", guidelines=["  "])


def test_request_params_defaults_and_structured_output() -> None:
    judge = builtin_judge("correctness")
    assert judge.request_params(REMOTE, 1) == {
        "response_format": {"type": "json_object"},
        "temperature": 0.0,
    }
    assert judge.request_params(REMOTE, 3)["temperature"] == 1.0
    assert judge.request_params(judge_with("valid"), 1) == {"temperature": 0.0}
    assert "response_format" not in dataclasses.replace(judge, json_mode=False).request_params(
        REMOTE, 1
    )
    custom = make_judge("j", "{input} {output}", params={"temperature": 0.3, "max_tokens": 50})
    assert custom.request_params(REMOTE, 3) == {
        "response_format": {"type": "json_object"},
        "temperature": 0.3,
        "max_tokens": 50,
    }


def test_a_valid_answer_is_one_call_and_one_row() -> None:
    (row,), caller = evaluate(builtin_judge("answer_relevance"), judge_with("valid"))
    assert (row.value, row.label, row.rationale, row.error) == (4.0, "4", "Mostly right.", None)
    assert row.source == "llm_judge" and row.metric == "answer_relevance" and row.sample == 0
    assert row.raw == '{"rationale": "Mostly right.", "score": 4}'
    assert caller.stats.judge.local_calls == 1 and caller.stats.model.local_calls == 0


def test_prose_answers_are_read_without_repair() -> None:
    (scale,), caller = evaluate(builtin_judge("faithfulness"), judge_with("prose"))
    (yes,), _ = evaluate(builtin_judge("correctness"), judge_with("prose"))
    assert scale.value == 4.0 and yes.value == 1.0 and yes.label == "yes"
    assert caller.stats.judge.local_calls == 1


@pytest.mark.parametrize("fn", ["garbage_then_valid", "out_of_range_then_valid"])
def test_a_bad_answer_is_repaired(fn: str) -> None:
    (row,), caller = evaluate(builtin_judge("answer_correctness"), judge_with(fn))
    assert row.value == 4.0 and row.error is None
    assert caller.stats.judge.local_calls == 2
    first, second = row.raw.split(REPAIR_SEPARATOR)  # both answers are kept
    assert second == '{"rationale": "Mostly right.", "score": 4}'


def test_repairs_are_bounded_and_the_failure_is_an_error_row() -> None:
    (row,), caller = evaluate(builtin_judge("answer_correctness"), judge_with("garbage"))
    assert row.value is None and row.label is None
    assert row.error.startswith(f"no usable verdict after {MAX_REPAIRS} repair(s): no verdict")
    assert row.raw.split(REPAIR_SEPARATOR) == ["I cannot judge this."] * (MAX_REPAIRS + 1)
    assert caller.stats.judge.local_calls == MAX_REPAIRS + 1


def test_the_repair_message_carries_the_conversation_and_the_reason() -> None:
    seen: list[list[dict[str, Any]]] = []

    def record(messages: list[dict[str, Any]]) -> str:
        seen.append(messages)
        return '{"score": 9}' if len(seen) == 1 else '{"score": 2}'

    (row,), _ = evaluate(builtin_judge("answer_correctness"), PythonProvider.from_function(record))
    assert row.value == 2.0
    repair = seen[1]
    assert repair[:2] == seen[0] and repair[2] == {"role": "assistant", "content": '{"score": 9}'}
    assert repair[3]["role"] == "user"
    assert "score 9 is outside the 1-5 scale" in repair[3]["content"]
    assert '"score": <an integer from 1 to 5>' in repair[3]["content"]


def test_a_failing_judge_call_is_an_error_row() -> None:
    (row,), caller = evaluate(builtin_judge("safety"), judge_with("broken"))
    assert row.value is None and row.raw is None
    assert row.error.startswith("judge call failed:") and "judge backend is down" in row.error
    assert caller.stats.judge.errors == 1


@pytest.mark.parametrize(
    ("name", "row", "lacking"),
    [
        ("correctness", dataclasses.replace(ROW, expected=()), "expected answer"),
        ("groundedness", dataclasses.replace(ROW, context=None), "context"),
    ],
)
def test_a_row_without_the_needed_field_is_not_judged(
    name: str, row: ScoringRow, lacking: str
) -> None:
    rows, caller = evaluate(builtin_judge(name), judge_with("valid"), row=row, samples=2)
    assert [(r.sample, r.value, r.error) for r in rows] == [(0, None, None), (1, None, None)]
    assert rows[0].rationale == f"not judged: the row has no {lacking}"
    assert caller.stats.judge.local_calls == 0


def test_samples_are_distinct_requests() -> None:
    seen: list[int] = []

    class Counting(PythonProvider):
        async def complete(self, request: Any, client: Any) -> Any:
            seen.append(request.sample_index)
            return await super().complete(request, client)

    provider = Counting("fake_judges:valid")
    rows, _ = evaluate(builtin_judge("correctness"), provider, samples=3)
    assert [r.sample for r in rows] == [0, 1, 2] and sorted(seen) == [0, 1, 2]
    judge = builtin_judge("correctness")
    keys = {
        request_key(
            REMOTE.request(judge.messages(ROW), judge.request_params(REMOTE, 3), sample_index=i)
        )
        for i in range(3)
    }
    assert len(keys) == 3


def test_bad_judge_definitions_are_metric_errors() -> None:
    with pytest.raises(MetricError, match=r"unknown placeholder \{question\};"):
        make_judge("j", "Q: {question} A: {output}")
    with pytest.raises(MetricError, match="uses no placeholder"):
        make_judge("j", "Is it good?")
    with pytest.raises(MetricError, match="invalid judge name"):
        make_judge("bad name", "{output}")
    with pytest.raises(MetricError, match="unknown judge output"):
        make_judge("j", "{output}", output="good/bad")
    with pytest.raises(MetricError, match="example 1: needs an answer"):
        make_judge("j", "{output}", examples=[{"output": "x"}])
    with pytest.raises(MetricError, match="outside the 1-5 scale"):
        make_judge("j", "{output}", output="1-5", examples=[{"output": "x", "answer": 7}])


CUT_OFF_REASONING = "Initial score: 2. However, on reflection the final score: 5"


def _remote_judge(scheme: str, server: Any) -> Any:
    from harness.providers.anthropic import AnthropicProvider
    from harness.providers.ollama import OllamaProvider

    if scheme == "openai":
        return OpenAIProvider("judge", server.openai_base_url, api_key="sk-test")
    if scheme == "anthropic":
        return AnthropicProvider("judge", server.anthropic_base_url, api_key="sk-test")
    return OllamaProvider("judge", server.url)


async def _judge_over_http(judge: Judge, provider: Any) -> list[ScoreRow]:
    caller = Caller(cache=None, mode="off")
    try:
        return await judge.evaluate(ROW, example_id="r1", caller=caller, provider=provider)
    finally:
        await caller.aclose()


@pytest.mark.parametrize("scheme", ["openai", "anthropic", "ollama"])
def test_an_answer_cut_off_at_its_token_limit_is_never_read(scheme: str, server: Any) -> None:
    # The fake cuts the answer to max_tokens words and says so in the provider's own way
    # (finish_reason "length", stop_reason "max_tokens", done_reason "length").
    server.configure(replies=[CUT_OFF_REASONING])
    judge = make_judge("j", "Rate {output}", output="1-5", params={"max_tokens": 5})
    (row,) = asyncio.run(_judge_over_http(judge, _remote_judge(scheme, server)))
    assert row.value is None and row.label is None  # not the 2 the judge was revising
    assert row.error is not None and "cut off at its token limit" in row.error
    assert "raise max_tokens" in row.error
    assert row.raw is not None and row.raw.startswith("Initial score: 2. However, on")


def test_a_cut_off_answer_is_repaired_with_a_short_verdict(server: Any) -> None:
    server.configure(replies=[CUT_OFF_REASONING, '{"score": 5}'])
    judge = make_judge("j", "Rate {output}", output="1-5", params={"max_tokens": 5})
    (row,) = asyncio.run(_judge_over_http(judge, _remote_judge("openai", server)))
    assert (row.value, row.error) == (5.0, None)
    repair = judge_bodies(server)[1]["messages"][-1]["content"]
    assert "cut off at its token limit (finish_reason 'length')" in repair
