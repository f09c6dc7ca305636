# The two commands: `make run` and `make test`. Everything else is what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: run test lint format setup services translations extract-messages bench bench-kb bench-answer worker clean

## run: set up (venv, install, migrate; plans are seeded by the migration) and serve on :8000;
## `make run PORT=8001` serves on another port, with BASE_URL on it too unless BASE_URL is set
PORT ?= 8000
run: setup
	$(BIN)/flask db upgrade
	@echo "Portal and API on http://127.0.0.1:$(PORT)  (API docs: http://127.0.0.1:$(PORT)/docs)"
	$(if $(filter-out 8000,$(PORT)),BASE_URL=$${BASE_URL:-http://127.0.0.1:$(PORT)} )$(BIN)/gunicorn --bind 127.0.0.1:$(PORT) --workers 1 --threads 8 --preload --access-logfile - wsgi:app

## test: set up, make sure PostgreSQL, Redis and Chromium are there, lint, run the whole suite
test: setup $(VENV)/.dev services lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(VENV)/.runtime translations

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

services:
	bash scripts/services.sh

translations: $(VENV)/.runtime
	$(BIN)/pybabel compile --statistics -d webapp/translations

## extract-messages: refresh the catalog after changing UI strings, then translate zh_CN
extract-messages: $(VENV)/.runtime
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o webapp/translations/messages.pot --no-location --sort-output --no-wrap .
	$(BIN)/pybabel update -i webapp/translations/messages.pot -d webapp/translations --ignore-obsolete --no-fuzzy-matching --no-wrap

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: usage API throughput and latency under gunicorn (PostgreSQL on 127.0.0.1; installs wrk)
bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## bench-kb: answer quality per band on the labelled sets (tests/data/answers_eval, kb_eval)
bench-kb: setup
	$(BIN)/python bench/kb_eval.py

## bench-answer: answer latency over 1,000 and 10,000 synthetic FAQ entries (~10 min)
bench-answer: setup
	$(BIN)/python bench/answer_latency.py $(BENCH_ARGS)

worker: setup
	$(BIN)/python worker.py

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
