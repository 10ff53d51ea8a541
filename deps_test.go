package pirn_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The import directions of docs/architecture.md, enforced. Edit this table
// only together with that document, never to make a build pass.
const module = "github.com/pirn-wasm/pirn"

// allowedImports lists, for each package, the project packages it may import
// directly. "*" means any. Packages not listed may import nothing of the
// project.
var allowedImports = map[string][]string{
	"":                                       {"*"}, // the embedding API wires everything
	"cmd/pirn":                               {"*"},
	"abi":                                    {"internal/pcbor"},
	"cas":                                    {"internal/pcbor"},
	"cas/castest":                            {"cas"},
	"internal/pcbor":                         {},
	"lineage":                                {"cas"},
	"lineage/lineagetest":                    {"cas", "lineage"},
	"model":                                  {},
	"host":                                   {"abi", "cas", "model"},
	"host/hosttest":                          {"abi", "cas", "host", "model"},
	"scheduler":                              {"abi", "cas", "lineage", "model", "redact", "internal/pcbor", "internal/suggest"},
	"redact":                                 {},
	"pipeline":                               {"abi", "cas", "model", "internal/fileread", "internal/suggest"},
	"internal/suggest":                       {},
	"internal/loom":                          {"abi", "bundle", "bundle/oci", "cas", "expr", "host", "lineage", "model", "pdk/go", "pipeline", "scheduler", "internal/fileread", "internal/suggest"},
	"internal/fileread":                      {},
	"internal/memtest":                       {},
	"internal/runtest":                       {"", "lineage"},
	"expr":                                   {"abi"},
	"viz":                                    {"lineage", "scheduler"},
	"viz/page":                               {"cas", "lineage", "scheduler", "viz"},
	"viz/explore":                            {"backends/sqlite", "internal/fileread", "lineage", "model", "pipeline", "viz", "viz/page"},
	"lineage/rundiff":                        {"cas", "lineage"},
	"ui":                                     {"cas", "lineage", "lineage/rundiff", "viz/page"},
	"conformance":                            {"abi", "cas", "host", "model"},
	"bundle":                                 {},
	"bundle/oci":                             {"bundle"},
	"statedir":                               {"backends/sqlite", "cas"},
	"backends":                               {"backends/duckdb", "backends/postgres", "backends/s3", "backends/sqlite", "backends/valkey", "cas", "lineage"},
	"backends/sqlite":                        {"cas", "lineage", "internal/storedrun"},
	"backends/valkey":                        {"cas"},
	"backends/s3":                            {"cas"},
	"backends/postgres":                      {"cas", "lineage", "internal/storedrun"},
	"backends/duckdb":                        {"cas", "lineage", "internal/storedrun"},
	"internal/storedrun":                     {"cas", "lineage"},
	"pdk/go":                                 {"abi"},
	"pdk/go/pdkhttp":                         {"abi"},
	"internal/tools/benchtable":              {},
	"dispatch":                               {"abi", "cas", "host", "internal/pcbor", "model", "scheduler"},
	"dispatch/dispatchtest":                  {"abi", "cas", "dispatch", "host", "scheduler"},
	"emit":                                   {"cas", "lineage", "scheduler"},
	"serve":                                  {"", "abi", "bundle", "cas", "emit", "expr", "lineage", "scheduler"},
	"serve/internal/messaging":               {"emit", "serve"},
	"serve/internal/messaging/messagingtest": {"", "serve"},
	"serve/kafka":                            {"emit", "serve", "serve/internal/messaging"},
	"serve/valkey":                           {"emit", "serve", "serve/internal/messaging"},
	"serve/nats":                             {"emit", "serve", "serve/internal/messaging"},
	"emit/otel":                              {"emit"},
	"emit/openlineage":                       {"emit"},
}

// thirdParty lists, for each heavy or single-purpose dependency, the only
// packages that may import it directly.
var thirdParty = map[string][]string{
	"github.com/tetratelabs/wazero":  {"host"},
	"github.com/extism/go-sdk":       {"host"},
	"modernc.org/sqlite":             {"backends/sqlite"},
	"github.com/valkey-io/valkey-go": {"backends/valkey", "serve/valkey"},
	"github.com/jackc/pgx/v5":        {"backends/postgres"},
	// DuckDB's Go driver, and every other module of the DuckDB project
	// under this path (the driver's cgo bindings).
	"github.com/duckdb":                    {"backends/duckdb"},
	"go.yaml.in/yaml/v3":                   {"pipeline", "serve"},
	"github.com/urfave/cli/v2":             {"cmd/pirn"},
	"cel.dev/cel-go":                       {"expr"},
	"github.com/robfig/cron/v3":            {"serve"},
	"github.com/opencontainers/image-spec": {"bundle"},
	// The registry client (and, in tests of bundle/oci and cmd/pirn, its
	// in-process registry, which this table cannot see).
	"github.com/google/go-containerregistry": {"bundle/oci"},
	// The AWS SDK (every module under the path) and its Smithy runtime.
	// gofakes3 is the in-process S3 server of backends/s3's tests: go list's
	// Imports leaves test files out, so its row documents more than it
	// enforces.
	"github.com/aws/aws-sdk-go-v2":      {"backends/s3"},
	"github.com/aws/smithy-go":          {"backends/s3"},
	"github.com/johannesboyne/gofakes3": {"backends/s3"},
	// The NATS client, and the embedded server of the tests (in
	// dispatchtest, a helper only tests import; serve/nats's tests start
	// it through dispatchtest).
	"github.com/nats-io/nats.go":        {"dispatch", "serve/nats"},
	"github.com/nats-io/nats-server/v2": {"dispatch/dispatchtest"},
	// The Kafka client (every package under the path: kgo, kmsg, sasl);
	// its in-process cluster pkg/kfake is imported by serve/kafka's tests
	// only, which this table cannot see.
	"github.com/twmb/franz-go": {"serve/kafka"},
	// The OpenTelemetry API, SDK and OTLP exporters (every module under
	// the path), and the OTLP protobuf types its tests decode.
	"go.opentelemetry.io/otel":       {"emit/otel"},
	"go.opentelemetry.io/proto/otlp": {"emit/otel"},
	// The JSON Schema validator of emit/openlineage's tests (test-only:
	// documented here, not enforced).
	"github.com/santhosh-tekuri/jsonschema/v6": {"emit/openlineage"},

	// pirn run's live progress (mpb), and the terminal test mpb uses.
	"github.com/vbauerster/mpb/v8":    {"cmd/pirn"},
	"github.com/vbauerster/cupwriter": {"cmd/pirn"},
	// The browser driver of the run view's and pirn ui's tests (test-only:
	// documented here, not enforced).
	"github.com/chromedp": {"cmd/pirn"},
}

// guestSafe packages are compiled into knots: they must not depend, even
// transitively, on any of these.
var guestSafe = []string{"abi", "pdk/go", "pdk/go/pdkhttp", "cas", "internal/pcbor"}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// buildTags are the tag sets the packages are listed with: the default
// build, and the one with the optional cgo backend (backends/duckdb, and
// the files of backends that open it), whose files the default leaves
// out.
var buildTags = []string{"", "duckdb"}

// listPackages lists the module's packages under each of buildTags; a
// package appears once per tag set that builds it.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	touchSources(t)
	var pkgs []pkg
	for _, tags := range buildTags {
		out, err := exec.Command("go", "list", "-tags", tags, "-json", "./...").Output()
		if err != nil {
			t.Fatalf("go list -tags %q: %v", tags, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for {
			var p pkg
			if err := dec.Decode(&p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func TestImportDirections(t *testing.T) {
	for _, p := range listPackages(t) {
		name, _ := rel(p.ImportPath)
		if strings.HasPrefix(name, "examples/") || strings.HasPrefix(name, "testdata/") {
			continue // knot sources: checked by TestGuestDependencies' rule for pdk/go
		}
		allowed, listed := allowedImports[name]
		if !listed {
			t.Errorf("package %q is not in the architecture table (deps_test.go and docs/architecture.md)", name)
			continue
		}
		for _, imp := range p.Imports {
			if r, ok := rel(imp); ok {
				if !slices.Contains(allowed, "*") && !slices.Contains(allowed, r) {
					t.Errorf("%s imports %s; allowed: %v", name, r, allowed)
				}
				continue
			}
			for dep, owners := range thirdParty {
				if (imp == dep || strings.HasPrefix(imp, dep+"/")) && !slices.Contains(owners, name) {
					t.Errorf("%s imports %s, which only %s may import", name, imp, strings.Join(owners, ", "))
				}
			}
		}
	}
}

func TestGuestDependencies(t *testing.T) {
	for _, p := range listPackages(t) {
		name, _ := rel(p.ImportPath)
		if !slices.Contains(guestSafe, name) {
			continue
		}
		for _, d := range p.Deps {
			for dep := range thirdParty {
				if d == dep || strings.HasPrefix(d, dep+"/") {
					t.Errorf("%s (compiled into knots) depends on %s", name, d)
				}
			}
			if d == "log/slog" || d == "regexp" || d == "net/http" {
				t.Errorf("%s (compiled into knots) depends on %s, which bloats every module", name, d)
			}
		}
	}
	// Built for wasip1, as knot modules are, the guest packages link no
	// CBOR library (pcbor's own codec stands in: refl.go) and no math/big:
	// a Go module's size and compile time grow with its code.
	cmd := exec.Command("go", "list", "-deps", "./pdk/go/...", "./abi")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps (wasip1): %v", err)
	}
	for d := range strings.FieldsSeq(string(out)) {
		if strings.HasPrefix(d, "github.com/fxamacker/cbor") || d == "math/big" {
			t.Errorf("the Go PDK built for wasip1 depends on %s", d)
		}
	}
	// The scheduler knows nothing of WebAssembly.
	for _, p := range listPackages(t) {
		if p.ImportPath == module+"/scheduler" {
			for _, d := range p.Deps {
				if strings.HasPrefix(d, "github.com/tetratelabs/wazero") {
					t.Errorf("scheduler depends on %s", d)
				}
			}
		}
	}
}

// touchSources reads every Go file and go.mod, so that go test's cache
// (which records the files a test opens, not those go list reads) reruns
// these tests when an import changes.
func touchSources(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || path == "go.mod") {
			_, err = os.ReadFile(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
