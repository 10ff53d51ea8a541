package pirn_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pirn-wasm/pirn"
)

// The README's quickstart, built in Go: a parameter x, d = double(x),
// answer = add(a: x, b: d).
func Example() {
	ctx := context.Background()
	eng, err := pirn.Open(ctx, pirn.Config{InMemory: true})
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
	eng, err := pirn.Open(ctx, pirn.Config{InMemory: true})
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
