package page_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/model"
	"github.com/pirn-wasm/pirn/viz/page"
)

// hostileRun runs, with a real Wasm module, a tapestry whose text is
// hostile: an expression that outputs a <script> element, a Go function
// that errs with markup in its message, a label with control characters,
// and a Map whose elements are summed up on its node.
func hostileRun(t testing.TB, store cas.Store, hist lineage.History) *pirn.RunResult {
	t.Helper()
	ctx := context.Background()
	eng, err := pirn.Open(ctx, pirn.Config{Store: store, History: hist})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	arith, err := eng.LoadModule(ctx, "../../examples/wasm/go/arith/arith.wasm")
	if err != nil {
		t.Fatal(err)
	}
	outcomes, err := eng.LoadModule(ctx, "../../examples/wasm/go/outcomes/outcomes.wasm")
	if err != nil {
		t.Fatal(err)
	}
	type in struct {
		X int64 `pirn:"x"`
	}
	boom := pirn.Func("boom", func(_ context.Context, v in) (int64, error) {
		return 0, errors.New(`bad <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> ` + strings.Repeat("long ", 5000))
	})
	tp := pirn.NewTapestry()
	x, _ := tp.Parameter(pirn.Param{Name: "x", Type: "int"})
	d, _ := tp.Knot("d", arith.Knot("double"), pirn.In{"x": x})
	tp.Knot("answer", arith.Knot("add"), pirn.In{"a": x, "b": d})
	tp.Knot("xss", pirn.Expr(`"<script>window.__pwned=1</script>" + string(x)`), pirn.In{"x": x})
	bm, _ := tp.Knot("boom", boom, pirn.In{"x": d})
	// recover is a Wasm knot that logs the error it receives: hostile
	// text in a log line.
	tp.Add(pirn.KnotDef{ID: "recover", Knot: outcomes.Knot("recover"), In: pirn.In{"x": bm}, Policy: model.ReceiveErrors})
	nums, _ := tp.Add(pirn.KnotDef{ID: "numbers", Kind: pirn.KindSource, Knot: arith.Knot("range"), In: pirn.In{"n": 4}})
	tp.Map(pirn.MapDef{ID: "squares", Over: nums, Each: arith.Knot("square")})
	res, err := eng.Run(ctx, tp, pirn.RunRequest{Params: map[string]any{"x": 5}, Labels: map[string]string{"trigger": "a\x1b[31mred\u202e"}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var dataBlock = regexp.MustCompile(`(?s)<script type="application/json" id="pirn-data">(.*?)</script>`)

func TestRunPage(t *testing.T) {
	ctx := t.Context()
	store, hist := cas.NewMemory(), lineage.NewMemory()
	res := hostileRun(t, store, hist)
	res2 := hostileRun(t, store, hist) // the same values again: lineage across runs
	var buf bytes.Buffer
	if err := page.Run(ctx, &buf, page.Config{}, &res2.Run, store, hist); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// Nothing hostile reaches the page as markup.
	for _, bad := range []string{"<script>window.__pwned", "<img src=x", "\x1b", "\u202e"} {
		if strings.Contains(out, bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	if !strings.Contains(out, `a\u001b[31mred\u202e`) {
		t.Errorf("page lacks the label with its control characters made visible")
	}
	if strings.Count(out, "<script") != 2 {
		t.Errorf("page has %d <script elements, want 2 (the data and the code)", strings.Count(out, "<script"))
	}
	m := dataBlock.FindStringSubmatch(out)
	if m == nil {
		t.Fatal("page lacks its data block")
	}
	var d struct {
		Run   string `json:"run"`
		Nodes []struct {
			ID       string `json:"id"`
			Outcome  string `json:"outcome"`
			Elements string `json:"elements"`
			Output   *struct {
				Digest, JSON string
			} `json:"output"`
			Inputs []struct {
				Name, Parent, Digest string
			} `json:"inputs"`
			Error *struct {
				Type, Message string
			} `json:"error"`
			Producers []struct{ Run, Knot string } `json:"producers"`
			Logs      *struct {
				Digest string
				Lines  []struct{ Level, Msg string }
			} `json:"logs"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(m[1]), &d); err != nil {
		t.Fatalf("data block is not JSON: %v", err)
	}
	byID := map[string]int{}
	for i, n := range d.Nodes {
		byID[n.ID] = i
	}
	if len(d.Nodes) != 8 { // param x, d, answer, xss, boom, recover, numbers, squares
		t.Fatalf("page has %d nodes, want 8 (elements collapsed): %v", len(d.Nodes), byID)
	}
	rec := d.Nodes[byID["recover"]]
	if rec.Logs == nil || len(rec.Logs.Lines) != 1 || rec.Logs.Lines[0].Level != "info" ||
		!strings.HasPrefix(rec.Logs.Lines[0].Msg, `recovering from Error: bad <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> long`) ||
		len(rec.Logs.Lines[0].Msg) > 1100 || !strings.HasPrefix(rec.Logs.Digest, "sha256:") {
		t.Errorf("recover logs = %+v, want its one line, the hostile text as text, clipped", rec.Logs)
	}
	if d.Nodes[byID["d"]].Logs != nil {
		t.Errorf("d logged nothing, but shows logs %+v", d.Nodes[byID["d"]].Logs)
	}
	xss := d.Nodes[byID["xss"]]
	if xss.Output == nil || xss.Output.JSON != `"<script>window.__pwned=1</script>5"` {
		t.Errorf("xss output = %+v, want the script text as a JSON string", xss.Output)
	}
	boom := d.Nodes[byID["boom"]]
	if boom.Outcome != "err" || boom.Error == nil || !strings.Contains(boom.Error.Message, `<img src=x onerror=`) || len(boom.Error.Message) > 8200 {
		t.Errorf("boom = %+v, want err with its message (bounded)", boom)
	}
	if sq := d.Nodes[byID["squares"]]; sq.Elements != "4 ok, 0 err, 0 skipped" {
		t.Errorf("squares elements = %q", sq.Elements)
	}
	ans := d.Nodes[byID["answer"]]
	if len(ans.Inputs) != 2 || ans.Inputs[1].Parent != "d" || ans.Output.JSON != "15" {
		t.Errorf("answer = %+v, want inputs from the parents and output 15", ans)
	}
	if len(ans.Producers) != 1 || ans.Producers[0].Run != res.ID || ans.Producers[0].Knot != "answer" {
		t.Errorf("answer producers = %+v, want the first run's record", ans.Producers)
	}
	// Edges: 7 real parent links (param→d, param→answer, d→answer,
	// param→xss, d→boom, boom→recover, numbers→squares).
	if n := strings.Count(out, `<path class="e `); n != 7 {
		t.Errorf("page has %d edges, want 7", n)
	}
}

func TestRunPageBudgets(t *testing.T) {
	ctx := t.Context()
	store, hist := cas.NewMemory(), lineage.NewMemory()
	res := hostileRun(t, store, hist)
	var buf bytes.Buffer
	if err := page.Run(ctx, &buf, page.Config{MaxValues: 2, MaxValueBytes: 16, MaxLookups: 1}, &res.Run, store, hist); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "budget of values is spent") || !strings.Contains(out, "budget of lookups is spent") ||
		!strings.Contains(out, "Some values or lineage are not embedded") {
		t.Errorf("page does not say its budgets ran out")
	}
	if strings.Contains(out, `window.__pwned=1\u003c/script\u003e5`) {
		t.Errorf("the xss value was embedded whole past MaxValueBytes")
	}
	err := page.Run(ctx, &buf, page.Config{MaxNodes: 3}, &res.Run, store, hist)
	if !errors.Is(err, page.ErrTooBig) {
		t.Errorf("Run(MaxNodes: 3) = %v, want ErrTooBig", err)
	}
}

func TestDecode(t *testing.T) {
	ctx := t.Context()
	store := cas.NewMemory()
	put := func(v any) cas.Digest {
		val, err := cas.NewValue(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Put(ctx, val.Digest, val.Bytes); err != nil {
			t.Fatal(err)
		}
		return val.Digest
	}
	big := put(strings.Repeat("é", 3000))
	text, trunc, note := page.Decode(ctx, store, big, 1<<20, 100)
	if !trunc || len(text) > 104 || note != "" || !strings.HasSuffix(text, "…") {
		t.Errorf("Decode(big) = %q, %v, %q; want at most 100 bytes, truncated", text, trunc, note)
	}
	if _, _, note := page.Decode(ctx, store, big, 100, 100); !strings.Contains(note, "too large") {
		t.Errorf("Decode over maxStored: note %q", note)
	}
	if _, _, note := page.Decode(ctx, store, cas.Digest{1}, 100, 100); note != "not in the data store" {
		t.Errorf("Decode(absent): note %q", note)
	}
	garbage := []byte{0xff, 0x00, 0x13}
	gd := cas.Sum(garbage)
	if err := store.Put(ctx, gd, garbage); err != nil {
		t.Fatal(err)
	}
	if text, _, note := page.Decode(ctx, store, gd, 100, 100); text != "" || !strings.HasPrefix(note, "cannot decode") {
		t.Errorf("Decode(malformed) = %q, note %q; want a note saying it cannot be decoded", text, note)
	}
	if text, _, _ := page.Decode(ctx, store, put("a\u202eb\x1bc"), 100, 100); text != `"a\u202eb\u001bc"` {
		t.Errorf("Decode(bidi and escape) = %s, want both as escapes", text)
	}
	b := put([]byte{1, 2})
	if text, _, _ := page.Decode(ctx, store, b, 100, 100); text != `"base64:AQI="` {
		t.Errorf("Decode(bytes) = %s", text)
	}
}
