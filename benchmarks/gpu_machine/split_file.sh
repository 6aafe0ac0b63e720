#!/usr/bin/env bash
# A file too big to come back from the GPU test machine in one piece (it returns files of at most 16 MB):
# split there, joined here once every piece has come (several runs may bring them).
#
#   split_file.sh split FILE NAME SIZE DIR   DIR/NAME.partNN of at most SIZE bytes (split's -b: 15M),
#                                            DIR/NAME.sha256 (FILE's hash and name), DIR/NAME.parts (count)
#   split_file.sh join NAME DIR STAGE        stages DIR's pieces in STAGE/HASH/ (as they come); when all
#                                            have come, rebuilds the file, checks its hash and prints its
#                                            path; exit 3 while pieces are missing, naming them
set -euo pipefail

split_file() {
    local file=$1 name=$2 size=$3 dir=$4
    mkdir -p "$dir"
    rm -f "$dir/$name".part[0-9][0-9] "$dir/$name.sha256" "$dir/$name.parts"
    echo "$(sha256sum < "$file" | cut -d' ' -f1)  $(basename "$file")" > "$dir/$name.sha256"
    split -b "$size" -d -a 2 "$file" "$dir/$name.part"
    local pieces=("$dir/$name".part[0-9][0-9])
    echo "${#pieces[@]}" > "$dir/$name.parts"
    echo "$(basename "$file"): ${#pieces[@]} pieces of at most $size in $dir/$name.partNN" >&2
}

join_file() {
    local name=$1 dir=$2 stage=$3
    if [[ ! -f $dir/$name.sha256 || ! -f $dir/$name.parts ]]; then
        echo "split_file: no $dir/$name.sha256 or $dir/$name.parts here (split_file.sh split makes them)" >&2
        return 3
    fi
    local hash file count piece pieces=() missing=()
    read -r hash file < "$dir/$name.sha256"
    stage=$stage/${hash:0:16}
    mkdir -p "$stage"
    cp -f "$dir/$name".part[0-9][0-9] "$stage"/ 2>/dev/null || true
    count=$(<"$dir/$name.parts")
    for ((i = 0; i < count; i++)); do
        printf -v piece '%s.part%02d' "$name" "$i"
        pieces+=("$stage/$piece")
        [[ -f $stage/$piece ]] || missing+=("$dir/$piece")
    done
    if ((${#missing[@]})); then
        echo "split_file: $((count - ${#missing[@]})) of $count pieces of $file here; still to come:" \
             "${missing[*]}" >&2
        return 3
    fi
    cat "${pieces[@]}" > "$stage/$file"
    if [[ $(sha256sum < "$stage/$file" | cut -d' ' -f1) != "$hash" ]]; then
        echo "split_file: $file rebuilt from its pieces does not match its hash" >&2
        return 1
    fi
    echo "$stage/$file"
}

case "${1:-}" in
    split) shift; split_file "$@" ;;
    join) shift; join_file "$@" ;;
    *) echo "usage: split_file.sh split FILE NAME SIZE DIR | join NAME DIR STAGE" >&2; exit 2 ;;
esac
