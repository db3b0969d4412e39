#!/usr/bin/env bash
# Runs a command in a mount namespace of its own where the given directories (each closed to other users,
# such as a 0700 /root holding the interpreter) let other users pass: a 0711 tmpfs over each, with its
# entries bound back. The directories themselves are unchanged; nothing outside the command's process tree
# sees the difference. Run as root:   unshare -m --propagation private open_dirs.sh DIR... -- COMMAND...
set -euo pipefail
dirs=()
while [[ $# -gt 0 && $1 != -- ]]; do dirs+=("$1"); shift; done
[[ ${1:-} == -- ]] || { echo "usage: open_dirs.sh DIR... -- COMMAND..." >&2; exit 2; }
shift
for dir in "${dirs[@]}"; do
  real=$(mktemp -d /tmp/open-dirs.XXXXXX)
  mount --bind "$dir" "$real"
  mount -t tmpfs -o mode=0711 tmpfs "$dir"
  for entry in "$real"/.[!.]* "$real"/..?* "$real"/*; do
    [[ -e $entry || -L $entry ]] || continue
    target="$dir/$(basename "$entry")"
    if [[ -L $entry ]]; then cp -P "$entry" "$target"; continue; fi
    if [[ -d $entry ]]; then mkdir "$target"; else touch "$target"; fi
    mount --bind "$entry" "$target"
  done
done
exec "$@"
