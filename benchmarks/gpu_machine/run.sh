#!/usr/bin/env bash
# The GPU test machine's jobs, run from the repository root there. That machine has torch but no PyAV and
# no package index (benchmarks/README.md), so PyAV comes as build/gpu_machine/av.tar.xz (pack.sh makes it
# here), unpacked into a scratch folder that lasts as long as the machine stays up:
#
#   bash benchmarks/gpu_machine/run.sh check [ARGS]    the GPU check within BUDGET seconds (default 480), its
#                                                      JSON and chart in OUT (default benchmarks/results);
#                                                      ARGS go to scripts/gpu_check.py
#   bash benchmarks/gpu_machine/run.sh recipe [ARGS]   the default checkpoint's recipe in RUN (default
#                                                      runs/gpu), its data built from build/gpu_machine/sources;
#                                                      ARGS go to train_default.py; the checkpoint comes back
#                                                      in OUT (default build/gpu_recipe) in 15 MB pieces
#                                                      (split_file.sh) with its card and training log
#
# Exit 3, naming what to bring, while something a job needs is not there yet.
set -euo pipefail
job=${1:-}
[[ $job == check || $job == recipe ]] || { echo "usage: run.sh check|recipe [ARGS]" >&2; exit 2; }
shift
bundle=build/gpu_machine
site="${TMPDIR:-/tmp}/cdvd-site"
if [[ ! -d $site/av ]]; then
    if [[ ! -f $bundle/av.tar.xz || ! -f $bundle/av.sha256 ]]; then
        echo "run.sh: no PyAV here: bring $bundle/av.tar.xz and $bundle/av.sha256 (pack.sh makes them)" >&2
        exit 3
    fi
    if [[ $(sha256sum < "$bundle/av.tar.xz" | cut -d' ' -f1) != "$(<"$bundle/av.sha256")" ]]; then
        echo "run.sh: $bundle/av.tar.xz does not match its hash" >&2
        exit 1
    fi
    rm -rf "$site.new" && mkdir -p "$site.new"
    tar -xJf "$bundle/av.tar.xz" -C "$site.new"
    rm -rf "$site" && mv "$site.new" "$site"
fi
export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
if [[ $job == recipe && ! -d $bundle/sources ]]; then
    echo "run.sh: no training-set sources here: bring $bundle/sources (pack.sh makes it)" >&2
    exit 3
fi
python3 -c 'import av, torch; print(f"PyAV {av.__version__}, torch {torch.__version__}, CUDA {torch.cuda.is_available()}")'
if [[ $job == check ]]; then
    exec python3 scripts/gpu_check.py --out "${OUT:-benchmarks/results}" --budget "${BUDGET:-480}" "$@"
fi
run=${RUN:-runs/gpu} out=${OUT:-build/gpu_recipe}
python3 scripts/train_default.py --out "$run" --packed "$bundle/sources" "$@"
mkdir -p "$out"
cp "$run/card.json" "$out/card.json"
cp "$run/stage1/log.jsonl" "$out/stage1_log.jsonl"
bash benchmarks/gpu_machine/split_file.sh split "$run/default.pt" default 15M "$out"
