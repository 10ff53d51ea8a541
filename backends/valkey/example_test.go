package valkey_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pirn-wasm/pirn/backends/valkey"
	"github.com/pirn-wasm/pirn/cas"
)

func Example() {
	ctx := context.Background()
	s, err := valkey.Open(ctx, valkey.Config{
		URL:    testURL(), // for example "valkey://:password@cache.internal:6379/2"
		Prefix: "pirn:example:",
		TTL:    time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	v, err := cas.NewValue(map[string]any{"answer": 42})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Put(ctx, v.Digest, v.Bytes); err != nil {
		log.Fatal(err)
	}
	defer s.Delete(ctx, v.Digest)
	b, err := s.Get(ctx, v.Digest)
	if err != nil {
		log.Fatal(err)
	}
	x, err := cas.Decode(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v.Digest, x)
	// Output: sha256:c44ea86957f13da39559f9bc5e320c8440cd560610533f272afd1a5a90aa6a39 map[answer:42]
}

func ExampleRedact() {
	fmt.Println(valkey.Redact("valkey://pirn:s3cret@cache.internal:6379/2"))
	// Output: valkey://pirn:xxxxx@cache.internal:6379/2
}
