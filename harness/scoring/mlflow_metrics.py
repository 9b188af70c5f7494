"""MLflow's ``EvaluationMetric`` objects as harness metrics and judges.

What each kind of object becomes (docs/metrics.md has the table users read):

- ``make_metric(eval_fn=...)``: a batch metric; its ``eval_fn`` is called once, with the
  arguments ``mlflow.evaluate`` would pass, so its scores and aggregates are MLflow's.
- ``make_genai_metric(...)``, ``make_genai_metric_from_prompt(...)`` and MLflow's
  ``answer_similarity``, ``answer_correctness``, ``answer_relevance``, ``faithfulness``,
  ``relevance``: an :class:`~harness.scoring.mlflow_judge.MlflowJudge` asking the judge
  model named in the metric (``openai:/gpt-4``: the same URI in harness) MLflow's own
  grading prompt, read from the metric object.
- MLflow's built-in heuristic metrics (``mlflow.metrics.exact_match()``, ...): run as MLflow
  runs them when they work offline; ``latency()`` is harness's ``latency``; the ones that
  download a model or a module at first use (toxicity, token_count, rouge*, bleu) are
  refused with the harness metric to use instead.

Every metric keeps MLflow's name, ``NAME/VERSION`` when it has a version
(``answer_relevance/v1``), so its aggregates carry MLflow's names
(``answer_relevance/v1/mean``, ``/p90``, ``/variance``). What cannot be converted fails
before the run, in one line.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import re
import sys
from typing import Any

from harness.errors import MetricError
from harness.judges.output import OutputSpec
from harness.metrics import BatchMetric, Metric, get_metric
from harness.scoring.functions import direction_of, eval_fn_metric
from harness.scoring.mlflow_judge import MlflowJudge, template_fields
from harness.scoring.shape import OUTPUT_NAMES, DataShape, Source

__all__ = [
    "REFUSED_BUILTINS",
    "adapt_evaluation_metric",
    "is_evaluation_metric",
    "judge_model",
    "same_builtin",
]

# MLflow built-in metrics that cannot run offline, and what to use in their place.
REFUSED_BUILTINS: dict[str, str] = {
    "toxicity": "downloads a Hugging Face model at first use; harness metrics run offline",
    "token_count": "needs tiktoken, which downloads its encoding at first use; harness "
    "records every call's output_tokens, and word_count counts words",
    "rouge1": "loads the `rouge` module from the Hugging Face Hub at first use; use "
    "harness's 'rouge1' (the same F-measure, offline)",
    "rouge2": "loads the `rouge` module from the Hugging Face Hub at first use; use "
    "harness's 'rouge2' (the same F-measure, offline)",
    "rougeL": "loads the `rouge` module from the Hugging Face Hub at first use; use "
    "harness's 'rougeL' (the same F-measure, offline)",
    "rougeLsum": "loads the `rouge` module from the Hugging Face Hub at first use; use "
    "harness's 'rougeL'",
    "bleu": "loads the `bleu` module from the Hugging Face Hub at first use",
}
# ...and the offline ones that need a package the user may not have.
_NEEDS_PACKAGE = {
    "flesch_kincaid_grade_level": ("textstat", "flesch_kincaid_grade_level"),
    "ari_grade_level": ("textstat", "ari_grade_level"),
    "exact_match": ("sklearn", "exact_match"),
}
# ...and the NLTK corpus the package downloads at first use when it is not there: textstat
# 0.7.10+ (it requires nltk) counts syllables with the CMU dictionary.
_DOWNLOADS_CORPUS = {"flesch_kincaid_grade_level": "cmudict"}
# MLflow's retriever metrics (precision_at_k(k), ...), told by their eval_fn's factory: they
# read each output as a list of document ids and each row's targets as a list.
RETRIEVER_EVAL_FNS = ("_precision_at_k_eval_fn", "_recall_at_k_eval_fn", "_ndcg_at_k_eval_fn")
# MLflow judge model URI schemes harness calls with a provider of its own.
_SCHEMES = {"openai": "openai", "anthropic": "anthropic", "databricks": "databricks"}
# A score a rubric names: "Score 1", "Scores: 1", "score from 1", "a scale of 1" ...
_SCORE_MENTION = re.compile(
    r"\b(?:scores?|scale|rating)\s*(?::|=|of|from|between|is)?\s*(\d+)\b(?!\.\d)", re.I
)
# ... and the scores its sentence goes on to list: ", 5 formal", " to 5", " or 3", "-5".
_NEXT_SCORE = re.compile(
    r"(?:[,;/\-–]|\b(?:or|and|to|through)\b)\s*(\d+)\b(?!\.\d)(?!\s*(?:%|percent))", re.I
)
_SENTENCE_END = re.compile(r"\n|\.(?:\s|$)")
# What a make_genai_metric_from_prompt judge accepts when its prompt names no scale: MLflow
# asks for "a numerical score" and checks none; 0-100 holds the scales prompts use.
PROMPT_SCALE = "0-100"


def is_evaluation_metric(obj: Any) -> bool:
    """Whether ``obj`` is MLflow's EvaluationMetric (without importing MLflow)."""
    module = sys.modules.get("mlflow.models.evaluation.base")
    return module is not None and isinstance(obj, module.EvaluationMetric)


def same_builtin(a: Any, b: Any) -> bool:
    """Whether two EvaluationMetrics are one of MLflow's own offline metrics, by name: its
    name holds all it is made of (``precision_at_3``, ``exact_match/v1``). Not a GenAI
    metric, whose model and prompt its name does not say."""
    return all(
        not m.genai_metric_args
        and (getattr(m.eval_fn, "__module__", "") or "").startswith("mlflow.")
        for m in (a, b)
    ) and full_name(a) == full_name(b)


def full_name(metric: Any) -> str:
    """MLflow's name for a metric's results: ``NAME/VERSION`` or ``NAME``."""
    return f"{metric.name}/{metric.version}" if metric.version else str(metric.name)


def adapt_evaluation_metric(
    metric: Any, *, shape: DataShape | None = None
) -> Metric | BatchMetric | MlflowJudge:
    """The harness metric or judge an MLflow ``EvaluationMetric`` is (see the module)."""
    shape = shape or DataShape()
    name = full_name(metric)
    args = metric.genai_metric_args
    if args:
        if args.get("fn_name") == "make_genai_metric_from_prompt":
            return _from_prompt(metric, name, args, shape)
        return _graded(metric, name, args, shape)
    module = getattr(metric.eval_fn, "__module__", "") or ""
    if module.startswith("mlflow."):  # one of MLflow's own metrics
        if metric.name == "latency":
            return get_metric("latency")  # MLflow times its predictions; harness every call
        if metric.name in REFUSED_BUILTINS:
            reason = REFUSED_BUILTINS[metric.name]
            raise MetricError(f"MLflow metric {name!r} cannot run in harness: it {reason}")
        package, instead = _NEEDS_PACKAGE.get(metric.name, (None, None))
        if package and importlib.util.find_spec(package) is None:
            raise MetricError(
                f"MLflow metric {name!r} needs the {package} package (pip install {package}); "
                f"or use harness's {instead!r}"
            )
        corpus = _DOWNLOADS_CORPUS.get(metric.name)
        if corpus and _downloads_corpus(str(package), corpus):
            raise MetricError(
                f"MLflow metric {name!r} cannot run in harness here: {package} downloads NLTK's "
                f"{corpus} corpus at first use and harness metrics run offline; install it once "
                f"(python -m nltk.downloader {corpus}), or use harness's {instead!r}"
            )
    retriever = module.startswith("mlflow.") and _factory(metric.eval_fn) in RETRIEVER_EVAL_FNS
    found = eval_fn_metric(
        metric.eval_fn,
        name=name,
        direction=direction_of(metric.greater_is_better),
        shape=shape,
        description=_one_line(metric.long_name if metric.long_name != metric.name else ""),
        origin="mlflow",
        id_lists=retriever,
    )
    if retriever:  # precision, recall and NDCG at k: shares, so intervals stop at 0 and 1
        found = dataclasses.replace(found, bounds=(0.0, 1.0))
    if module.startswith("mlflow.") and "targets" in inspect.signature(metric.eval_fn).parameters:
        # MLflow's own (exact_match, precision_at_k, mae, ...) take targets=None and return
        # nothing without them: refused before the run, as harness's exact_match is, rather
        # than a run whose results silently lack the metric.
        found = dataclasses.replace(found, needs_expected=True)
    return found


def _factory(fn: Any) -> str:
    """The function that made ``fn`` (``_precision_at_k_eval_fn`` for its ``_fn``)."""
    return str(getattr(fn, "__qualname__", "")).split(".<locals>.")[0]


def _downloads_corpus(package: str, corpus: str) -> bool:
    """Whether ``package`` (installed) needs NLTK and NLTK has no ``corpus`` here."""
    from importlib import metadata

    try:
        requires = metadata.requires(package) or []
    except metadata.PackageNotFoundError:
        return False
    if not any(re.match(r"nltk\b", requirement) for requirement in requires):
        return False  # an older release: pyphen or the cmudict package, both offline
    try:
        import nltk

        nltk.data.find(f"corpora/{corpus}")
    except ImportError:
        return False  # the package cannot run at all; its own error says why
    except LookupError:
        return True
    return False


def judge_model(uri: Any, metric: str) -> str:
    """The harness model URI for an MLflow judge model URI; MetricError when there is none.

    ``openai:/``, ``anthropic:/`` and ``databricks:/`` are the same in both; MLflow's
    ``endpoints:/NAME`` is a Databricks serving endpoint. A served MLflow model, the MLflow
    AI Gateway and providers harness has no client for are refused.
    """
    if not isinstance(uri, str) or ":/" not in uri:
        raise MetricError(
            f"MLflow metric {metric!r}: its model must be a URI such as openai:/gpt-4o-mini, "
            f"not {uri!r}"
        )
    scheme, _, rest = uri.partition(":/")
    rest = rest.lstrip("/")
    if scheme in _SCHEMES and rest:
        return f"{_SCHEMES[scheme]}:/{rest}"
    target = os.environ.get("MLFLOW_DEPLOYMENTS_TARGET", "databricks")
    if scheme == "endpoints" and rest and target.startswith("databricks"):
        return f"databricks:/{rest}"
    if scheme in ("models", "runs", "model"):
        why = "a served MLflow model, which harness cannot call"
    elif scheme in ("gateway", "endpoints"):
        why = "the MLflow AI Gateway, which harness does not call"
    else:
        why = f"the {scheme!r} provider, which harness has no client for"
    raise MetricError(
        f"MLflow metric {metric!r} asks {uri!r}, {why}; give it an openai:/, anthropic:/ or "
        "databricks:/ model (any OpenAI-compatible server through OPENAI_BASE_URL)"
    )


def _graded(metric: Any, name: str, args: dict[str, Any], shape: DataShape) -> MlflowJudge:
    """``make_genai_metric``: MLflow's grading prompt, exactly as the metric object holds it."""
    template = str(metric.metric_details or "")
    try:
        fields = set(template_fields(template))
    except ValueError as e:
        raise MetricError(
            f"MLflow metric {name!r}: its grading prompt has stray braces: {e}"
        ) from None
    unknown = sorted(fields - {"input", "output", "grading_context_columns"})
    if not template or unknown:
        raise MetricError(
            f"MLflow metric {name!r}: its grading prompt fills {unknown or 'nothing'}, which "
            "MLflow cannot fill either (braces in the definition or rubric?)"
        )
    keys = args.get("grading_context_columns") or []
    keys = [keys] if isinstance(keys, str) else list(keys)
    context = tuple((key, _source(shape, key, name)) for key in keys)
    examples = args.get("examples") or []
    grading = str(args.get("grading_prompt") or "")
    scale = _scale([grading], [e.score for e in examples])
    if scale is None:
        named = sorted(_named_scores(grading))
        raise MetricError(
            f"MLflow metric {name!r}: its grading prompt names "
            f"{'only score ' + str(named[0]) if named else 'no score'}, so harness cannot tell "
            "its scale; name the lowest and highest ('Score 1: ...', 'Score 5: ...') or give "
            "examples with their scores"
        )
    return _judge(
        name,
        args,
        template=template,
        output=scale,
        params=_parameters(args),
        description=_one_line(str(args.get("definition") or "")),
        style="grading",
        include_input=bool(args.get("include_input", True)),
        context=context,
    )


def _from_prompt(metric: Any, name: str, args: dict[str, Any], shape: DataShape) -> MlflowJudge:
    """``make_genai_metric_from_prompt``: the user's prompt and MLflow's answer format."""
    from mlflow.metrics.genai.genai_metric import _PROMPT_FORMATTING_WRAPPER

    prompt = str(args.get("judge_prompt") or "")
    try:
        variables = list(dict.fromkeys(template_fields(prompt)))
    except ValueError as e:
        raise MetricError(
            f"MLflow metric {name!r}: its judge prompt has stray braces: {e}"
        ) from None
    pairs = []
    for variable in variables:
        source = Source("output") if variable in OUTPUT_NAMES else _source(shape, variable, name)
        pairs.append((variable, source))
    return _judge(
        name,
        args,
        template=prompt + _PROMPT_FORMATTING_WRAPPER,
        output=_scale([prompt], []) or OutputSpec.parse(PROMPT_SCALE),
        params=dict(args.get("parameters") or {}),
        description=_one_line(prompt),
        style="prompt",
        variables=tuple(pairs),
    )


def _judge(name: str, args: dict[str, Any], **own: Any) -> MlflowJudge:
    """An MlflowJudge with what every GenAI metric gives: its model, direction, aggregations;
    no structured output (MLflow asks for none)."""
    return MlflowJudge(
        name=name,
        origin="mlflow",
        json_mode=False,
        model=judge_model(args.get("model"), name),
        direction=direction_of(args.get("greater_is_better", True)),
        aggregations=_aggregations(args, name),
        **own,
    )


def _source(shape: DataShape, key: str, metric: str) -> Source:
    source = shape.source(key)
    if source is None:
        raise MetricError(
            f"MLflow metric {metric!r} reads {key!r}: no such column in the data (columns: "
            f"{shape.describe()}); map one with evaluator_config={{'col_mapping': "
            f"{{{key!r}: COLUMN}}}}"
        )
    return source


def _parameters(args: dict[str, Any]) -> dict[str, Any]:
    """The judge parameters MLflow sends: the metric's, else its prompt version's defaults."""
    if args.get("parameters") is not None:
        return dict(args["parameters"])
    from mlflow.utils.class_utils import _get_class_from_string

    version = args.get("version") or "v1"
    model_class = _get_class_from_string(f"mlflow.metrics.genai.prompts.{version}.EvaluationModel")
    return dict(model_class(name="", definition="", grading_prompt="").parameters)


def _aggregations(args: dict[str, Any], name: str) -> tuple[str, ...]:
    from harness.metrics import EXTRA_AGGREGATIONS

    chosen = tuple(args.get("aggregations") or ("mean", "variance", "p90"))
    unknown = [a for a in chosen if a not in EXTRA_AGGREGATIONS and a not in ("mean", "p90")]
    if unknown:
        raise MetricError(f"MLflow metric {name!r}: unknown aggregation(s) {', '.join(unknown)}")
    return tuple(a for a in chosen if a not in ("mean", "p90"))


def _scale(texts: list[str], example_scores: list[Any]) -> OutputSpec | None:
    """The score range a rubric describes (``Score 1`` ... ``Score 5``, ``Score 1 casual,
    5 formal``, ``a score from 1 to 5``) and its examples' scores; None when they name
    fewer than two scores (or more than 101 points).

    MLflow accepts any whole number; harness accepts the range the rubric names, so an
    answer off the scale is repaired instead of averaged in.
    """
    found = {score for text in texts for score in _named_scores(text)}
    found |= {int(s) for s in example_scores if isinstance(s, (int, float))}
    if len(found) >= 2 and max(found) - min(found) <= 100:
        return OutputSpec.parse(f"{min(found)}-{max(found)}")
    return None


def _named_scores(text: str) -> set[int]:
    """The numbers ``text`` gives as scores: each one a score word names, and the ones its
    sentence goes on to list, unless the score labels a rubric line (``Score 5: ...``,
    whose description may hold other numbers)."""
    found: set[int] = set()
    for mention in _SCORE_MENTION.finditer(text):
        found.add(int(mention.group(1)))
        rest = text[mention.end() :]
        if rest.lstrip(" \t").startswith(":"):
            continue
        end = _SENTENCE_END.search(rest)
        found |= {int(n) for n in _NEXT_SCORE.findall(rest[: end.start() if end else None])}
    return found


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line[:97] + "..." if len(line) > 100 else line
