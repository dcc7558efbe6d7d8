# Quick start: `make run` trains the classic VAE on the bundled MNIST subset; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Where a machine keeps the CPU torch wheel on disk (as this project's development and CI
# machines do), look there too, so pip never falls back to PyPI's multi-GB CUDA build.
WHEELS := $(if $(wildcard /opt/wheels/torch-*.whl),--find-links /opt/wheels)
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt $(WHEELS)

.PHONY: run test test-quick bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e ".[test]"
	touch $@

run: $(VENV)/.installed
	$(BIN)/vaekit train $(ARGS)

# The tests run in one worker per core (pytest-xdist); ARGS="-n 0 ..." runs them in this process.
test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q -n auto $(ARGS)

# The same without the tests marked slow (those that take seconds: see the marker in
# pyproject.toml), for the edit-test loop; make test, which CI runs, runs them all.
test-quick: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q -n auto -m "not slow" $(ARGS)

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP) -e ".[bench]"
	touch $@

# Needs the shared benchmark data beside the repository (../shared) or in $VAEKIT_SHARED.
bench: $(VENV)/.installed-bench
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/anomaly_adbench.py
	$(BIN)/python bench/anomaly_adbench.py --collections adbench --contaminate 0.05
	$(BIN)/python bench/anomaly_adbench.py --collections adbench --glitches 5:1e4
	$(BIN)/python bench/anomaly_robust.py
	$(BIN)/python bench/anomaly_trim.py
	$(BIN)/python bench/anomaly_mnist.py
	$(BIN)/python bench/pyod_parity.py
	$(BIN)/python bench/denoise.py
	$(BIN)/python bench/cvae.py
	$(BIN)/python bench/generation.py --grid docs/generation-samples.png
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/literature.py
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/streaming.py

clean:
	rm -rf $(VENV) runs
