package openlineage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/pirn-wasm/pirn"
	"github.com/pirn-wasm/pirn/emit"
	"github.com/pirn-wasm/pirn/emit/openlineage"
	"github.com/pirn-wasm/pirn/lineage"
)

// schema compiles testdata/runevent.schema.json, asserting formats.
func schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/runevent.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("runevent.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("runevent.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// marquez is a lineage receiver: it keeps each event and checks it
// against the schema.
type marquez struct {
	t      *testing.T
	schema *jsonschema.Schema
	mu     sync.Mutex
	events []openlineage.RunEvent
	raw    []string
	bad    []string
	auth   []string
}

func (m *marquez) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.auth = append(m.auth, r.Header.Get("Authorization"))
	if err != nil || r.URL.Path != "/api/v1/lineage" || r.Method != http.MethodPost {
		m.bad = append(m.bad, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err == nil {
		err = m.schema.Validate(inst)
	}
	if err != nil {
		m.bad = append(m.bad, err.Error()+"\n"+string(body))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev openlineage.RunEvent
	json.Unmarshal(body, &ev)
	m.events = append(m.events, ev)
	m.raw = append(m.raw, string(body))
	w.WriteHeader(http.StatusCreated)
}

var shared struct {
	once sync.Once
	e    *pirn.Engine
	p    *pirn.Pipeline
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.e != nil {
		shared.e.Close(context.Background())
	}
	os.Exit(code)
}

// TestRunEvents runs the quickstart pipeline with the emitter (made from
// a serve.yaml entry) sending to a receiver in the test: every event
// passes the schema; the run has a START first and a COMPLETE last; each
// knot a START then a COMPLETE, with a parent facet naming the run, its
// inputs and output as datasets named by digest, and the pirn_knot facet.
func TestRunEvents(t *testing.T) {
	m := &marquez{t: t, schema: schema(t)}
	srv := httptest.NewServer(m)
	defer srv.Close()
	t.Setenv("PIRN_TEST_OL_KEY", "k3y")
	em, err := openlineage.FromSpec(emit.Spec{Type: "openlineage", Fields: map[string]any{
		"url": srv.URL, "namespace": "pirn-test", "api_key_env": "PIRN_TEST_OL_KEY", "timeout": "5s"}})
	if err != nil {
		t.Fatal(err)
	}
	shared.once.Do(func() {
		ctx := context.Background()
		shared.e, shared.err = pirn.Open(ctx, pirn.Config{CacheDir: "-", AllowUnpinned: true})
		if shared.err == nil {
			shared.p, shared.err = shared.e.LoadPipeline(ctx, "../../examples/quickstart/pipeline.yaml")
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	hub, err := emit.NewHub(emit.HubConfig{Emitters: []emit.HubEmitter{{Emitter: em, Policy: emit.Fail}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := shared.e.Run(t.Context(), shared.p.Tapestry, pirn.RunRequest{Pipeline: "quickstart", Observer: hub})
	if err != nil || res.Status != lineage.Succeeded {
		t.Fatalf("Run = %v, %v", res, err)
	}
	if err := hub.Wait(t.Context(), res.ID); err != nil {
		t.Fatal(err)
	}
	if err := hub.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.bad) > 0 {
		t.Fatalf("events the schema refuses:\n%s", strings.Join(m.bad, "\n"))
	}
	if want := 2 + 2*len(res.Records); len(m.events) != want {
		t.Fatalf("%d events, want %d", len(m.events), want)
	}
	for _, a := range m.auth {
		if a != "Bearer k3y" {
			t.Errorf("Authorization %q", a)
		}
	}
	runID := openlineage.RunUUID(res.ID, "")
	first, last := m.events[0], m.events[len(m.events)-1]
	if first.EventType != "START" || last.EventType != "COMPLETE" || first.Run.RunID != runID || last.Run.RunID != runID ||
		first.Job.Name != "quickstart" || first.Job.Namespace != "pirn-test" {
		t.Errorf("run events: %s %+v … %s %+v", first.EventType, first.Job, last.EventType, last.Run)
	}
	byKnot := map[string][]int{}
	for i, ev := range m.events[1 : len(m.events)-1] {
		name := strings.TrimPrefix(ev.Job.Name, "quickstart.")
		byKnot[name] = append(byKnot[name], i+1)
	}
	for _, r := range res.Records {
		idx := byKnot[r.KnotID]
		if len(idx) != 2 {
			t.Errorf("knot %s: %d events, want START and COMPLETE", r.KnotID, len(idx))
			continue
		}
		start, end := m.events[idx[0]], m.events[idx[1]]
		if start.EventType != "START" || end.EventType != "COMPLETE" || start.Run.RunID != end.Run.RunID || start.Run.RunID != openlineage.RunUUID(res.ID, r.KnotID) {
			t.Errorf("knot %s: %s %s then %s %s", r.KnotID, start.EventType, start.Run.RunID, end.EventType, end.Run.RunID)
		}
		var facets struct {
			Run struct {
				Facets struct {
					Parent struct {
						Run struct{ RunID string } `json:"run"`
						Job struct{ Name string }  `json:"job"`
					} `json:"parent"`
					Knot struct {
						ModuleDigest string   `json:"moduleDigest"`
						Grants       []string `json:"grants"`
						Outcome      string   `json:"outcome"`
					} `json:"pirn_knot"`
				} `json:"facets"`
			} `json:"run"`
		}
		json.Unmarshal([]byte(m.raw[idx[1]]), &facets)
		f := facets.Run.Facets
		if f.Parent.Run.RunID != runID || f.Parent.Job.Name != "quickstart" || f.Knot.ModuleDigest != r.Module || f.Knot.Outcome != "ok" {
			t.Errorf("knot %s: facets %+v", r.KnotID, f)
		}
		if len(end.Outputs) != 1 || end.Outputs[0].Name != r.Output.String() {
			t.Errorf("knot %s: outputs %+v, want %s", r.KnotID, end.Outputs, r.Output)
		}
		if len(end.Inputs) != len(r.Inputs) && len(r.Inputs) > 0 {
			t.Errorf("knot %s: inputs %+v, want %v", r.KnotID, end.Inputs, r.Inputs)
		}
	}
}

// TestEndTypes: err is FAIL with an errorMessage facet, skipped and
// cancelled are ABORT, a knot whose start was never seen still gets a
// START first; every event passes the schema.
func TestEndTypes(t *testing.T) {
	m := &marquez{t: t, schema: schema(t)}
	srv := httptest.NewServer(m)
	defer srv.Close()
	em, err := openlineage.New(openlineage.Config{URL: srv.URL + "/api/v1/lineage"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rec := func(outcome, skip string) *emit.Record {
		return &emit.Record{Knot: "k", Kind: "knot", Outcome: outcome, SkipReason: skip, Started: t0, Finished: t0.Add(time.Second)}
	}
	for _, ev := range []emit.Event{
		{Kind: emit.RunStarted, RunID: "r1", Time: t0, Pipeline: "p", Run: &emit.Run{Status: "running", Started: t0}},
		{Kind: emit.KnotStatus, RunID: "r1", Time: t0, Pipeline: "p", Knot: "bad", State: "err", Record: rec("err", ""),
			Error: &emit.Error{Type: "Trap", Message: "unreachable", Trace: "wasm backtrace"}},
		{Kind: emit.KnotStatus, RunID: "r1", Time: t0, Pipeline: "p", Knot: "gate", State: "skipped", Record: rec("skipped", "gate closed")},
		{Kind: emit.RunFinished, RunID: "r1", Time: t0, Pipeline: "p", State: "cancelled", Run: &emit.Run{Status: "cancelled", Error: "context canceled"}},
	} {
		if err := em.Emit(t.Context(), &ev); err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.bad) > 0 {
		t.Fatalf("events the schema refuses:\n%s", strings.Join(m.bad, "\n"))
	}
	var types []string
	for _, ev := range m.events {
		types = append(types, ev.EventType+" "+ev.Job.Name)
	}
	want := "START p,START p.bad,FAIL p.bad,START p.gate,ABORT p.gate,ABORT p"
	if got := strings.Join(types, ","); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	if !strings.Contains(m.raw[2], `"errorMessage"`) || !strings.Contains(m.raw[2], "Trap: unreachable") || !strings.Contains(m.raw[5], "context canceled") {
		t.Errorf("no errorMessage facet: %s / %s", m.raw[2], m.raw[5])
	}
}

// TestSchemaRefuses checks that the schema is not vacuous: events
// missing a required field or with a bad runId are refused.
func TestSchemaRefuses(t *testing.T) {
	s := schema(t)
	good := `{"eventType":"START","eventTime":"2026-12-01T10:00:00Z","producer":"https://x","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent","run":{"runId":"5c1e3b4d-280a-4f63-9b2e-417a0d86c219"},"job":{"namespace":"pirn","name":"p"}}`
	for _, tc := range []struct{ name, from, to string }{
		{"good", "", ""},
		{"runId not a UUID", `"5c1e3b4d-280a-4f63-9b2e-417a0d86c219"`, `"run-1"`},
		{"no job name", `,"name":"p"`, ``},
		{"bad event type", `"START"`, `"BEGIN"`},
		{"bad time", `"2026-12-01T10:00:00Z"`, `"yesterday"`},
		{"facet without _producer", `"run":{`, `"run":{"facets":{"x":{"_schemaURL":"https://y"}},`},
	} {
		doc := strings.Replace(good, tc.from, tc.to, 1)
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		err = s.Validate(inst)
		if (err == nil) != (tc.name == "good") {
			t.Errorf("%s: Validate = %v", tc.name, err)
		}
	}
}

func TestRunUUID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b, c := openlineage.RunUUID("run-1", ""), openlineage.RunUUID("run-1", "k"), openlineage.RunUUID("run-1", "")
	if !uuid.MatchString(a) || !uuid.MatchString(b) || a == b || a != c {
		t.Errorf("RunUUID: %s, %s, %s", a, b, c)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields map[string]any
		inErr  string
	}{
		{"no url", map[string]any{}, "url"},
		{"file url", map[string]any{"url": "file:///tmp/lineage"}, "http"},
		{"unknown field", map[string]any{"url": "https://x", "transport": "kafka"}, "transport"},
		{"unset key variable", map[string]any{"url": "https://x", "api_key_env": "PIRN_TEST_NO_SUCH_VAR"}, "PIRN_TEST_NO_SUCH_VAR"},
	} {
		_, err := openlineage.FromSpec(emit.Spec{Type: "openlineage", Fields: tc.fields})
		if err == nil || !strings.Contains(err.Error(), tc.inErr) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.inErr)
		}
	}
}
