# harness — developer tasks. `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SPARK_STAMP := $(VENV)/.spark-stamp
DEMO_DATA := datasets/pubmedqa/pubmedqa_pqal.jsonl

.PHONY: install demo test check bench clean test-mlflow-versions

install: $(STAMP)

# pyspark (~400 MB) only for the tests and benchmarks of --spark: `make demo` stays light.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(SPARK_STAMP)

# compileall: bytecode, as `pip install` of a wheel writes it. An editable install gets it
# only from imports, and none where PYTHONDONTWRITEBYTECODE is set, so every process that
# imports harness (a run logged to MLflow is two) would compile its modules from source.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q harness
	touch $(STAMP)

# The main job, offline, on the bundled PubMedQA set: import, run the context baseline
# with the heuristic metrics, log to the local MLflow store, write that run's HTML report,
# say where to look next. Two questions, two runs: the long answer (a paragraph: overlap
# metrics, where exact match is near 0 by nature) and the yes/no/maybe decision (exact match
# is then accuracy).
demo: install
	$(BIN)/harness data import $(DEMO_DATA) --name pubmedqa
	$(BIN)/harness run --data pubmedqa --model python:harness.baselines:context_overlap \
		--metric token_f1 --metric rouge1 --metric rouge2 --metric rougeL --metric exact_match \
		--metric flesch_kincaid_grade_level --metric ari_grade_level --metric word_count \
		--metric latency --run-name demo-baseline --report $${HARNESS_HOME:-.}/demo-report.html
	$(BIN)/harness data import $(DEMO_DATA) --name pubmedqa-decision --expected final_decision
	$(BIN)/harness run --data pubmedqa-decision --model python:harness.baselines:decision \
		--metric exact_match --run-name demo-decision
	@echo
	@echo "exact_match of demo-decision is the accuracy of a yes/no guess from the abstract's"
	@echo "wording against the experts' final_decision (always answering yes scores 0.552)."
	@echo
	@echo "Next:"
	@echo "  the run's report:  $${HARNESS_HOME:-.}/demo-report.html   (one file: open it in a browser, offline)"
	@echo "  runs:              $(BIN)/harness runs list"
	@echo "  rows:              $(BIN)/harness runs show demo-baseline --rows --limit 5"
	@echo "  every row, in SQL: $(BIN)/python -c \"import duckdb; print(duckdb.connect('$${HARNESS_HOME:-.}/harness.duckdb', read_only=True).sql('SELECT coalesce(run_name, run_id) AS run, metric, round(avg(value), 4) AS mean FROM scores JOIN runs USING (run_id) GROUP BY run_id, run, metric ORDER BY run, metric'))\""
	@echo "  MLflow UI:         $(BIN)/harness ui   (it prints its address when ready)"

# Two workers: most tests wait on subprocesses and servers, so two at a time cut the suite's
# wall time on a 2-core machine; worksteal keeps the long tests from ending last. (Grouping
# the Spark tests by xdist_group would start each JVM once, but --dist loadgroup does not
# group with pytest 9.2: pytest-dev/pytest-xdist#1386.) --durations: the slowest tests at the
# end of every run, to keep the suite under its 15 minutes.
test: install $(SPARK_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=25

# The MLflow tests (the SQL-written run read back through MlflowClient against MLflow's own,
# sync, the store) under every MLflow minor version pyproject allows, each in its own venv
# (.venv-mlflow/<version>). A version passes here before its schema enters VERIFIED_SCHEMAS
# in harness/tracking/mlflow_sqlite.py and pyproject's range; try one with e.g.
# `make test-mlflow-versions MLFLOW_VERSIONS=3.18`.
MLFLOW_VERSIONS ?= 3.17
test-mlflow-versions:
	@set -e; for v in $(MLFLOW_VERSIONS); do \
		test -x .venv-mlflow/$$v/bin/python || $(PYTHON) -m venv .venv-mlflow/$$v; \
		.venv-mlflow/$$v/bin/python -m pip install --quiet -e '.[dev]' "mlflow==$$v.*"; \
		echo "== MLflow $$(.venv-mlflow/$$v/bin/python -c 'import mlflow; print(mlflow.__version__)')"; \
		.venv-mlflow/$$v/bin/python -m pytest -q -p no:cacheprovider tests/tracking; \
	done

check: install
	$(BIN)/ruff check harness tests bench
	$(BIN)/ruff format --check harness tests bench
	$(BIN)/mypy harness

bench: install $(SPARK_STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf harness.duckdb harness.duckdb.wal cache mlruns demo-report.html
