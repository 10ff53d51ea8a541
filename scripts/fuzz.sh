#!/usr/bin/env bash
# Runs every fuzz target for a while: scripts/fuzz.sh [DURATION] (default 15s
# each, as in CI). Crashers are written to the package's testdata/fuzz/ and
# become regression tests of the ordinary go test run.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-15s}
for target in \
	"FuzzCanonicalize ./cas" \
	"FuzzDecodeResponse ./abi" \
	"FuzzDecodeValue ./abi" \
	"FuzzDecodeManifest ./abi" \
	"FuzzDecodeRequest ./abi" \
	"FuzzParse ./pipeline" \
	"FuzzDecodeDocument ./host" \
	"FuzzRead ./bundle" \
	"FuzzUnmarshalReflect ./internal/pcbor"; do
	set -- $target
	echo "== $1 ($2, $time)"
	go test -run '^$' -fuzz "^$1\$" -fuzztime "$time" -fuzzminimizetime 10s "$2"
done
