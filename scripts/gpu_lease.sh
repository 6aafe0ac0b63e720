#!/usr/bin/env bash
# A GPU lease in one command, run from the repository root on the GPU machine, which has torch but no
# PyAV and no package index (see benchmarks/README.md): PyAV from the wheel parts `make wheels` put in
# wheels/, carried over back-to-back calls (scripts/lease_wheels.sh: exit 3, naming the parts still to
# carry, until all have come), installed into a scratch folder, then the GPU check within BUDGET seconds
# (default 480), its JSON and chart written to OUT (default benchmarks/results). Extra arguments go to
# scripts/gpu_check.py (e.g. --tiny --device cpu: the same path at a toy size, as CI runs it).
set -euo pipefail
site="${TMPDIR:-/tmp}/cdvd-lease-site"
bash scripts/lease_wheels.sh unpack av "$site"
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import av, torch; print(f"PyAV {av.__version__}, torch {torch.__version__}, CUDA {torch.cuda.is_available()}")'
python3 scripts/gpu_check.py --out "${OUT:-benchmarks/results}" --budget "${BUDGET:-480}" "$@"
