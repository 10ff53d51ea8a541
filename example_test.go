package pirn_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/bundle"
	"github.com/pirn-wasm/pirn/bundle/oci"
)

// The README's quickstart, built in Go: a parameter x, d = double(x),
// answer = add(a: x, b: d).
func Example() {
	ctx := context.Background()
	eng, err := pirn.Open(ctx, pirn.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close(ctx)
	arith, err := eng.LoadModule(ctx, "examples/wasm/go/arith/arith.wasm")
	if err != nil {
		log.Fatal(err)
	}

	t := pirn.NewTapestry()
	x, _ := t.Parameter(pirn.Param{Name: "x", Type: "int"})
	d, _ := t.Knot("d", arith.Knot("double"), pirn.In{"x": x})
	t.Knot("answer", arith.Knot("add"), pirn.In{"a": x, "b": d})

	res, err := eng.Run(ctx, t, pirn.RunRequest{Params: map[string]any{"x": 5}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status, res.Outputs)
	// Output: succeeded map[answer:15 d:10 param:x:5]
}

// Loading the quickstart from its YAML file instead.
func ExampleEngine_LoadPipeline() {
	ctx := context.Background()
	eng, err := pirn.Open(ctx, pirn.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close(ctx)
	p, err := eng.LoadPipeline(ctx, "examples/quickstart/pipeline.yaml")
	if err != nil {
		log.Fatal(err)
	}
	res, err := eng.Run(ctx, p.Tapestry, pirn.RunRequest{Params: map[string]any{"x": 7}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Outputs["x"], res.Outputs["d"], res.Outputs["answer"])
	// Output: 7 14 21
}

// Map, Reduce, Gate and Branch built in Go: square 0..4 with a Wasm knot,
// total them with an expression, and route the total.
func Example_nodeTypes() {
	ctx := context.Background()
	eng, err := pirn.Open(ctx, pirn.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close(ctx)
	arith, err := eng.LoadModule(ctx, "examples/wasm/go/arith/arith.wasm")
	if err != nil {
		log.Fatal(err)
	}

	t := pirn.NewTapestry()
	numbers, _ := t.Add(pirn.KnotDef{ID: "numbers", Kind: pirn.KindSource, Knot: arith.Knot("range"), In: pirn.In{"n": 5}})
	squares, _ := t.Map(pirn.MapDef{ID: "squares", Over: numbers, Each: arith.Knot("square")})
	total, _ := t.Reduce(pirn.ReduceDef{ID: "total", Of: squares, Combine: pirn.Expr("sum(items)")})
	big, _ := t.Gate(pirn.GateDef{ID: "big", Input: total, Predicate: pirn.Expr("total > 20")})
	route, _ := t.Branch(pirn.BranchDef{ID: "route", Input: big, Selector: arith.Knot("sign"), Arms: []string{"neg", "zero", "pos"}})
	t.Knot("doubled", arith.Knot("double"), pirn.In{"x": route.Arm("pos")})

	res, err := eng.Run(ctx, t, pirn.RunRequest{})
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"squares", "total", "big", "route", "doubled"} {
		fmt.Println(id, res.Outputs[id])
	}
	// Output:
	// squares [0 1 4 9 16]
	// total 30
	// big 30
	// route pos
	// doubled 60
}

// A Go function as a knot, for trusted code in the embedding program. Its
// inputs are the fields of a struct, as in the Go PDK.
func ExampleFunc() {
	ctx := context.Background()
	eng, err := pirn.Open(ctx, pirn.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close(ctx)

	type greeting struct {
		Name string `pirn:"name"`
	}
	greet := pirn.Func("greet", func(_ context.Context, in greeting) (string, error) {
		return "hello, " + in.Name, nil
	})
	t := pirn.NewTapestry()
	who, _ := t.Parameter(pirn.Param{Name: "who", Type: "str"})
	t.Knot("greeting", greet, pirn.In{"name": who})

	res, err := eng.Run(ctx, t, pirn.RunRequest{Params: map[string]any{"who": "pirn"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Outputs["greeting"], res.Records[1].Knot)
	// Output: hello, pirn host:greet
}

// A bundle pushed to an OCI registry (here one in the process) and run
// from there: LoadBundle takes an oci:// reference as it takes a file,
// with the same checks (Digest, Trust, AllowGrants).
func ExampleEngine_LoadBundle_registry() {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	eng, err := pirn.Open(ctx, pirn.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close(ctx)
	var file bytes.Buffer
	if err := eng.Bundle(ctx, "examples/quickstart/pipeline.yaml", &file, pirn.BundleOptions{}); err != nil {
		log.Fatal(err)
	}
	pushed, err := oci.Push(ctx, "oci://"+host+"/demo/quickstart:v1", file.Bytes(), oci.Options{})
	if err != nil {
		log.Fatal(err)
	}

	p, err := eng.LoadBundle(ctx, "oci://"+host+"/demo/quickstart:v1", pirn.LoadBundleOptions{Digest: pushed.Digest})
	if err != nil {
		log.Fatal(err)
	}
	res, err := eng.Run(ctx, p.Tapestry, pirn.RunRequest{Params: map[string]any{"x": 2}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Outputs["answer"], p.Bundle.Digest == bundle.Digest(file.Bytes()), strings.ReplaceAll(p.Bundle.Reference, host, "HOST") == "oci://HOST/demo/quickstart@"+pushed.Digest)
	// Output: 6 true true
}
