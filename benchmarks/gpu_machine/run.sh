#!/usr/bin/env bash
# A GPU lease, run from the repository root on the GPU machine, which has torch but no PyAV and no package
# index (benchmarks/README.md): PyAV from the wheel parts `make lease` put in lease/, carried over
# back-to-back calls (exit 3, naming the parts still to carry, until all have come), installed into a
# scratch folder; then one job:
#
#   bash scripts/gpu_lease.sh check [ARGS]    the GPU check within BUDGET seconds (default 480), its JSON
#                                             and chart in OUT (default benchmarks/results); ARGS go to
#                                             scripts/gpu_check.py (--tiny --device cpu: CI's toy size)
#   bash scripts/gpu_lease.sh recipe [ARGS]   the default checkpoint's recipe in RUN (default runs/gpu), its
#                                             data built from lease/sources; ARGS go to train_default.py
#                                             (--budget MINUTES, --set ...); the checkpoint comes back to OUT
#                                             (default build/gpu_recipe) in parts of 15 MB (a lease returns
#                                             files of at most 16 MB) with its card and training log
set -euo pipefail
job=${1:-}
[[ $job == check || $job == recipe ]] || { echo "usage: gpu_lease.sh check|recipe [ARGS]" >&2; exit 2; }
shift
site="${TMPDIR:-/tmp}/cdvd-lease-site"
if [[ ! -d $site/av ]]; then
    wheel=$(bash scripts/lease_parts.sh join av lease build/lease)
    python3 -m pip install -q --no-index --no-deps --target "$site" "$wheel"
fi
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import av, torch; print(f"PyAV {av.__version__}, torch {torch.__version__}, CUDA {torch.cuda.is_available()}")'
if [[ $job == check ]]; then
    exec python3 scripts/gpu_check.py --out "${OUT:-benchmarks/results}" --budget "${BUDGET:-480}" "$@"
fi
run=${RUN:-runs/gpu} out=${OUT:-build/gpu_recipe}
python3 scripts/train_default.py --out "$run" --packed lease/sources "$@"
mkdir -p "$out"
cp "$run/card.json" "$out/card.json"
cp "$run/stage1/log.jsonl" "$out/stage1_log.jsonl"
bash scripts/lease_parts.sh pack "$run/default.pt" default 15M "$out"
