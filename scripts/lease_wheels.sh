#!/usr/bin/env bash
# Wheels for a machine with no package index, carried in parts: a lease carries at most 64 MiB a call,
# the tracked tree included, so a wheel travels split over back-to-back calls (ignored files carried by
# one call stay on a warm machine for the next).
#
#   lease_wheels.sh pack WHEEL NAME SIZE   here: wheels/NAME.partNN of at most SIZE (split's -b, e.g. 24M)
#                                          and wheels/NAME.sha256 (the whole wheel's hash and file name)
#   lease_wheels.sh unpack NAME SITE       there, from the repository root, once per call: stages the
#                                          carried parts in build/lease/HASH/; when all have come, rebuilds the
#                                          wheel, checks its hash and installs it into SITE (no index, no
#                                          dependencies); exit 3 while parts are missing, naming them
set -euo pipefail

pack() {
    local wheel=$1 name=$2 size=$3
    mkdir -p wheels
    rm -f "wheels/$name".part* "wheels/$name.sha256"
    (cd "$(dirname "$wheel")" && sha256sum "$(basename "$wheel")") > "wheels/$name.sha256"
    split -b "$size" -d -a 2 "$wheel" "wheels/$name.part"
    local parts=(wheels/"$name".part*)
    echo "${#parts[@]}" > "wheels/$name.parts"
    echo "$(basename "$wheel"): ${#parts[@]} parts of at most $size in wheels/$name.part*;" \
         "carry wheels/$name.sha256, wheels/$name.parts and one part a call"
}

unpack() {
    local name=$1 site=$2
    if [[ ! -f wheels/$name.sha256 || ! -f wheels/$name.parts ]]; then
        echo "lease_wheels: no wheels/$name.sha256 or wheels/$name.parts carried (make wheels makes them)" >&2
        return 3
    fi
    local stage hash wheel count parts=() missing=()
    read -r hash wheel < "wheels/$name.sha256"
    stage=build/lease/${hash:0:16}
    mkdir -p "$stage"
    cp -f wheels/"$name".part[0-9][0-9] "$stage"/ 2>/dev/null || true
    count=$(<"wheels/$name.parts")
    for ((i = 0; i < count; i++)); do
        printf -v part '%s.part%02d' "$name" "$i"
        parts+=("$stage/$part")
        [[ -f $stage/$part ]] || missing+=("wheels/$part")
    done
    if ((${#missing[@]})); then
        echo "lease_wheels: $((count - ${#missing[@]})) of $count parts of $wheel here;" \
             "carry ${missing[*]} in the next call" >&2
        return 3
    fi
    cat "${parts[@]}" > "$stage/$wheel"
    if [[ $(sha256sum < "$stage/$wheel" | cut -d' ' -f1) != "$hash" ]]; then
        echo "lease_wheels: $wheel rebuilt from its parts does not match its hash" >&2
        return 1
    fi
    python3 -m pip install -q --no-index --no-deps --target "$site" "$stage/$wheel"
}

case "${1:-}" in
    pack) shift; pack "$@" ;;
    unpack) shift; unpack "$@" ;;
    *) echo "usage: lease_wheels.sh pack WHEEL NAME SIZE | unpack NAME SITE" >&2; exit 2 ;;
esac
