// Package openlineage is the "openlineage" emitter: it sends pirn's runs
// as OpenLineage 2-0-2 RunEvents over HTTP (to Marquez, or any receiver
// of the spec's HTTP transport). A pipeline run is a job named after the
// pipeline; each knot run is a job named "<pipeline>.<knot>" whose
// `parent` run facet points at the pipeline run. Values are datasets
// named by their digest.
package openlineage

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/pirn-wasm/pirn/emit"
)

// The spec's URLs, and pirn's as a producer.
const (
	SchemaURL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"
	// Producer is the producer URI of pirn's events and facets.
	Producer       = "https://github.com/pirn-wasm/pirn"
	parentSchema   = "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet"
	errorSchema    = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
	jobTypeSchema  = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
	knotFacetURL   = "https://github.com/pirn-wasm/pirn/blob/main/docs/emitters.md#the-pirn_knot-facet"
	runFacetURL    = "https://github.com/pirn-wasm/pirn/blob/main/docs/emitters.md#the-pirn_run-facet"
	defaultPath    = "/api/v1/lineage"
	maxOpenRuns    = 1024 // runs whose knots' STARTs the emitter remembers
	maxOpenKnots   = 65536
	defaultTimeout = 10 * time.Second
)

// Event types.
const (
	Start    = "START"
	Complete = "COMPLETE"
	Fail     = "FAIL"
	Abort    = "ABORT"
)

// Config configures an emitter.
type Config struct {
	// URL is the receiver; with no path, the path is /api/v1/lineage.
	URL string
	// Namespace is the jobs' and datasets' namespace; "" means "pirn".
	Namespace string
	// APIKey, if set, is sent as "Authorization: Bearer <key>".
	APIKey string
	// Timeout bounds each POST; 0 means 10s.
	Timeout time.Duration
	// Client, if set, sends the requests (tests); else one that verifies
	// certificates and follows no redirects.
	Client *http.Client
}

// Emitter is the OpenLineage emitter. Emit is called from one goroutine.
type Emitter struct {
	cfg    Config
	url    string
	client *http.Client
	// started holds, per open pipeline run, the knots whose START was
	// sent, so that a knot whose start event was dropped (or that was
	// skipped before it started) still gets one START before its end.
	started map[string]map[string]bool
	order   []string
}

var _ emit.Emitter = (*Emitter)(nil)

// New checks cfg and returns an emitter.
func New(cfg Config) (*Emitter, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("openlineage: url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("openlineage: url %q: want http:// or https:// and a host", cfg.URL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = defaultPath
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("openlineage: timeout %v, want >= 0", cfg.Timeout)
	}
	cfg.Namespace = cmp.Or(cfg.Namespace, "pirn")
	cfg.Timeout = cmp.Or(cfg.Timeout, defaultTimeout)
	client := cfg.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Emitter{cfg: cfg, url: u.String(), client: client, started: map[string]map[string]bool{}}, nil
}

// FromSpec builds the emitter from a serve.yaml entry (type
// openlineage); pirn serve registers it in emit.Emitters.
func FromSpec(s emit.Spec) (emit.Emitter, error) {
	var f struct {
		URL       string        `json:"url"`
		Namespace string        `json:"namespace"`
		APIKeyEnv string        `json:"api_key_env"`
		Timeout   emit.Duration `json:"timeout"`
	}
	if err := s.Decode(&f); err != nil {
		return nil, err
	}
	cfg := Config{URL: f.URL, Namespace: f.Namespace, Timeout: time.Duration(f.Timeout)}
	if f.APIKeyEnv != "" {
		v, ok := os.LookupEnv(f.APIKeyEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("openlineage: api_key_env: the environment variable %s is not set", f.APIKeyEnv)
		}
		cfg.APIKey = v
	}
	return New(cfg)
}

// Name returns "openlineage".
func (e *Emitter) Name() string { return "openlineage" }

// Close closes idle connections.
func (e *Emitter) Close(context.Context) error {
	e.client.CloseIdleConnections()
	return nil
}

// Emit sends the RunEvents of ev: a run's START and its end, a knot's
// START and its end. Lineage records are not sent (the knot's end
// carried the same record).
func (e *Emitter) Emit(ctx context.Context, ev *emit.Event) error {
	var out []*RunEvent
	switch ev.Kind {
	case emit.RunStarted:
		out = append(out, e.runEvent(ev, Start))
	case emit.KnotStatus:
		if ev.Record == nil {
			return nil
		}
		if ev.State == emit.StateRunning {
			if e.markStarted(ev.RunID, ev.Knot) {
				out = append(out, e.knotEvent(ev, Start))
			}
			break
		}
		if e.markStarted(ev.RunID, ev.Knot) {
			out = append(out, e.knotEvent(ev, Start))
		}
		out = append(out, e.knotEvent(ev, endType(ev.State)))
	case emit.RunFinished:
		delete(e.started, ev.RunID)
		out = append(out, e.runEvent(ev, endType(ev.State)))
	}
	for _, re := range out {
		if err := e.send(ctx, re); err != nil {
			return err
		}
	}
	return nil
}

// markStarted notes a knot's START, reporting whether it is new.
func (e *Emitter) markStarted(runID, knot string) bool {
	m := e.started[runID]
	if m == nil {
		m = map[string]bool{}
		e.started[runID] = m
		e.order = append(e.order, runID)
		for len(e.order) > maxOpenRuns {
			delete(e.started, e.order[0])
			e.order = e.order[1:]
		}
	}
	if m[knot] {
		return false
	}
	if len(m) < maxOpenKnots {
		m[knot] = true
	}
	return true
}

// endType maps a knot outcome or run status to an event type: ok and
// succeeded COMPLETE, err and failed FAIL, skipped and cancelled ABORT.
func endType(state string) string {
	switch state {
	case "ok", "succeeded":
		return Complete
	case "skipped", "cancelled":
		return Abort
	}
	return Fail
}

func (e *Emitter) send(ctx context.Context, re *RunEvent) error {
	body, err := json.Marshal(re)
	if err != nil {
		return fmt.Errorf("openlineage: encode: %w", err)
	}
	h := http.Header{}
	if e.cfg.APIKey != "" {
		h.Set("Authorization", "Bearer "+e.cfg.APIKey)
	}
	if err := emit.Post(ctx, e.client, e.url, body, h, e.cfg.Timeout); err != nil {
		return fmt.Errorf("openlineage: %s %s: %w", re.EventType, re.Job.Name, err)
	}
	return nil
}

// RunEvent is an OpenLineage RunEvent, as far as pirn fills it.
type RunEvent struct {
	EventType string    `json:"eventType"`
	EventTime time.Time `json:"eventTime"`
	Producer  string    `json:"producer"`
	SchemaURL string    `json:"schemaURL"`
	Run       Run       `json:"run"`
	Job       Job       `json:"job"`
	Inputs    []Dataset `json:"inputs"`
	Outputs   []Dataset `json:"outputs"`
}

// Run is a RunEvent's run.
type Run struct {
	RunID  string         `json:"runId"`
	Facets map[string]any `json:"facets,omitempty"`
}

// Job is a RunEvent's job.
type Job struct {
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
	Facets    map[string]any `json:"facets,omitempty"`
}

// Dataset is an input or output dataset: a value, named by its digest.
type Dataset struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// facet is the part every facet has.
type facet struct {
	Producer  string `json:"_producer"`
	SchemaURL string `json:"_schemaURL"`
}

// parentFacet is the standard `parent` run facet.
type parentFacet struct {
	facet
	Run struct {
		RunID string `json:"runId"`
	} `json:"run"`
	Job struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"job"`
}

// knotFacet is pirn's custom `pirn_knot` run facet.
type knotFacet struct {
	facet
	RunID      string   `json:"runId"` // pirn's
	Knot       string   `json:"knot"`
	Kind       string   `json:"kind"`
	Module     string   `json:"moduleDigest,omitempty"`
	Function   string   `json:"function,omitempty"`
	ConfigHash string   `json:"configHash,omitempty"`
	Grants     []string `json:"grants"` // [] for a hermetic knot
	Outcome    string   `json:"outcome,omitempty"`
	SkipReason string   `json:"skipReason,omitempty"`
	Map        string   `json:"map,omitempty"`
	Index      *int     `json:"index,omitempty"`
}

// runFacet is pirn's custom `pirn_run` run facet.
type runFacet struct {
	facet
	RunID          string   `json:"runId"` // pirn's
	PipelineDigest string   `json:"pipelineDigest,omitempty"`
	Terminals      []string `json:"terminals,omitempty"`
	Status         string   `json:"status"`
	Knots          int      `json:"knots"`
	Failed         int      `json:"failed"`
	Skipped        int      `json:"skipped"`
}

// errorFacet is the standard `errorMessage` run facet.
type errorFacet struct {
	facet
	Message             string `json:"message"`
	ProgrammingLanguage string `json:"programmingLanguage"`
	StackTrace          string `json:"stackTrace,omitempty"`
}

func (e *Emitter) jobName(ev *emit.Event) string { return cmp.Or(ev.Pipeline, "pirn") }

func (e *Emitter) runEvent(ev *emit.Event, typ string) *RunEvent {
	re := &RunEvent{EventType: typ, EventTime: ev.Time, Producer: Producer, SchemaURL: SchemaURL,
		Run: Run{RunID: RunUUID(ev.RunID, "")}, Inputs: []Dataset{}, Outputs: []Dataset{},
		Job: Job{Namespace: e.cfg.Namespace, Name: e.jobName(ev), Facets: map[string]any{"jobType": jobType("PIPELINE")}}}
	if r := ev.Run; r != nil {
		re.Run.Facets = map[string]any{"pirn_run": runFacet{facet: facet{Producer, runFacetURL}, RunID: ev.RunID,
			PipelineDigest: r.PipelineDigest, Terminals: r.Terminals, Status: r.Status, Knots: r.Knots, Failed: r.Failed, Skipped: r.Skipped}}
		if r.Error != "" {
			re.Run.Facets["errorMessage"] = errorFacet{facet: facet{Producer, errorSchema}, Message: r.Error, ProgrammingLanguage: "Go"}
		}
	}
	return re
}

func jobType(t string) map[string]string {
	return map[string]string{"_producer": Producer, "_schemaURL": jobTypeSchema, "processingType": "BATCH", "integration": "PIRN", "jobType": t}
}

func (e *Emitter) knotEvent(ev *emit.Event, typ string) *RunEvent {
	r := ev.Record
	parent := parentFacet{facet: facet{Producer, parentSchema}}
	parent.Run.RunID = RunUUID(ev.RunID, "")
	parent.Job.Namespace, parent.Job.Name = e.cfg.Namespace, e.jobName(ev)
	kf := knotFacet{facet: facet{Producer, knotFacetURL}, RunID: ev.RunID, Knot: ev.Knot, Kind: r.Kind, Module: r.Module,
		Function: r.Function, ConfigHash: r.ConfigHash, Grants: r.Grants, Map: r.Map}
	if kf.Grants == nil {
		kf.Grants = []string{}
	}
	if r.Map != "" {
		kf.Index = &r.Index
	}
	re := &RunEvent{EventType: typ, EventTime: ev.Time, Producer: Producer, SchemaURL: SchemaURL,
		Run:    Run{RunID: RunUUID(ev.RunID, ev.Knot), Facets: map[string]any{"parent": parent}},
		Job:    Job{Namespace: e.cfg.Namespace, Name: e.jobName(ev) + "." + ev.Knot, Facets: map[string]any{"jobType": jobType("KNOT")}},
		Inputs: []Dataset{}, Outputs: []Dataset{}}
	if typ != Start {
		kf.Outcome, kf.SkipReason = r.Outcome, r.SkipReason
		if ev.Error != nil {
			re.Run.Facets["errorMessage"] = errorFacet{facet: facet{Producer, errorSchema},
				Message: ev.Error.Type + ": " + ev.Error.Message, ProgrammingLanguage: "Wasm", StackTrace: ev.Error.Trace}
		}
	}
	re.Run.Facets["pirn_knot"] = kf
	seen := map[string]bool{}
	for _, in := range r.Inputs {
		if in.Digest != "" && !seen[in.Digest] {
			seen[in.Digest] = true
			re.Inputs = append(re.Inputs, Dataset{Namespace: e.cfg.Namespace, Name: in.Digest})
		}
	}
	if r.Output != "" {
		re.Outputs = append(re.Outputs, Dataset{Namespace: e.cfg.Namespace, Name: r.Output})
	}
	return re
}

// namespaceUUID is the name space of pirn's run ids (RFC 9562 §5.5): a
// random UUID fixed once for pirn; changing it changes every runId.
var namespaceUUID = [16]byte{0x5c, 0x1e, 0x3b, 0x4d, 0x28, 0x0a, 0x4f, 0x63, 0x9b, 0x2e, 0x41, 0x7a, 0x0d, 0x86, 0xc2, 0x19}

// RunUUID returns the OpenLineage runId of pirn's run runID (knot "") or
// of one knot of it: a version-5 UUID (RFC 9562), the first 16 bytes of
// the SHA-1 of namespaceUUID, runID, a zero byte and knot, with the
// version and variant bits set. The same run and knot always get the
// same UUID, so an event sent again describes the same OpenLineage run.
func RunUUID(runID, knot string) string {
	h := sha1.New()
	h.Write(namespaceUUID[:])
	h.Write([]byte(runID))
	if knot != "" {
		h.Write([]byte{0})
		h.Write([]byte(knot))
	}
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
