package storedrun

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pirn-wasm/pirn/lineage"
)

func TestLabelEncodings(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"b": "2", "a": "\x1b[31m\u202e", "c": ""}
	keys, values := LabelLists(labels)
	if !cmp.Equal([]string{"a", "b", "c"}, keys) || !cmp.Equal([]string{"\x1b[31m\u202e", "2", ""}, values) {
		t.Errorf("LabelLists = %q, %q; want sorted keys with their values", keys, values)
	}
	if back, err := LabelMap(keys, values); err != nil || !cmp.Equal(labels, back) {
		t.Errorf("LabelMap(LabelLists) = %v, %v; want %v", back, err, labels)
	}
	if k, v := LabelLists(nil); k == nil || v == nil || len(k)+len(v) != 0 {
		t.Errorf("LabelLists(nil) = %#v, %#v; want empty lists", k, v)
	}
	if m, err := LabelMap(nil, nil); m != nil || err != nil {
		t.Errorf("LabelMap(none) = %v, %v; want nil", m, err)
	}
	for _, bad := range [][2][]string{{{"a"}, {}}, {{"a", "a"}, {"1", "2"}}} {
		if _, err := LabelMap(bad[0], bad[1]); err == nil {
			t.Errorf("LabelMap(%q, %q) = nil error, want corrupt labels", bad[0], bad[1])
		}
	}
	js := EncodeLabels(labels)
	if js != `{"a":"\u001b[31m`+"\u202e"+`","b":"2","c":""}` {
		t.Errorf("EncodeLabels = %s", js)
	}
	if back, err := DecodeLabels(js); err != nil || !cmp.Equal(labels, back) {
		t.Errorf("DecodeLabels(EncodeLabels) = %v, %v; want %v", back, err, labels)
	}
	for _, none := range []string{"", "{}", "null"} {
		if m, err := DecodeLabels(none); m != nil || err != nil {
			t.Errorf("DecodeLabels(%q) = %v, %v; want nil", none, m, err)
		}
	}
	if EncodeLabels(nil) != "{}" {
		t.Errorf("EncodeLabels(nil) = %s, want {}", EncodeLabels(nil))
	}
	if _, err := DecodeLabels(`{"a": 1}`); err == nil {
		t.Error("DecodeLabels of a number = nil error")
	}
}

func TestCheckLabels(t *testing.T) {
	t.Parallel()
	r := &lineage.Run{ID: "r", Labels: map[string]string{"bad key": "v"}}
	if err := Check(r); err == nil || !strings.Contains(err.Error(), `label key "bad key"`) {
		t.Errorf("Check of a bad label key = %v", err)
	}
	r.Labels = map[string]string{"k": "a!b"}
	bang := func(s string) string {
		if strings.Contains(s, "!") {
			return "has a bang"
		}
		return ""
	}
	if err := CheckText(r, bang); err == nil || err.Error() != `run label "k": text "a!b" has a bang` {
		t.Errorf("CheckText of a label value = %v, want the label named", err)
	}
}
