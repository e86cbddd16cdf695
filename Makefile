# Two commands do all set-up: `make demo` and `make test`. Both are idempotent.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: demo test install ui clean-venv bench

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/itdr materialize

test: $(STAMP)
	$(BIN)/python -m pytest -q

ui: $(STAMP)
	$(BIN)/itdr ui

bench: $(STAMP)
	$(BIN)/python bench/bench_ingest_render.py
	$(BIN)/python bench/bench_ingest_validate.py
	$(BIN)/python bench/bench_render_tasks.py

clean-venv:
	rm -rf $(VENV)
