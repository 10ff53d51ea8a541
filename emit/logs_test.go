package emit_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/lineage"
)

// TestWireRecordLogs: a record's logs digest is in its wire form; a
// record without logs has no "logs".
func TestWireRecordLogs(t *testing.T) {
	logs := cas.Sum([]byte("logs"))
	b, err := json.Marshal(emit.WireRecord(&lineage.Record{KnotID: "d", Kind: lineage.KindKnot, Outcome: lineage.OK, Logs: logs}))
	if err != nil || !strings.Contains(string(b), `"logs":"`+logs.String()+`"`) {
		t.Errorf("WireRecord(logged) = %s, %v; want logs %s", b, err, logs)
	}
	b, err = json.Marshal(emit.WireRecord(&lineage.Record{KnotID: "d", Kind: lineage.KindKnot, Outcome: lineage.OK}))
	if err != nil || strings.Contains(string(b), `"logs"`) {
		t.Errorf("WireRecord(no logs) = %s, %v; want no logs", b, err)
	}
}
