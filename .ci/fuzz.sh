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
    # The fuzzer sometimes stops a worker at the deadline and reports
    # "context deadline exceeded" without any failing input; a real finding
    # always writes one. Only real findings fail the run.
    if grep -q 'Failing input written' /tmp/fuzz.$$.log || ! grep -q 'context deadline exceeded' /tmp/fuzz.$$.log; then
      cat /tmp/fuzz.$$.log; status=1
    else
      echo "  (fuzzer stopped at its deadline without a finding)"
    fi
  fi
done < <(git ls-files '*_test.go' | xargs grep -H '^func Fuzz' || true)
rm -f /tmp/fuzz.$$.log
exit $status
