# Two commands on a fresh machine: `make run` and `make test`. Both create .venv and install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

run: $(STAMP)  ## reproduce the paper's tables: outputs/paper/ (NetCDF, figures, REPORT.md)
	$(VENV)/bin/sweep reproduce

test: $(STAMP)  ## the test suite
	$(PY) -m pytest

benchmark: $(STAMP)  ## speed: per-point Python loop vs NumPy vs sweep.run
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) outputs/paper build *.egg-info
