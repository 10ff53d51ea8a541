package storedrun

import (
	"strings"
	"testing"
	"time"

	"github.com/pirn-wasm/pirn/lineage"
)

func TestNanosAndCheck(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 12, 0, 0, 7, time.UTC)
	var c Nanos
	if n := c.Of(at); !Time(n).Equal(at) || c.Of(time.Time{}) != 0 || !Time(0).IsZero() || c.Err != nil {
		t.Errorf("round trip: %v, %v", Time(n), c.Err)
	}
	if c.Of(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); c.Err == nil {
		t.Error("a time beyond int64 nanoseconds was accepted")
	}
	for _, tc := range []struct {
		r    lineage.Run
		want string
	}{
		{lineage.Run{ID: "a", Records: []lineage.Record{{RunID: "b", KnotID: "k"}}}, `record 0 (k): RunID = "b", want "a"`},
		{lineage.Run{ID: "a", Errors: []lineage.ErrorRecord{{RunID: "b"}}}, `RunID = "b", want "a"`},
		{lineage.Run{ID: "a", StartedAt: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}, "outside the range"},
	} {
		if err := Check(&tc.r); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check: %v, want %q", err, tc.want)
		}
	}
	if err := Check(&lineage.Run{ID: "a", StartedAt: at}); err != nil {
		t.Error(err)
	}
}

func TestCheckText(t *testing.T) {
	r := &lineage.Run{ID: "r", Records: []lineage.Record{{RunID: "r", KnotID: "k", Grants: []string{"ok", "bad!"}}}}
	bang := func(s string) string {
		if strings.Contains(s, "!") {
			return "has a bang"
		}
		return ""
	}
	if err := CheckText(r, bang); err == nil || err.Error() != `record 0 ("k") grants: text "bad!" has a bang` {
		t.Errorf("CheckText = %v, want the grant named", err)
	}
	r.Records[0].Grants = nil
	if err := CheckText(r, bang); err != nil {
		t.Errorf("CheckText of good text = %v", err)
	}
}
