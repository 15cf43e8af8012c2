#!/usr/bin/env bash
# Every Debian package launch/Dockerfile installs (its own apt-get lines and launch/install-deps.sh,
# which its build stage runs) exists in this machine's bookworm archive: `apt-cache show`
# finds it. Packages of stages that enable bookworm's non-free component are checked where
# this machine's apt knows non-free, and listed as unchecked otherwise.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
[ -n "$(ls /var/lib/apt/lists/*_Packages* 2>/dev/null)" ] || {
  echo "SKIP: apt has no package lists here (run apt-get update); cannot check names"; exit 77; }
grep -q "^FROM debian:bookworm" "$root/launch/Dockerfile" || { echo "Dockerfile is not on bookworm"; exit 1; }

# "component package" per line: each RUN instruction's apt-get install arguments.
/usr/bin/python3 - "$root/launch/Dockerfile" "$root/launch/install-deps.sh" >"${TMPDIR:-/tmp}/mtps-pkgs.$$" <<'PY'
import re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
for run in re.findall(r"^RUN (.*)$", text, re.M):
    component = "non-free" if "non-free" in run else "main"
    for install in re.findall(r"apt-get install ([^&;]*)", run):
        for word in install.split():
            if not word.startswith("-"):
                print(component, word)
deps = open(sys.argv[2]).read()
for array in re.findall(r"packages(?:\+)?=\(([^)]*)\)", deps):
    for word in array.split():
        print("main", word)
PY
list="${TMPDIR:-/tmp}/mtps-pkgs.$$"; trap 'rm -f "$list"' EXIT
nonfree_known=0
ls /var/lib/apt/lists/*_non-free_*Packages* >/dev/null 2>&1 && nonfree_known=1
checked=0; missing=(); unchecked=(); wanted=()
while read -r component pkg; do
  if [ "$component" = non-free ] && [ "$nonfree_known" -eq 0 ]; then
    unchecked+=("$pkg"); continue
  fi
  wanted+=("$pkg")
done <"$list"
# One apt-cache for all names (each run loads the whole package cache, about a second): it
# shows every package it finds, so a name without its "Package:" line does not exist.
# Whole output first: `| grep -q` would end apt-cache with SIGPIPE, a failure under pipefail.
shown="$(apt-cache show --no-all-versions "${wanted[@]}" 2>/dev/null || true)"
for pkg in "${wanted[@]}"; do
  if grep -q "^Package: $pkg\$" <<<"$shown"; then
    checked=$((checked + 1))
  else
    missing+=("$pkg")
  fi
done
[ "$checked" -gt 10 ] || { echo "found only $checked package names: the parser is broken"; exit 1; }
if [ ${#missing[@]} -gt 0 ]; then
  echo "packages that do not exist in this Debian archive: ${missing[*]}"; exit 1
fi
echo "Dockerfile packages: $checked found with apt-cache"
[ ${#unchecked[@]} -eq 0 ] || echo "unchecked (this machine's apt has no non-free lists): ${unchecked[*]}"
