# Two commands on a fresh machine: `make demo` (the whole road on the embedded default) and `make test`.
# Each creates .venv with pip when missing, installs what it needs, and is safe to re-run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Single-threaded BLAS by default on this 2-core box; torch/ORT/OpenVINO set their own thread counts.
export OMP_NUM_THREADS ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: demo test bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e ".[all,dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dpiqa-edge demo

test: $(STAMP)
	@bash tools/install_browser.sh
	$(PY) -m pytest -q -n 2 --dist worksteal   # two workers (a 2-core machine); idle one steals queued tests

bench: $(STAMP)
	$(VENV)/bin/dpiqa-edge bench

clean:
	rm -rf runs exports .pytest_cache
