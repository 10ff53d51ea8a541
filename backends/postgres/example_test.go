package postgres_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pirn-wasm/pirn/backends/postgres"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
)

// A history and a data store in one schema of a shared server. (Not run:
// it needs the server.)
func Example() {
	ctx := context.Background()
	dsn := "postgres://pirn:secret@db.example:5432/lineage?sslmode=verify-full"
	h, err := postgres.Open(ctx, postgres.Config{DSN: dsn, Schema: "team"})
	if err != nil {
		log.Fatal(err) // names the DSN as postgres://pirn:xxxxx@db.example:5432/…
	}
	defer h.Close()
	s, err := postgres.OpenStore(ctx, postgres.StoreConfig{DSN: dsn, Schema: "team"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	v, err := cas.NewValue(5)
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		log.Fatal(err)
	}
	at := time.Now()
	run := &lineage.Run{ID: "run-1", Pipeline: "quickstart", Status: lineage.Succeeded, StartedAt: at, FinishedAt: at,
		Records: []lineage.Record{{RunID: "run-1", KnotID: "x", Kind: lineage.KindParameter, Knot: lineage.KnotParameter,
			Output: v.Digest, Outcome: lineage.OK, StartedAt: at, FinishedAt: at}}}
	if err := h.RecordRun(ctx, run); err != nil {
		log.Fatal(err)
	}
	recs, err := h.ByOutput(ctx, v.Digest)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Println(r.RunID, r.KnotID, r.Outcome)
	}
}

func ExampleRedact() {
	fmt.Println(postgres.Redact("postgres://pirn:secret@db.example/lineage?sslmode=require"))
	fmt.Println(postgres.Redact("host=db.example user=pirn password='s3 cret' dbname=lineage"))
	// Output:
	// postgres://pirn:xxxxx@db.example/lineage?sslmode=require
	// host=db.example user=pirn password=xxxxx dbname=lineage
}
