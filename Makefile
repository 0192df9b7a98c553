# Two commands on a fresh machine: `make book` builds the whole executed book,
# `make test` runs every check (what CI runs). Both create the environment first.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-lock
PACKAGE := $(VENV)/.installed-package
MATHJAX := node_modules/.package-lock.json
export PYTHONUNBUFFERED := 1

.PHONY: all env book test lint unit chapters nbval html browser bench lock clean

all: book

# The venv is rebuilt from scratch whenever the lock changes; the package (editable) is
# reinstalled whenever its metadata changes.
$(STAMP): requirements.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements.lock
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

# Regenerates requirements.lock from requirements.in: installs it in a throwaway venv,
# freezes the versions, and has pip-compile (from a second throwaway venv) add the sha256
# hashes of every distribution of those versions.
PIP_TOOLS := pip-tools==7.6.2
lock:
	rm -rf _build/lockenv _build/locktool
	mkdir -p _build
	$(PYTHON) -m venv _build/lockenv
	_build/lockenv/bin/pip install --quiet -r requirements.in
	_build/lockenv/bin/pip freeze --all --exclude pip --exclude setuptools | grep -v '^-e' > _build/pins.txt
	$(PYTHON) -m venv _build/locktool
	_build/locktool/bin/pip install --quiet $(PIP_TOOLS)
	cd _build && locktool/bin/pip-compile --quiet --generate-hashes --no-annotate --no-header \
		--strip-extras --no-emit-index-url --no-emit-find-links --output-file hashed.txt pins.txt
	{ echo "# Every package of the book's environment at an exact version with its sha256 hashes (Python 3.11)."; \
	  echo "# Generated from requirements.in by 'make lock' (pip-compile --generate-hashes); 'make' installs it with"; \
	  echo "# --require-hashes and rebuilds .venv when this file changes. pip and setuptools come with the venv."; \
	  sed '/^# WARNING/,$$d' _build/hashed.txt | sed -e :a -e '/^\n*$$/{$$d;N;ba' -e '}'; } > requirements.lock
	rm -rf _build/lockenv _build/locktool _build/pins.txt _build/hashed.txt

clean:
	rm -rf _build book/*.ipynb
