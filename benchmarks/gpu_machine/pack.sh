#!/usr/bin/env bash
# What the GPU test machine needs beside the tracked tree, made here (a machine with a package index and the
# project's .venv) into OUT (default build/gpu_machine); run.sh uses it there:
#
#   av.tar.xz, av.sha256   the PyAV wheel of the version installed here (abi3: any CPython from 3.11, the GPU
#                          machine's 3.12 included), unpacked and xz-compressed: 25 MB instead of the wheel's
#                          36 MB, so that it and the tracked tree (39 MB) fit one 64 MiB transfer
#   sources/               the package files the training set is built from (8 MB; the recipe only)
#
# It prints what the first transfer weighs (tracked tree + av.tar.xz + av.sha256).
set -euo pipefail
out=${OUT:-build/gpu_machine}
python=${PYTHON:-.venv/bin/python}
version=$("$python" -c 'import av; print(av.__version__)')
rm -rf "$out" && mkdir -p "$out/wheel" "$out/av"
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 -d "$out/wheel" "av==$version"
"$python" -m zipfile -e "$out"/wheel/av-*.whl "$out/av"
tar -C "$out/av" -cf - . | xz -9e -T0 > "$out/av.tar.xz"
sha256sum < "$out/av.tar.xz" | cut -d' ' -f1 > "$out/av.sha256"
rm -rf "$out/wheel" "$out/av"
"$python" scripts/build_training_set.py --pack "$out/sources"
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
pyav=$(du -cb "$out/av.tar.xz" "$out/av.sha256" | tail -1 | cut -f1)
echo "first transfer: tracked tree $((tree / 1024)) KiB + PyAV $((pyav / 1024)) KiB = $(((tree + pyav) / 1024)) KiB" \
     "(of 65536 KiB); sources/ $(($(du -sb "$out/sources" | cut -f1) / 1024)) KiB follow for the recipe"
