package emit_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/lineage"
)

// TestWireRecordReuse: a reused record's wire form names its cache key
// and the record it was reused from; one that ran names neither.
func TestWireRecordReuse(t *testing.T) {
	key := cas.Sum([]byte("key"))
	reused := &lineage.Record{KnotID: "d", Kind: lineage.KindKnot, Outcome: lineage.OK, CacheKey: key,
		ReusedFrom: lineage.Ref{RunID: "run-1", KnotID: "d"}}
	b, err := json.Marshal(emit.WireRecord(reused))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"cache_key":"` + key.String() + `"`, `"reused_from":"run-1/d"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("WireRecord(reused) = %s, want it to hold %s", b, want)
		}
	}
	b, err = json.Marshal(emit.WireRecord(&lineage.Record{KnotID: "d", Kind: lineage.KindKnot, Outcome: lineage.OK}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "cache_key") || strings.Contains(string(b), "reused_from") {
		t.Errorf("WireRecord(ran, no key) = %s, want neither cache_key nor reused_from", b)
	}
}
