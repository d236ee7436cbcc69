# Two commands on a fresh machine: `make run` and `make test`. Both create .venv and install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test format benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

run: $(STAMP)  ## reproduce the paper's tables: outputs/paper/ (NetCDF, figures, REPORT.md)
	$(VENV)/bin/sweep reproduce

test: $(STAMP)  ## lint (ruff check + format check), then the test suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

format: $(STAMP)  ## rewrite the code in the project's style (ruff format, ruff check --fix)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

benchmark: $(STAMP)  ## speed: per-point Python loop vs NumPy vs sweep.run
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) outputs/paper build *.egg-info
