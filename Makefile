# pirn — see README.md.
GO        ?= go
GOWASM    = GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-w
GO_KNOTS  = examples/wasm/go/arith examples/wasm/go/outcomes testdata/wasm/go/bytes
WAT_KNOTS = $(patsubst %.wat,%.wasm,$(wildcard testdata/wasm/wat/*.wat))

.PHONY: all test wasm wasm-check check bench
all: wasm test

test:
	$(GO) test -race ./...

# wasm rebuilds every committed module from source.
wasm: $(GO_KNOTS:%=%.gowasm) $(WAT_KNOTS)

%.gowasm: FORCE
	cd $* && $(GOWASM) -o $(notdir $*).wasm .

testdata/wasm/wat/%.wasm: testdata/wasm/wat/%.wat FORCE
	wat2wasm --debug-names $< -o $@

# wasm-check rebuilds the modules and fails if any differs from the committed bytes.
wasm-check: wasm
	git diff --exit-code -- '*.wasm'

check:
	gofmt -l . | (! grep .)
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./abi/... ./pdk/go/...

bench:
	./scripts/bench.sh

FORCE:
