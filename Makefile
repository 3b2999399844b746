# facedyn: `make demo` and `make test` each set up .venv (Python 3.11) and run.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 4294967296
export MALLOC_TOP_PAD_ ?= 1073741824

.PHONY: venv demo test lint bench models clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/facedyn demo --out demo_out

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

test: $(STAMP) lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# The shipped DR models (src/facedyn/assets/models/dr-t3|dr-t5|dr-t9), trained on all of ../shared/data;
# the log goes to src/facedyn/assets/models/make_models.log. CV=DIR adds the cv rank tables of DIR/cv_T*.
models: $(STAMP)
	$(BIN)/python scripts/make_models.py $(if $(CV),--cv $(CV),)

clean:
	rm -rf $(VENV) demo_out models_work .pytest_cache .ruff_cache
