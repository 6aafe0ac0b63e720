#!/usr/bin/env bash
# Files too big for one transfer of a GPU lease, sent in parts: a call carries at most 64 MiB (the tracked
# tree included) and brings back files of at most 16 MB, so a wheel goes there, and a checkpoint comes
# back, split over back-to-back calls (ignored files carried by one call stay on a warm machine).
#
#   lease_parts.sh pack FILE NAME SIZE DIR   DIR/NAME.partNN of at most SIZE bytes (split's -b: 20M),
#                                            DIR/NAME.sha256 (FILE's hash and name), DIR/NAME.parts (count)
#   lease_parts.sh join NAME DIR STAGE       stages DIR's parts in STAGE/HASH/ (once per call, as they
#                                            come); when all have come, rebuilds the file, checks its hash
#                                            and prints its path; exit 3 while parts are missing, naming them
set -euo pipefail

pack() {
    local file=$1 name=$2 size=$3 dir=$4
    mkdir -p "$dir"
    rm -f "$dir/$name".part[0-9][0-9] "$dir/$name.sha256" "$dir/$name.parts"
    echo "$(sha256sum < "$file" | cut -d' ' -f1)  $(basename "$file")" > "$dir/$name.sha256"
    split -b "$size" -d -a 2 "$file" "$dir/$name.part"
    local parts=("$dir/$name".part[0-9][0-9])
    echo "${#parts[@]}" > "$dir/$name.parts"
    echo "$(basename "$file"): ${#parts[@]} parts of at most $size in $dir/$name.partNN" >&2
}

join() {
    local name=$1 dir=$2 stage=$3
    if [[ ! -f $dir/$name.sha256 || ! -f $dir/$name.parts ]]; then
        echo "lease_parts: no $dir/$name.sha256 or $dir/$name.parts here (lease_parts.sh pack makes them)" >&2
        return 3
    fi
    local hash file count part parts=() missing=()
    read -r hash file < "$dir/$name.sha256"
    stage=$stage/${hash:0:16}
    mkdir -p "$stage"
    cp -f "$dir/$name".part[0-9][0-9] "$stage"/ 2>/dev/null || true
    count=$(<"$dir/$name.parts")
    for ((i = 0; i < count; i++)); do
        printf -v part '%s.part%02d' "$name" "$i"
        parts+=("$stage/$part")
        [[ -f $stage/$part ]] || missing+=("$dir/$part")
    done
    if ((${#missing[@]})); then
        echo "lease_parts: $((count - ${#missing[@]})) of $count parts of $file here;" \
             "carry ${missing[*]} in the next call" >&2
        return 3
    fi
    cat "${parts[@]}" > "$stage/$file"
    if [[ $(sha256sum < "$stage/$file" | cut -d' ' -f1) != "$hash" ]]; then
        echo "lease_parts: $file rebuilt from its parts does not match its hash" >&2
        return 1
    fi
    echo "$stage/$file"
}

case "${1:-}" in
    pack) shift; pack "$@" ;;
    join) shift; join "$@" ;;
    *) echo "usage: lease_parts.sh pack FILE NAME SIZE DIR | join NAME DIR STAGE" >&2; exit 2 ;;
esac
