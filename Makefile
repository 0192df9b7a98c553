# Two commands on a fresh machine: `make book` builds the whole executed book,
# `make test` runs every check (what CI runs). Both create the environment first.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-lock
PACKAGE := $(VENV)/.installed-package
MATHJAX := node_modules/.package-lock.json
export PYTHONUNBUFFERED := 1
# TensorFlow (imported by neural-tangents) is chatty on stderr; only errors matter.
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: all env book test lint unit chapters nbval html browser bench lock clean

all: book

# The venv is rebuilt from scratch whenever the lock changes; the package (editable) is
# reinstalled whenever its metadata changes.
$(STAMP): requirements.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	touch $@

$(PACKAGE): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $@

$(MATHJAX): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

env: $(PACKAGE) $(MATHJAX)

book: env
	$(BIN)/companion book

test: lint unit chapters nbval browser

lint: env
	$(BIN)/ruff check src tests book benchmarks
	$(BIN)/ruff format --check src tests book benchmarks
	node_modules/.bin/pyright

unit: env
	$(BIN)/pytest -q --ignore=tests/built

# Executes every chapter with quick=True and builds the HTML (-W: warnings are errors).
chapters: env
	$(BIN)/companion book --quick

# Re-executes the executed notebooks and compares the cells tagged nbval-check-output.
# Their claims go to a throwaway folder, not into the book's results.
nbval: env
	COMPANION_RESULTS_DIR=$$(mktemp -d) $(BIN)/pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg book/*.ipynb

# The built book as a reader sees it: headless Chromium with every off-site host blocked.
browser: env
	$(BIN)/pytest -q tests/built

bench: env
	$(BIN)/python -m benchmarks

# Regenerates requirements.lock from requirements.in in a throwaway venv.
lock:
	rm -rf _build/lockenv
	$(PYTHON) -m venv _build/lockenv
	_build/lockenv/bin/pip install --quiet -r requirements.in
	{ echo "# Every package of the book's environment at an exact version (Python 3.11)."; \
	  echo "# Generated from requirements.in by 'make lock'; 'make' rebuilds .venv when this file changes."; \
	  _build/lockenv/bin/pip freeze --all | grep -v -e '^pip==' -e '^setuptools==' -e '^-e'; } > requirements.lock
	rm -rf _build/lockenv

clean:
	rm -rf _build book/*.ipynb
