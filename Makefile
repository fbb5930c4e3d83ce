# Two commands do everything on a fresh clone: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install serve worker test lint format bench bench-training bench-analysis bench-scoring clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,boosting,onnx,bench]'
	@touch $(STAMP)

install: $(STAMP)

serve: install ## create .venv, install, migrate, serve on the embedded default
	$(BIN)/mlworker db upgrade
	$(BIN)/mlworker serve

worker: install ## start a Celery worker (scaled-out mode; needs MLWORKER_BROKER_URL)
	$(BIN)/mlworker worker

test: install ## install and run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install ## ruff and mypy, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## job-overhead benchmark for both runners
	$(BIN)/python bench/jobs.py --jobs 500 --runners local,celery-redis,celery-amqp

bench-training: install ## auto vs FLAML vs RF-TPE, 60 s per search (about 20 minutes)
	$(BIN)/python bench/training.py --budget 60

bench-analysis: install ## the three analyses at their target sizes beside the naive way
	$(BIN)/python bench/analysis.py

bench-scoring: install ## tree-JSON scorer vs LightGBM predict; scoring API latency at 200 req/s
	$(BIN)/python bench/scoring.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
