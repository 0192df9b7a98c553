# Two commands on a fresh machine: `make book` builds the whole executed book,
# `make test` runs every check (what CI runs). Both create the environment first.

# The book runs on Python 3.11, 3.12 and 3.13, each from its own hashed lock. Without
# PYTHON=, make takes the first of python3.11, python3.12, python3.13 and python3 on PATH
# that runs and is one of them (a pyenv shim of a version that is not selected is on PATH
# but fails to run, so each candidate is run, not just looked up).
SUPPORTED := 3.11 3.12 3.13
# $(call version_of,CMD): CMD's major.minor when CMD runs and is a supported version.
version_of = $(filter $(SUPPORTED),$(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null))
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach p,$(addprefix python,$(SUPPORTED)) python3,$(if $(call version_of,$(p)),$(p))))
endif
PY_VERSION := $(if $(PYTHON),$(call version_of,$(PYTHON)))
LOCK := $(if $(PY_VERSION),requirements/py$(subst .,,$(PY_VERSION)).lock)
ifeq ($(PYTHON),)
PYTHON_PROBLEM := No supported Python found: none of python3.11 python3.12 python3.13 python3 \
	on PATH runs as Python 3.11 to 3.13. Install one of them or name it with PYTHON=/path/to/python3.12
else ifeq ($(PY_VERSION),)
PYTHON_PROBLEM := PYTHON=$(PYTHON) is not a supported Python (it says: \
	$(shell $(PYTHON) --version 2>&1 | head -1)). The book needs Python 3.11 to 3.13: \
	name one with PYTHON=/path/to/python3.12
endif
# In a recipe: stops make with the message above when no supported Python was found.
need_python = $(if $(PYTHON_PROBLEM),$(error $(PYTHON_PROBLEM)))

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-$(notdir $(LOCK))
PACKAGE := $(VENV)/.installed-package
MATHJAX := node_modules/.package-lock.json
export PYTHONUNBUFFERED := 1
# jax's persistent compilation cache: an XLA program compiled by one process (a test, a
# chapter) is loaded, not compiled again, by the next one that needs it, such as nbval
# re-running the chapters that `chapters` has just executed. The key is the program, the
# compile options, jax's version and the machine, so the results are those of the same
# executables. Every program is kept (none is too quick to compile); `make clean` or
# deleting the folder empties it, and JAX_COMPILATION_CACHE_DIR= turns it off.
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/_build/jax-cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0

.PHONY: all python venv env book test lint unit chapters nbval html browser bench lock lock-pins \
	lock-hashes locks pythons clean

all: book

python:
	$(need_python)
	@echo "Python $(PY_VERSION): $(PYTHON) ($$(command -v $(PYTHON))); lock $(LOCK)"

# The venv is rebuilt from scratch whenever its lock changes or another Python is chosen
# (the stamp names the lock); the package (editable) is reinstalled whenever its metadata
# changes.
$(STAMP): $(LOCK)
	$(need_python)
	@echo "Building $(VENV) with $(PYTHON) (Python $(PY_VERSION)) from $(LOCK)"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps --require-hashes -r $(LOCK)
	touch $@

# Not `pip check`: it fails by design here, since neural-tangents declares tensorflow and
# tf2jax, which the lock leaves out (requirements/no-deps.in says why). Instead every module
# the book, its tests and its build import (requirements/imports.txt, which a test keeps
# complete) is imported, companion first so that neural-tangents' TensorFlow port stays
# deferred, and TensorFlow must not have come along.
IMPORT_CHECK := import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]; \
	extra = sorted({"tensorflow", "tf2jax"} & set(sys.modules)); \
	sys.exit(f"imported {extra}, which the environment must not need" if extra else None)
$(PACKAGE): $(STAMP) pyproject.toml requirements/imports.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c '$(IMPORT_CHECK)' $$(grep -v '^#' requirements/imports.txt)
	touch $@

$(MATHJAX): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

venv: $(PACKAGE)

env: venv $(MATHJAX)

book: env
	$(BIN)/companion book

test: lint unit chapters nbval browser

lint: env
	$(BIN)/ruff check src tests book benchmarks requirements
	$(BIN)/ruff format --check src tests book benchmarks requirements
	node_modules/.bin/pyright

# Across the cores with pytest-xdist. The tests that start chapters or processes of their
# own and share _build (interrupt, pipeline, sharded) carry an xdist_group mark each, so
# --dist loadgroup runs each group on one worker.
unit: env
	$(BIN)/pytest -q -n auto --dist loadgroup --ignore=tests/built

# Executes every chapter with quick=True and builds the HTML (-W: warnings are errors).
chapters: env
	$(BIN)/companion book --quick

# Re-executes the executed notebooks and compares the cells tagged nbval-check-output.
# Their claims go to a throwaway folder, not into the book's results. The chapters run
# across the cores (one notebook per worker at a time); the pages that summarize the others
# (their header says `after_others`) run afterwards, when every claim is in.
SUMMARIES := $(patsubst %.py,%.ipynb,$(shell grep -l 'after_others' book/*.py))
NBVAL := $(BIN)/pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
	--nbval-sanitize-with tests/nbval_sanitize.cfg
nbval: env
	results=$$(mktemp -d) && export COMPANION_RESULTS_DIR=$$results \
	  && $(NBVAL) -n auto --dist loadfile $(filter-out $(SUMMARIES),$(wildcard book/*.ipynb)) \
	  && $(NBVAL) $(SUMMARIES)

# The built book as a reader sees it: headless Chromium with every off-site host blocked.
browser: env
	$(BIN)/pytest -q tests/built

bench: env
	$(BIN)/python -m benchmarks

# Proves the other supported Pythons where they are installed (CI runs one): for each
# version, a venv in _build/py3XX built from that version's lock with the import check,
# fast unit tests and one quick chapter (claims to a throwaway folder). Each interpreter is
# python3.X on PATH or, failing that, pyenv's; PYTHONS= chooses the versions.
PYTHONS ?= 3.12 3.13
# Shell, for a version in $$v: sets py to python$$v on PATH or, failing that, pyenv's.
find_python = py=; for c in python$$v $$(pyenv root 2>/dev/null)/versions/$$v*/bin/python$$v; do \
	  if $$c -c '' 2>/dev/null; then py=$$c; break; fi; done; \
	[ -n "$$py" ] || { echo "Python $$v not found: no python$$v on PATH, none under pyenv"; exit 1; }
PYTHONS_CHECK := tests/test_environment.py tests/test_data.py tests/test_graphs.py
pythons:
	@set -e; for v in $(PYTHONS); do \
	  $(find_python); \
	  dir=_build/py$$(echo $$v | tr -d .); \
	  $(MAKE) --no-print-directory venv PYTHON=$$py VENV=$$dir; \
	  $$dir/bin/python --version; \
	  $$dir/bin/pytest -q -n 2 $(PYTHONS_CHECK); \
	  COMPANION_RESULTS_DIR=$$(mktemp -d) $$dir/bin/companion run graphs --quick -o $$dir/graphs.ipynb; \
	  echo "pythons: Python $$v passed"; \
	done

# Regenerates the lock of the chosen Python (PYTHON=, as above) from requirements/book.in
# and requirements/no-deps.in. lock-pins installs them in a throwaway venv, the versions of
# the current lock kept as constraints (UPGRADE=1 drops them; a lock made for the first
# time keeps those of another lock, so that every Python runs the same versions), and
# freezes the versions. lock-hashes adds the sha256 hashes of every distribution of those
# versions: pip-compile (from a second throwaway venv) finds them by downloading every file
# where the index serves no hashes (several GB), so releases already hashed in a lock take
# their hashes from it and pip-compile hashes only the others (requirements/reuse_hashes.py;
# UPGRADE=1 has pip-compile hash everything). neural-tangents goes in without its declared
# dependencies and is hashed apart from pip-compile, which would resolve them.
# `make locks` does every supported version, then environment.yml.
PIP_TOOLS := pip-tools==7.6.2
LOCKDIR := _build/lock-py$(subst .,,$(PY_VERSION))
KEEP := $(firstword $(wildcard $(LOCK)) $(wildcard requirements/py3*.lock))
HASHED := $(if $(UPGRADE),,$(wildcard requirements/py3*.lock))
lock:
	$(need_python)
	$(MAKE) --no-print-directory lock-pins
	$(MAKE) --no-print-directory lock-hashes

lock-pins:
	$(need_python)
	rm -rf $(LOCKDIR) && mkdir -p $(LOCKDIR)
	$(PYTHON) -m venv $(LOCKDIR)/env
	{ [ -n "$(UPGRADE)" ] || sed -n 's/^\([A-Za-z0-9_.-]*==[^ ]*\).*/\1/p' $(KEEP) /dev/null; } \
		> $(LOCKDIR)/keep.txt
	$(LOCKDIR)/env/bin/pip install --quiet -r requirements/book.in -c $(LOCKDIR)/keep.txt
	$(LOCKDIR)/env/bin/pip install --quiet --no-deps -r requirements/no-deps.in
	$(LOCKDIR)/env/bin/pip freeze --all --exclude pip $$(sed -n 's/^\([A-Za-z0-9_.-]*\)==.*/--exclude \1/p' \
		requirements/no-deps.in) | grep -v '^-e' > $(LOCKDIR)/pins.txt

lock-hashes: $(LOCKDIR)/pins.txt
	$(need_python)
	$(PYTHON) requirements/reuse_hashes.py $(LOCKDIR)/pins.txt $(LOCKDIR)/hashed.txt $(HASHED) \
		> $(LOCKDIR)/new.in || { { cat $(LOCKDIR)/new.in; echo "-c pins.txt"; } > $(LOCKDIR)/compile.in \
	  && $(PYTHON) -m venv $(LOCKDIR)/tool && $(LOCKDIR)/tool/bin/pip install --quiet $(PIP_TOOLS) \
	  && (cd $(LOCKDIR) && tool/bin/pip-compile --quiet --generate-hashes --allow-unsafe --no-annotate \
		--no-header --strip-extras --no-emit-index-url --no-emit-find-links --output-file new.txt compile.in) \
	  && $(PYTHON) requirements/reuse_hashes.py $(LOCKDIR)/pins.txt $(LOCKDIR)/hashed.txt $(HASHED) \
		$(LOCKDIR)/new.txt; }
	$(PYTHON) requirements/reuse_hashes.py requirements/no-deps.in $(LOCKDIR)/no-deps.txt $(HASHED) \
		> /dev/null || for req in $$(grep -v '^#' requirements/no-deps.in); do \
	  rm -rf $(LOCKDIR)/dl && $(LOCKDIR)/env/bin/pip download --quiet --no-deps "$$req" -d $(LOCKDIR)/dl \
	  && { $(LOCKDIR)/env/bin/pip download --quiet --no-deps --no-binary :all: "$$req" -d $(LOCKDIR)/dl || true; } \
	  && echo "$$req \\" \
	  && $(LOCKDIR)/env/bin/pip hash $(LOCKDIR)/dl/* | sed -n 's/^--hash=/    --hash=/p' | sort | sed '$$!s/$$/ \\/'; \
	done > $(LOCKDIR)/no-deps.txt
	{ echo "# Every package of the book's environment on Python $(PY_VERSION) at an exact version with its sha256"; \
	  echo "# hashes. Generated from requirements/book.in and no-deps.in by 'make lock PYTHON=python$(PY_VERSION)'"; \
	  echo "# (pip-compile --generate-hashes); 'make' installs it with --no-deps --require-hashes and"; \
	  echo "# rebuilds the venv when this file changes. pip comes with the venv."; \
	  sed '/^# WARNING/,$$d' $(LOCKDIR)/hashed.txt | sed -e :a -e '/^\n*$$/{$$d;N;ba' -e '}'; \
	  echo; echo "# Installed without their declared dependencies (requirements/no-deps.in says why)."; \
	  cat $(LOCKDIR)/no-deps.txt; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(LOCKDIR)

locks:
	@set -e; for v in $(SUPPORTED); do $(find_python); $(MAKE) --no-print-directory lock PYTHON=$$py; done
	$(MAKE) --no-print-directory environment.yml

# conda users' environment: the pins of the 3.11 lock, less those installed without their
# dependencies, which conda's pip section cannot do (its usage line installs them).
environment.yml: requirements/py311.lock requirements/no-deps.in
	{ sed '/^  - pip:$$/q' $@; sed -n 's/^\([A-Za-z0-9_.-]*==[^ ]*\) .*/\1/p' $< \
		| grep -v -i -x $$(sed -n 's/^\([A-Za-z0-9_.-]*==.*\)/-e \1/p' requirements/no-deps.in) \
		| sed 's/^/      - /'; } > $@.new
	mv $@.new $@

clean:
	rm -rf _build book/*.ipynb
