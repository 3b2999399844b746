# facedyn: `make demo` and `make test` each set up .venv (Python 3.11) and run.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 4294967296
export MALLOC_TOP_PAD_ ?= 1073741824

.PHONY: venv demo test test-random lint dist bench models report-check docs docs-check clean

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

# the suite in file order, on 2 processes (pytest-xdist, each test file in one process; TEST_WORKERS=0: all in
# this one); `make test-random` runs it in a random order (pytest-randomly, which prints its seed: SEED=N reruns
# that order). No test depends on the order or on running alone: all must pass.
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadfile)
test: $(STAMP) lint
	$(BIN)/pytest $(XDIST) -p no:randomly

test-random: $(STAMP) lint
	@seed=$${SEED:-$$(date +%s)}; echo "random order: SEED=$$seed make test-random repeats it"; \
	$(BIN)/pytest $(XDIST) --randomly-seed=$$seed

# the wheel and the sdist into dist/ (tests/test_wheel.py installs the wheel into a fresh environment and runs it)
dist: $(STAMP)
	$(BIN)/python -m build --no-isolation --outdir dist .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# The shipped models (src/facedyn/assets/models/dr-t3|dr-t5|dr-t9|fabnet|tcae), trained on all of
# ../shared/data, resumable; the log goes to src/facedyn/assets/models/make_models.log. CV=DIR adds the cv rank
# tables of DIR/cv_T*.
models: $(STAMP)
	$(BIN)/python scripts/make_models.py $(if $(CV),--cv $(CV),)

# Render the demo's HTML report and the `infer --html` page of a real clip (VIDEO; the demo's first synthetic
# clip where ../shared is absent) in headless Chromium (Debian's package) and save screenshots to look at:
# $(REPORT:.html=.png) and $(VIEW:.html=.png).
REPORT ?= demo_out/report.html
REAL_VIDEO := ../shared/data/real/talking_d10.mp4
VIDEO ?= $(if $(wildcard $(REAL_VIDEO)),$(REAL_VIDEO),demo_out/videos/S001/S001.mp4)
VIEW ?= demo_out/infer/view.html
CHROMIUM = chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync --user-data-dir=$$(mktemp -d) \
	--hide-scrollbars
report-check: $(STAMP)
	test -f $(REPORT) || $(MAKE) demo
	test -f $(VIEW) || $(BIN)/facedyn infer $(VIDEO) --html --out $(dir $(VIEW))
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	$(CHROMIUM) --window-size=1200,4000 --screenshot=$(REPORT:.html=.png) file://$$(realpath $(REPORT))
	$(CHROMIUM) --window-size=1200,1800 --screenshot=$(VIEW:.html=.png) file://$$(realpath $(VIEW))
	@echo "screenshots: $(REPORT:.html=.png) $(VIEW:.html=.png)"

# The documentation site (mkdocs.yml, docs/) built into site/ with --strict: a broken link, a missing page or anchor,
# a docstring reference that does not resolve fails it (tests/test_docs.py runs the same build). Nothing is
# downloaded: the CLI reference comes from the Typer app, MathJax from a pip package (scripts/mkdocs_hooks.py).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Render the site's index, the DR method page and the API page in headless Chromium (Debian's package), check that
# MathJax typeset the equations, and save screenshots to look at: $(DOCS_SHOTS)/{index,method-dr,api}.png.
DOCS_SHOTS ?= build/docs-check
docs-check: docs
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	$(BIN)/python scripts/docs_check.py site $(DOCS_SHOTS)

clean:
	rm -rf $(VENV) demo_out models_work site .pytest_cache .ruff_cache
