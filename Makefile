# The two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.labpnn-installed
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: venv sysdeps demo test lint format bench screenshots clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

venv: $(STAMP)

sysdeps:
	@bash scripts/ensure-system-libs.sh

demo: venv sysdeps
	QT_QPA_PLATFORM=offscreen $(PY) -m labpnn.demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: venv sysdeps lint
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/pytest -n 2 --dist loadfile -q

bench: venv
	$(PY) benchmarks/run_all.py

screenshots: venv sysdeps
	QT_QPA_PLATFORM=offscreen $(PY) -m labpnn.gui.screenshots docs/images

clean:
	rm -rf $(VENV) build dist *.egg-info
