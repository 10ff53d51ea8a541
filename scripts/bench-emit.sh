#!/usr/bin/env bash
# Measures what emitters cost a run and prints the table of
# docs/performance.md ("Emitters"):
#   scripts/bench-emit.sh                  # -benchtime 2s, median of 3
#   PIRN_BENCH_COUNT=5 scripts/bench-emit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'Emitters' -benchtime 2s -count "${PIRN_BENCH_COUNT:-3}" ./emit/ | tee "$out" >&2

awk '
/^BenchmarkEmitters\// {
	name = $1; sub(/^BenchmarkEmitters\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 1; i < NF; i++) {
		if ($(i+1) == "runs/s") rate[name] = rate[name] " " $i
		if ($(i+1) == "drops/run") drops[name] = drops[name] " " $i
	}
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
}
function median(list,   a, k, i, j, t) {
	k = split(list, a, " ")
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return a[int((k + 1) / 2)]
}
END {
	base = median(rate["run/none"])
	printf "| emitter | runs/s (median) | vs no emitter | drops per run |\n|---|---|---|---|\n"
	for (i = 1; i <= n; i++) {
		r = median(rate[order[i]]); d = (order[i] in drops) ? sprintf("%.2f", median(drops[order[i]])) : "–"
		printf "| %s | %.0f | %.0f%% | %s |\n", order[i], r, 100 * r / base, d
	}
}' "$out"
