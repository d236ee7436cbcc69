# Two commands on a fresh machine: `make run` and `make test`. Both create .venv and install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test docs format benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,docs]"
	touch $(STAMP)

run: $(STAMP)  ## reproduce the paper's tables: outputs/paper/ (NetCDF, figures, REPORT.md)
	$(VENV)/bin/sweep reproduce

test: $(STAMP)  ## lint (ruff check + format check), the docs build (warnings are errors), then the test suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory docs
	$(PY) -m pytest

# --strict: any warning (a broken link or anchor, a docstring griffe cannot parse) fails the build.
# Not -q: mkdocs' -q drops warnings before --strict can count them.
docs: $(STAMP)  ## the documentation site: build/site/ (mkdocs-material + mkdocstrings, a few seconds)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

format: $(STAMP)  ## rewrite the code in the project's style (ruff format, ruff check --fix)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

benchmark: $(STAMP)  ## speed: per-point Python loop vs NumPy vs sweep.run
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) outputs/paper build *.egg-info
