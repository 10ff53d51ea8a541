#!/usr/bin/env bash
# What a Go knot costs a new user (issue 15, target 5): `pirn run` of the
# quickstart with nothing cached (its Go module compiled), the same again
# warm, and the peak memory of a 5000-knot chain of Go knots recorded to
# SQLite + disk. Prints medians of N rounds (default 5) as a table.
#   scripts/first-contact.sh [N]
# To compare two commits, run it in a checkout of each, one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/pirn.built" ./cmd/pirn
cp "$work/pirn.built" "$work/pirn" # a copy, as installed (docs/performance.md)
pirn=$work/pirn

{
	printf 'name: chain5000\nmodules: {m: "%s"}\nnodes:\n  - {id: x, type: parameter, type_: int, default: 1}\n' "$PWD/examples/wasm/go/arith/arith.wasm"
	prev=x
	for i in $(seq 0 4999); do
		echo "  - {id: k$i, type: knot, module: m, knot: inc, parents: {x: $prev}}"
		prev=k$i
	done
} >"$work/chain.yaml"
"$pirn" lock "$work/chain.yaml" >/dev/null
"$pirn" run --memory "$work/chain.yaml" >/dev/null # warms the compilation cache

# measure NAME CMD...: one line "NAME wall cpu maxrss_kib" per call.
measure() {
	local name=$1
	shift
	/usr/bin/time -f "$name %e %U %S %M" "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1, $2, $3 + $4, $5}'
}
for _ in $(seq "$rounds"); do
	cache=$(mktemp -d -p "$work")
	measure cold "$pirn" --cache-dir "$cache" run --no-progress --state "$(mktemp -d -p "$work")" examples/quickstart/pipeline.yaml
	measure warm "$pirn" --cache-dir "$cache" run --no-progress --state "$(mktemp -d -p "$work")" examples/quickstart/pipeline.yaml
	measure chain "$pirn" run --no-progress --state "$(mktemp -d -p "$work")" "$work/chain.yaml"
done >"$work/raw"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| measure (median of $rounds) | wall | CPU | peak RSS |"
echo "|---|---|---|---|"
for m in cold warm chain; do
	label=$m
	case $m in
	cold) label="quickstart, nothing cached" ;;
	warm) label="quickstart, compiled code cached" ;;
	chain) label="5000-chain of Go knots, SQLite + disk" ;;
	esac
	wall=$(awk -v m=$m '$1==m {print $2}' "$work/raw" | median)
	cpu=$(awk -v m=$m '$1==m {print $3}' "$work/raw" | median)
	rss=$(awk -v m=$m '$1==m {print $4}' "$work/raw" | median)
	printf '| %s | %s s | %s s | %.1f MiB |\n' "$label" "$wall" "$cpu" "$(echo "$rss / 1024" | bc -l)"
done
echo
echo "$(nproc) CPUs, $(go env GOOS)/$(go env GOARCH), $(go version | cut -d' ' -f3), $(git rev-parse --short HEAD)"
