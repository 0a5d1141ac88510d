#!/usr/bin/env bash
# Runs every go test -fuzz target in the module for a short time each
# (argument: the time per target, 5s unless given; make fuzz FUZZTIME=30s).
#
# Two packages are fuzzed at a time (FUZZJOBS), each target with one
# fuzzing worker: the CI machine has two cores, and one target at a time
# left one of them idle while the next was built and its corpus loaded.
# A package's fuzz-instrumented test binary is built once (go test -c),
# not once per target, and each of its targets is run from it in the
# package's directory, with the corpus cache go test would give it:
# testdata/fuzz is read there and a failing input written there, as with
# go test. A package's output is printed whole, a block per target, when
# it is done; the run fails on any finding or build error and names each
# target at the end.
set -euo pipefail
fuzztime=${1:-5s}
jobs=${FUZZJOBS:-2}
root=$(pwd)
module=$(go list -m)
cache=$(go env GOCACHE)/fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The targets of each package directory, in file order.
declare -A targets=()
while IFS= read -r line; do
  dir=$(dirname "${line%%:*}")
  targets[$dir]+=" $(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")"
done < <(git ls-files '*_test.go' | xargs grep -H '^func Fuzz' || true)
# Packages with the most targets first: the two slots end together.
mapfile -t dirs < <(for d in "${!targets[@]}"; do set -- ${targets[$d]}; echo "$# $d"; done | sort -k1,1nr -k2,2 | cut -d' ' -f2)

# fuzzpkg n dir: builds dir's binary and runs its targets one by one,
# writing "<rc> <seconds> <name>" lines to $work/n.rc and each target's
# output to $work/n.<name>.log (rc "build" when the binary did not build).
fuzzpkg() {
  local n=$1 dir=$2 bin=$work/$1.test ipath=$module name start rc
  [ "$dir" = . ] || ipath=$module/$dir
  if ! go test -c -fuzz . -o "$bin" "./$dir" >"$work/$n.build.log" 2>&1; then
    echo "build 0 -" >"$work/$n.rc"
    return
  fi
  for name in ${targets[$dir]}; do
    start=$SECONDS rc=0
    (cd "$root/$dir" && exec "$bin" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$fuzztime" \
      -test.parallel 1 -test.fuzzcachedir "$cache/$ipath") >"$work/$n.$name.log" 2>&1 || rc=$?
    echo "$rc $((SECONDS - start)) $name" >>"$work/$n.rc"
  done
}

failed=()
# report n dir prints package n's verdicts, with the output of each target
# that found something.
report() {
  local n=$1 dir=$2 rc secs name log
  while read -r rc secs name; do
    log=$work/$n.$name.log
    if [ "$rc" = build ]; then
      echo "fuzz ./$dir: build FAILED"
      sed 's/^/    /' "$work/$n.build.log"
      failed+=("./$dir (build)")
    elif [ "$rc" = 0 ]; then
      echo "fuzz ./$dir $name ($fuzztime): ok (${secs}s)"
    elif ! grep -q 'Failing input written' "$log" && grep -q 'context deadline exceeded' "$log"; then
      # The fuzzer sometimes stops a worker at the deadline and reports
      # "context deadline exceeded" without any failing input; a real
      # finding always writes one.
      echo "fuzz ./$dir $name ($fuzztime): ok (${secs}s; stopped at its deadline without a finding)"
    else
      echo "fuzz ./$dir $name ($fuzztime): FAILED (${secs}s)"
      sed 's/^/    /' "$log"
      failed+=("./$dir $name")
    fi
  done <"$work/$n.rc"
}

declare -A running=() # pid → package number
reap() {
  local pid
  wait -n -p pid || true
  report "${running[$pid]}" "${dirs[${running[$pid]}]}"
  unset "running[$pid]"
}
for n in "${!dirs[@]}"; do
  while [ ${#running[@]} -ge "$jobs" ]; do reap; done
  fuzzpkg "$n" "${dirs[$n]}" &
  running[$!]=$n
done
while [ ${#running[@]} -gt 0 ]; do reap; done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} FAILED:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "fuzz: every target of ${#dirs[@]} packages ok"
