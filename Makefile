# Video Recognition, Reproduced: the book and its library, vidlib.
#
#   make book            install (once), prepare the data (once), execute and render the book into
#                        _build/html (default mode: about 10 minutes per chapter on 2 CPU cores)
#   make book QUICK=1    the same in quick mode (VIDLIB_QUICK=1, the CI setting), same output folder
#   make test            install, quick data, then every chapter under nbval (executed once), the quick
#                        book rendered from those executions, pytest tests/, ruff (tools/run_tests.sh)
#   make bench           measure the performance page's numbers into results/bench_*.json (not part of
#                        make test; about 45 minutes on 2 cores from a fresh clone: tools/bench.sh)
#   make clean           remove _build/ (execution caches included)
#   make distclean       also remove the generated data and the virtual environment
#
# The install is keyed on the hash of requirements.txt + pyproject.toml: a second run takes seconds.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALL_HASH := $(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.vidlib-installed-$(INSTALL_HASH)

DATA := data/synthetic/meta.json
DATA_QUICK := data/synthetic_quick/meta.json

# QUICK=1 (or VIDLIB_QUICK=1 in the environment) selects the quick mode of every chapter.
ifneq ($(filter-out 0 false no off,$(QUICK)),)
export VIDLIB_QUICK := 1
endif
ifneq ($(filter 1 true yes on TRUE YES ON,$(VIDLIB_QUICK)),)
BOOK_DATA := $(DATA_QUICK)
else
BOOK_DATA := $(DATA) $(DATA_QUICK)
endif

.PHONY: help install data book test bench clean distclean

help:
	@sed -n '3,12p' Makefile | sed 's/^# \{0,1\}//'

install: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.vidlib-installed-*
	$(PY) -m pip install -r requirements.txt -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (vidlib)"
	touch $@

# The synthetic benchmark; meta.json is written last, so it marks a complete data set.
$(DATA): | $(STAMP)
	$(PY) -m vidlib.data.synthetic --out data/synthetic --seed 0

$(DATA_QUICK): | $(STAMP)
	$(PY) -m vidlib.data.synthetic --out data/synthetic_quick --seed 0 --quick

data: $(DATA) $(DATA_QUICK)

book: $(STAMP) $(BOOK_DATA)
	tools/build_book.sh

test: $(STAMP) $(DATA_QUICK)
	tools/run_tests.sh

bench: $(STAMP) $(DATA_QUICK)
	tools/bench.sh

clean:
	rm -rf _build

distclean: clean
	rm -rf data/synthetic data/synthetic_quick $(VENV) vidlib.egg-info
