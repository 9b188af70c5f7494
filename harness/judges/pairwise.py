"""The pairwise judge: which of two runs answered each row better.

For every row both runs answered (same dataset, same example id and input), the judge sees
the two outputs twice, once in each order, to cancel position bias: judges tend to prefer
whichever response they read first (or last). When the two orders agree, that run wins the
row; when they disagree the row is a tie, and is counted as ``inconsistent``. A row both
runs answered with the same text is a tie without asking the judge. Results are
returned (and printed by ``harness judges compare``), not stored: every judge call is in
the cache, so running the comparison again costs nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, RunFailed
from harness.judges.judge import SYSTEM_PROMPT, Judge
from harness.judges.output import OutputSpec

if TYPE_CHECKING:
    from harness.calls import Caller
    from harness.config import Home
    from harness.providers.base import Provider
    from harness.store.rows import ScoreRow

__all__ = ["PAIRWISE_JUDGE", "Comparison", "PairwiseRow", "compare_runs"]

PAIRWISE_OUTPUT = OutputSpec.parse(["1", "2", "tie"], key="winner")
PAIRWISE_JUDGE = Judge(
    name="pairwise",
    template="{input}",  # the rows are rendered by pairwise_messages; see PAIRWISE_TEMPLATE
    output=PAIRWISE_OUTPUT,
    definition=(
        "Compare two responses to the same question and decide which one is better: more "
        "correct (against the reference answer, when one is given), more complete, more "
        "relevant to the question, and better supported by the context, when one is given. "
        "Do not let the order of the responses, their length or their style sway you. Say "
        '"1" or "2" for the better response, or "tie" when neither is better.'
    ),
    description="pairwise: which of two outputs is better (asked in both orders)",
    origin="builtin",
)
PAIRWISE_TEMPLATE = "{sections}\n\nResponse 1:\n{first}\n\nResponse 2:\n{second}"
PAIRWISE_VERSION = hashlib.sha256(
    (PAIRWISE_JUDGE.version + PAIRWISE_TEMPLATE).encode()
).hexdigest()[:12]


@dataclass
class PairwiseRow:
    """One row compared. Verdicts are ``"a"``, ``"b"`` or ``"tie"``, in run terms."""

    example_id: str
    input: str
    output_a: str
    output_b: str
    winner: str | None  # None when a judge answer failed
    a_first: str | None  # the verdict with run A's output shown first
    b_first: str | None  # ... and with run B's output shown first
    consistent: bool | None  # the two orders agree
    rationale_a_first: str | None = None
    rationale_b_first: str | None = None
    error: str | None = None


@dataclass
class Comparison:
    """The outcome of ``compare_runs``: per-row verdicts and their totals."""

    run_a: str
    run_b: str
    dataset: str
    judge_model: str
    judge_version: str
    rows: list[PairwiseRow]
    skipped: int  # rows not compared: missing from a run, failed there, or a different input
    calls: dict[str, Any] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, Any]:
        decided = [r for r in self.rows if r.winner is not None]
        wins_a = sum(r.winner == "a" for r in decided)
        wins_b = sum(r.winner == "b" for r in decided)
        ties = sum(r.winner == "tie" for r in decided)
        return {
            "compared": len(self.rows),
            "wins_a": wins_a,
            "wins_b": wins_b,
            "ties": ties,
            "inconsistent": sum(r.consistent is False for r in decided),
            "errors": len(self.rows) - len(decided),
            "skipped": self.skipped,
            # A tie counts half, as in chess and Chatbot Arena's win rates.
            "win_rate_a": (wins_a + ties / 2) / len(decided) if decided else None,
        }

    def failure(self) -> RunFailed | None:
        """Rows whose judge answers failed (after retries) as the error to exit with (1)."""
        failed = [r.error for r in self.rows if r.winner is None and r.error]
        if not failed:
            return None
        reasons = Counter(failed).most_common(2)
        return RunFailed(
            f"{len(failed):,} of {len(self.rows):,} rows could not be judged ("
            + "; ".join(f"{n:,} x {r}" for r, n in reasons)
            + "); the totals leave them out"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "dataset": self.dataset,
            "judge_model": self.judge_model,
            "judge_version": self.judge_version,
            **self.totals,
            "calls": self.calls,
            "rows": [asdict(r) for r in self.rows],
        }


def pairwise_messages(
    question: str,
    first: str,
    second: str,
    *,
    expected: tuple[str, ...] = (),
    context: str | None = None,
) -> list[dict[str, str]]:
    """The judge's messages with ``first`` shown as Response 1 and ``second`` as Response 2."""
    sections = [f"Question:\n{question}"]
    if context:
        sections.append(f"Context:\n{context}")
    if expected:
        shown = expected[0] if len(expected) == 1 else "\n".join(f"- {a}" for a in expected)
        sections.append(f"Reference answer:\n{shown}")
    body = PAIRWISE_TEMPLATE.format(sections="\n\n".join(sections), first=first, second=second)
    system = f"{SYSTEM_PROMPT}\n\n{PAIRWISE_JUDGE.answer_instructions()}"
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{PAIRWISE_JUDGE.definition}\n\n{body}"},
    ]


def _in_run_terms(label: str | None, a_shown_first: bool) -> str | None:
    if label is None or label == "tie":
        return label
    return "a" if (label == "1") == a_shown_first else "b"


async def compare_row(row: dict[str, Any], *, caller: Caller, provider: Provider) -> PairwiseRow:
    """Ask the judge in both orders and combine the verdicts."""
    if row["output_a"] == row["output_b"]:
        # One answer twice: both orders are the same prompt, and whichever position the
        # judge names would read as inconsistency. Neither run is better; nothing is asked.
        return PairwiseRow(
            row["id"], row["input"], row["output_a"], row["output_b"], "tie", "tie", "tie", True
        )
    params = PAIRWISE_JUDGE.request_params(provider, samples=1)
    common = {"expected": tuple(row["expected"]), "context": row["context"]}
    orders = [
        pairwise_messages(row["input"], row["output_a"], row["output_b"], **common),
        pairwise_messages(row["input"], row["output_b"], row["output_a"], **common),
    ]
    answers: list[ScoreRow] = list(
        await asyncio.gather(
            *(
                PAIRWISE_JUDGE.ask(
                    messages, params, example_id=row["id"], caller=caller, provider=provider
                )
                for messages in orders
            )
        )
    )
    a_first = _in_run_terms(answers[0].label, a_shown_first=True)
    b_first = _in_run_terms(answers[1].label, a_shown_first=False)
    errors = [a.error for a in answers if a.error]
    winner = consistent = None
    if not errors:
        consistent = a_first == b_first
        winner = a_first if consistent else "tie"
    return PairwiseRow(
        row["id"],
        row["input"],
        row["output_a"],
        row["output_b"],
        winner,
        a_first,
        b_first,
        consistent,
        answers[0].rationale,
        answers[1].rationale,
        "; ".join(dict.fromkeys(errors)) or None,  # both orders fail alike, mostly
    )


def compare_runs(
    run_a: str,
    run_b: str,
    *,
    judge_model: str | None = None,
    home: str | os.PathLike[str] | Home | None = None,
    cache: str = "use",
    concurrency: int = 16,
    limit: int | None = None,
) -> Comparison:
    """Compare two runs' outputs row by row with a pairwise judge (both orders per row).

    Runs are given by id (or an unambiguous prefix) and must be on the same dataset.
    ``judge_model`` defaults to ``judge_model`` in harness.toml.
    """
    from harness.config import resolve_home
    from harness.judges.session import judge_provider, judge_session
    from harness.store.runs import get_run, load_outputs

    home = resolve_home(home)
    info_a, info_b = get_run(home.db_path, run_a), get_run(home.db_path, run_b)
    if info_a.dataset != info_b.dataset:
        raise ConfigError(
            f"runs {info_a.run_id} and {info_b.run_id} are on different datasets "
            f"({info_a.dataset}, {info_b.dataset}); compare runs of one dataset"
        )
    provider = judge_provider(home, judge_model)
    outputs_a = load_outputs(home.db_path, info_a.run_id).to_dict("records")
    outputs_b = {r["id"]: r for r in load_outputs(home.db_path, info_b.run_id).to_dict("records")}
    rows = []
    for a in outputs_a:
        b = outputs_b.get(a["id"])
        if (
            b is None
            or _text(a["output"]) is None
            or _text(b["output"]) is None
            or a["input"] != b["input"]
        ):
            continue
        expected = a["expected"]
        rows.append(
            {
                "id": a["id"],
                "input": a["input"],
                "context": _text(a["context"]),
                "expected": tuple(expected) if _text(a["expected"], True) else (),
                "output_a": a["output"],
                "output_b": b["output"],
            }
        )
    skipped = len({r["id"] for r in outputs_a} | set(outputs_b)) - len(rows)
    if limit is not None:
        rows = rows[:limit]

    async def work(caller: Caller) -> list[PairwiseRow]:
        return list(
            await asyncio.gather(*(compare_row(r, caller=caller, provider=provider) for r in rows))
        )

    compared, calls = judge_session(home, work, cache=cache, concurrency=concurrency)
    return Comparison(
        info_a.run_id,
        info_b.run_id,
        f"{info_a.dataset}@{info_a.dataset_version}",
        provider.uri,
        PAIRWISE_VERSION,
        compared,
        skipped,
        calls,
    )


def _text(value: Any, sequence: bool = False) -> Any:
    """None for a missing cell (None or NaN, as pandas may hand either back)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if sequence or isinstance(value, str) else str(value)
