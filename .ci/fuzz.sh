#!/usr/bin/env bash
# Runs every go test -fuzz target in the module for a short time each.
set -euo pipefail
fuzztime=${1:-5s}
status=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")
  pkg=./$(dirname "$file")
  echo "fuzz $pkg $name ($fuzztime)"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz.$$.log 2>&1; then
    cat /tmp/fuzz.$$.log; status=1
  fi
done < <(git ls-files '*_test.go' | xargs grep -H '^func Fuzz' || true)
rm -f /tmp/fuzz.$$.log
exit $status
