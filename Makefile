# The two README commands: `make demo` (set up + deblur the bundled sample) and `make test` (lint + tests).
# CPU machines get the CPU build of torch explicitly; set TORCH_INDEX to pick another wheel index
# (e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu outside this environment, or a CUDA one).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin

.PHONY: setup demo test

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

demo: setup
	$(BIN)/python scripts/deblur.py samples/bikes_blurred.mp4 --output outputs/ --overwrite --sharp samples/bikes_sharp.mp4

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
