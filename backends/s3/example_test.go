package s3_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pirn-wasm/pirn/backends/s3"
	"github.com/pirn-wasm/pirn/cas"
)

func ExampleParseURL() {
	cfg, err := s3.ParseURL("s3://pirn-values/team-a?region=eu-west-1&endpoint=http://127.0.0.1:9000&path_style=true")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bucket %s, prefix %s, region %s, endpoint %s, path style %v\n",
		cfg.Bucket, cfg.Prefix, cfg.Region, cfg.Endpoint, cfg.PathStyle)
	// Output: bucket pirn-values, prefix team-a, region eu-west-1, endpoint http://127.0.0.1:9000, path style true
}

// Example stores a value in a bucket of an S3-compatible server (here one
// in the process), with credentials from the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
func Example() {
	ctx := context.Background()
	backend := s3mem.New()
	if err := backend.CreateBucket("pirn-values"); err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()

	store, err := s3.Open(ctx, s3.Config{Bucket: "pirn-values", Prefix: "team-a", Endpoint: srv.URL, PathStyle: true})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	v, err := cas.NewValue(map[string]any{"answer": 42})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Put(ctx, v.Digest, v.Bytes); err != nil {
		log.Fatal(err)
	}
	b, err := store.Get(ctx, v.Digest)
	if err != nil {
		log.Fatal(err)
	}
	x, err := cas.Decode(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(store.Key(v.Digest))
	fmt.Println(x)
	// Output:
	// team-a/sha256/c4/c44ea86957f13da39559f9bc5e320c8440cd560610533f272afd1a5a90aa6a39
	// map[answer:42]
}
