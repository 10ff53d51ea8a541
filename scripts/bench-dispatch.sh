#!/usr/bin/env bash
# Measures remote dispatch and prints the table of docs/performance.md
# ("Remote workers"):
#   scripts/bench-dispatch.sh            # 10,000-job Map of ~44 ms knots (spin n=1,500,000): about 13 minutes
#   PIRN_BENCH_COUNT=2000 PIRN_BENCH_SPIN_N=150000 scripts/bench-dispatch.sh   # a quicker look
# Everything runs on this machine: an embedded NATS server, the
# coordinator (pirn run) and the worker processes share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'RemoteKnot' -benchtime 3000x ./dispatch/ | tee -a "$out" >&2
go test -run '^$' -bench 'RemoteMap' -benchtime 5x ./dispatch/ | tee -a "$out" >&2
PIRN_BENCH_SPIN_N=${PIRN_BENCH_SPIN_N:-1500000} go test -run '^$' -bench 'DispatchMap/nats|DispatchRecovery' -benchtime 1x -timeout 90m ./cmd/pirn/ | tee -a "$out" >&2
PIRN_TEST_KILL_COUNT=${PIRN_BENCH_COUNT:-10000} go test -count=1 -run 'TestDispatchWorkerKilled/embedded' -v -timeout 30m ./cmd/pirn/ | tee -a "$out" >&2

awk '
/^BenchmarkRemoteKnot\/local/ { local = $3 }
/^BenchmarkRemoteKnot\/nats/  { remote = $3 }
/^BenchmarkRemoteMap\/workers=1/ { for (i = 1; i < NF; i++) if ($(i+1) == "jobs/s") m1 = $i }
/^BenchmarkRemoteMap\/workers=2/ { for (i = 1; i < NF; i++) if ($(i+1) == "jobs/s") m2 = $i }
/^BenchmarkDispatchMap\/local\/workers=1/ { l1 = $3 }
/^BenchmarkDispatchMap\/local\/workers=2/ { l2 = $3 }
/^BenchmarkDispatchMap\/nats\/workers=1/  { n1 = $3 }
/^BenchmarkDispatchMap\/nats\/workers=2/  { n2 = $3 }
/^BenchmarkDispatchRecovery/ { for (i = 1; i < NF; i++) if ($(i+1) == "ms-to-recover") rec = $i }
/jobs started/ { kill = $0; sub(/.*jobs started/, "jobs started", kill) }
END {
	printf "| measure | figure |\n|---|---|\n"
	printf "| one trivial Go knot, local (host knot) | %.1f µs |\n", local / 1000
	printf "| one trivial Go knot, remote (in-process worker, 1 slot, embedded NATS, memory store) | %.1f µs |\n", remote / 1000
	printf "| overhead per remote knot | %.1f µs |\n", (remote - local) / 1000
	printf "| 1,000 trivial remote jobs at once, 1 / 2 workers of 1 slot | %s / %s jobs/s |\n", m1, m2
	printf "| Map of CPU-bound knots, pirn run --dispatch, 1 / 2 worker processes of 1 slot | %.2f s / %.2f s |\n", n1 / 1e9, n2 / 1e9
	printf "| speed-up from 1 to 2 worker processes | %.2f× |\n", n1 / n2
	printf "| time to recover a killed worker'"'"'s job (ack wait 1 s) | %s ms |\n", rec
	printf "| kill test: %s |  |\n", kill
}' "$out"
