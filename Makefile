# The two README commands: `make demo` (set up + deblur the bundled sample) and `make test` (lint + tests).
# CPU machines get the CPU build of torch explicitly; set TORCH_INDEX to pick another wheel index
# (e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu outside this environment, or a CUDA one).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin

.PHONY: setup demo test lease

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

# what a GPU lease carries (scripts/gpu_lease.sh), since the GPU machine has torch but no PyAV and no
# package index: the PyAV wheel of the version tested here (abi3: any CPython from 3.11, the GPU machine's
# 3.12 included), in parts that fit a call's 64 MiB beside the tracked tree (scripts/lease_parts.sh), and
# the package files the training set is built from (build_training_set.py --pack)
LEASE_PART ?= 20M
lease: setup
	rm -rf build/wheels lease
	$(BIN)/pip download -q --no-deps --only-binary=:all: -d build/wheels "av==$$($(BIN)/python -c 'import av; print(av.__version__)')"
	bash scripts/lease_parts.sh pack build/wheels/av-*.whl av $(LEASE_PART) lease
	$(BIN)/python scripts/build_training_set.py --pack lease/sources
