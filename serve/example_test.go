package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/serve"
)

// An embedding program runs triggers without the CLI: it parses a
// serve.yaml (or builds a Config), makes a Server on its engine and runs
// it until its context ends.
func Example() {
	ctx := context.Background()
	eng, err := pirn.Open(ctx, pirn.Config{})
	if err != nil {
		panic(err)
	}
	defer eng.Close(ctx)
	cfg, err := serve.Parse("serve.yaml", []byte(`
listen: 127.0.0.1:0
pipelines:
  - {name: quick, path: ../examples/quickstart/pipeline.yaml}
triggers:
  - {type: webhook, pipeline: quick, path: /hooks/quick, auth: none}
`))
	if err != nil {
		panic(err)
	}
	srv, err := serve.New(ctx, eng, cfg, serve.Options{})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()

	resp, err := http.Post("http://"+srv.Addr().String()+"/hooks/quick", "application/json", bytes.NewReader([]byte(`{"x": 7}`)))
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status)

	stop() // drains the run in flight, then returns
	fmt.Println(<-done)
	runs, _ := eng.History().Runs(context.Background(), lineage.Query{})
	fmt.Println(len(runs), runs[0].Status)
	// Output:
	// 202 Accepted
	// <nil>
	// 1 succeeded
}
