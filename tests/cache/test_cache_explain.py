"""explain_miss: one line that says what differs from the closest cached request."""

from __future__ import annotations

from harness.cache import canonical_request, closest, differences, explain_miss


def test_a_changed_temperature(make_request) -> None:
    cached = canonical_request(make_request(params={"temperature": 0.0, "max_tokens": 16}))
    wanted = canonical_request(make_request(params={"temperature": 0.7, "max_tokens": 16}))
    assert explain_miss(wanted, [cached]) == "temperature: 0.7 (cached: 0.0)"


def test_a_param_added_removed_or_retyped(make_request) -> None:
    cached = canonical_request(make_request(params={"temperature": 0.0, "max_tokens": 16}))
    wanted = canonical_request(make_request(params={"temperature": "0.0", "seed": 42}))
    assert explain_miss(wanted, [cached]) == (
        'max_tokens: not set (cached: 16); seed: 42 (cached: not set); temperature: "0.0" '
        "(cached: 0.0)"
    )


def test_a_changed_prompt_names_the_character_message_and_both_sides(make_request) -> None:
    system = {"role": "system", "content": "Answer in one word."}
    question = "Context: " + "x" * 176 + ". Now answer the question in one word, please."
    cached = canonical_request(
        make_request(messages=(system, {"role": "user", "content": question}))
    )
    edited = question.replace("in one word", "briefly")
    wanted = canonical_request(make_request(messages=(system, {"role": "user", "content": edited})))
    position = question.index("in one word")
    assert position + 1 == 212
    assert explain_miss(wanted, [cached]) == (
        "prompt differs at character 212 (message 1, user): "
        '"…answer the question briefly, please." '
        '(cached: "…answer the question in one word, please.")'
    )


def test_an_empty_family(make_request) -> None:
    wanted = canonical_request(make_request())
    assert explain_miss(wanted, []) == (
        "no cached entry for this provider/model (openai:/gpt-4o-mini at https://api.openai.com/v1)"
    )


def test_only_another_model_is_cached(make_request) -> None:
    wanted = canonical_request(make_request(base_url=None))
    cached = canonical_request(make_request(model="gpt-4o", base_url=None))
    assert explain_miss(wanted, [cached]) == (
        "no cached entry for this provider/model (openai:/gpt-4o-mini); "
        "closest: model: gpt-4o-mini (cached: gpt-4o)"
    )


def test_the_closest_candidate_is_the_one_explained(make_request) -> None:
    wanted = canonical_request(make_request(params={"temperature": 0.7, "max_tokens": 16}))
    far = canonical_request(
        make_request(
            params={"temperature": 0.2, "max_tokens": 8},
            messages=({"role": "user", "content": "Something else"},),
        )
    )
    near = canonical_request(make_request(params={"temperature": 0.0, "max_tokens": 16}))
    assert closest(wanted, [far, near]) is near
    assert explain_miss(wanted, [far, near]) == "temperature: 0.7 (cached: 0.0)"


def test_ties_go_to_the_longest_common_prompt_prefix(make_request) -> None:
    def asking(text: str) -> dict:
        return canonical_request(make_request(messages=({"role": "user", "content": text},)))

    wanted = asking("What is the capital of Peru?")
    chile = asking("What is the capital of Chile?")
    assert closest(wanted, [asking("Who wrote Hamlet?"), chile]) is chile


def test_message_count_role_and_sample_index(make_request) -> None:
    one = ({"role": "user", "content": "Hi"},)
    two = ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"})
    cached = canonical_request(make_request(messages=two))
    wanted = canonical_request(make_request(messages=one, sample_index=2))
    assert differences(wanted, cached) == ["sample_index: 2 (cached: 0)", "messages: 1 (cached: 2)"]
    swapped = canonical_request(make_request(messages=({"role": "system", "content": "Hi"},)))
    assert differences(swapped, canonical_request(make_request(messages=one))) == [
        "message 0 role: system (cached: user)"
    ]


def test_many_differences_are_cut_short(make_request) -> None:
    cached = canonical_request(make_request(params={}))
    wanted = canonical_request(make_request(params={"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}))
    assert explain_miss(wanted, [cached], max_differences=2) == (
        "a: 1 (cached: not set); b: 2 (cached: not set); and 3 more"
    )


def test_an_identical_request_points_at_verify(make_request) -> None:
    same = canonical_request(make_request())
    assert "harness cache verify" in explain_miss(same, [same])


def test_an_edited_row_is_explained_against_its_own_prompt(make_request) -> None:
    def asking(text: str) -> dict:
        return canonical_request(make_request(messages=({"role": "user", "content": text},)))

    peru, chile = asking("What is the capital of Peru?"), asking("What is the capital of Chile?")
    # Both share "What is the capit" with it; only Chile's prompt shares the rest.
    wanted = asking("What is the capitol of Chile?")
    assert closest(wanted, [peru, chile]) is chile
    assert explain_miss(wanted, [peru, chile]) == (
        'prompt differs at character 18 (message 0, user): "What is the capitol of Chile?" '
        '(cached: "What is the capital of Chile?")'
    )
    # A change that makes its first difference later with another row's prompt.
    wanted = asking("What is the capital of Phile?")
    assert closest(wanted, [peru, chile]) is chile
