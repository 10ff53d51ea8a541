# pirn — see README.md.
GO        ?= go
GOWASM    = GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -buildvcs=false -ldflags="-w -buildid="
GOCMD     = GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildvcs=false -ldflags="-w -buildid="
GO_KNOTS  = examples/wasm/go/arith examples/wasm/go/outcomes testdata/wasm/go/testknots testdata/wasm/go/capknots testdata/wasm/go/netknots testdata/wasm/go/work
# Extism plugins (each in a module of its own, for the Extism Go PDK) and WASI commands.
PLUGINS   = examples/wasm/extism/wordfreq testdata/wasm/extism/plain
COMMANDS  = examples/wasm/wasi-command/wc testdata/wasm/go/command
WAT_KNOTS = $(patsubst %.wat,%.wasm,$(wildcard testdata/wasm/wat/*.wat testdata/hostile/*.wat examples/wasm/wat/*.wat))
# The hostile-module suite's C sources (docs/security.md), with the C PDK.
C_HOSTILE = $(patsubst %.c,%.wasm,$(wildcard testdata/hostile/*.c))
C_FLAGS   = --target=wasm32-wasi -mexec-model=reactor -mbulk-memory -ftls-model=local-exec -std=c11 -O2 -Wall -Wextra -Werror \
	-ffile-prefix-map=$(CURDIR)=. -Ipdk/c -nodefaultlibs -lc -Wl,--strip-debug
# Languages with a build of their own: each directory's Makefile has wasm and test targets.
LANGS     = examples/wasm/rust examples/wasm/c examples/wasm/assemblyscript
PIPELINES = examples/quickstart/pipeline.yaml examples/verify/pipeline.yaml examples/polyglot/pipeline.yaml $(wildcard examples/wasm/*/pipeline.yaml) $(wildcard examples/pipelines/*.yaml) $(wildcard testdata/pipelines/*.yaml) $(wildcard testdata/hostile/*.yaml) $(wildcard serve/testdata/*.yaml) $(wildcard testdata/dispatch/*.yaml) $(wildcard dispatch/testdata/*.yaml)
# The check fixture is deliberately broken, so pirn lock refuses it: pin arith by hand.
CHECK_LOCK = testdata/pipelines/check/broken.lock

.PHONY: all test test-short test-duckdb test-dispatch wasm wasm-check lock check bench bench-emit pdk-test conformance
all: wasm test

# test is the README's test command: the whole suite under the race
# detector (which needs cgo, hence a C compiler).
test:
	$(GO) test -race ./...

# test-short skips the slow tests (process kills, fuzz seeds at length,
# building a knot module from scratch) and the race detector: Go alone,
# well under a minute once the build cache is warm.
test-short:
	$(GO) test -short ./...

# test-duckdb runs what only a build with the tag duckdb has: the DuckDB
# history (a cgo package), duckdb: URLs, and the CLI built with it.
test-duckdb:
	$(GO) test -race -tags duckdb ./backends/duckdb/ ./backends/
	$(GO) test -race -tags duckdb -run DuckDB ./cmd/pirn/

# test-dispatch runs the scheduler's suite with every function sent to
# in-process workers over an embedded NATS server (the remote dispatcher).
test-dispatch:
	PIRN_TEST_DISPATCH=nats $(GO) test -race -count=1 ./scheduler/ -args -prop.cases=300

# wasm rebuilds every committed module from source.
wasm: $(GO_KNOTS:%=%.gowasm) $(PLUGINS:%=%.gowasm) $(COMMANDS:%=%.gocmd) $(WAT_KNOTS) $(C_HOSTILE) $(LANGS:%=%.lang)

%.gowasm: FORCE
	cd $* && $(GOWASM) -o $(notdir $*).wasm .

%.gocmd: FORCE
	cd $* && $(GOCMD) -o $(notdir $*).wasm .

%.lang: FORCE
	$(MAKE) -C $* wasm

%.wasm: %.wat FORCE
	wat2wasm --debug-names $< -o $@

testdata/hostile/%.wasm: testdata/hostile/%.c pdk/c/pirn.h FORCE
	clang $(C_FLAGS) $< -o $@

# conformance runs the ABI conformance kit on every example module.
PIRN_MODULES = examples/wasm/go/arith/arith.wasm examples/wasm/go/outcomes/outcomes.wasm \
	examples/wasm/rust/stats.wasm examples/wasm/rust/stats-unknown.wasm examples/wasm/c/text.wasm \
	examples/wasm/assemblyscript/geo.wasm examples/wasm/wat/negate.wasm
conformance:
	$(GO) run ./cmd/pirn conformance $(PIRN_MODULES)
	$(GO) run ./cmd/pirn conformance --abi extism --calls 200 examples/wasm/extism/wordfreq/wordfreq.wasm
	$(GO) run ./cmd/pirn conformance --abi wasi-command examples/wasm/wasi-command/wc/wc.wasm

# pdk-test runs each language PDK's own unit tests.
pdk-test:
	for d in $(LANGS); do $(MAKE) -C $$d test || exit 1; done

# wasm-check rebuilds the modules and fails if any differs from the committed bytes.
wasm-check: wasm
	git diff --exit-code -- '*.wasm'

# lock re-pins the example pipelines' modules after a rebuild.
lock:
	for p in $(PIPELINES); do $(GO) run ./cmd/pirn lock $$p >/dev/null || exit 1; done
	echo "arith sha256:$$(sha256sum examples/wasm/go/arith/arith.wasm | cut -d' ' -f1) ../../../examples/wasm/go/arith/arith.wasm" > $(CHECK_LOCK)

check:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	$(GO) vet ./...
	$(GO) vet -tags duckdb ./backends/... ./cmd/pirn/
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./abi/... ./pdk/go/...
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags duckdb ./backends/... ./cmd/pirn/
	# The guest-side pass: staticcheck built for this machine, checking
	# wasip1 code. //go:wasmexport functions look unused to it (U1000).
	$(GO) build -o bin/staticcheck honnef.co/go/tools/cmd/staticcheck
	GOOS=wasip1 GOARCH=wasm bin/staticcheck -checks 'inherit,-U1000' ./abi/... ./pdk/go/...

bench:
	./scripts/bench.sh

# bench-emit prints docs/performance.md's table of what emitters cost a run.
bench-emit:
	./scripts/bench-emit.sh

FORCE:
