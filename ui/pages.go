package ui

import (
	"bytes"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pirn-wasm/pirn/cas"
	"github.com/pirn-wasm/pirn/lineage"
	"github.com/pirn-wasm/pirn/lineage/rundiff"
	"github.com/pirn-wasm/pirn/viz/page"
)

//go:embed pages.html
var pagesHTML string

var tmpl = template.Must(template.New("ui").Funcs(template.FuncMap{
	"csp":   page.CSP,
	"vis":   page.Visible,
	"path":  url.PathEscape,
	"stamp": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"short": short,
	"statuses": func() []lineage.Status {
		return []lineage.Status{lineage.Succeeded, lineage.Failed, lineage.Cancelled, lineage.Running, lineage.Interrupted}
	},
}).Parse(pagesHTML))

func short(s string) string {
	if len(s) > 23 {
		return s[:23] + "…"
	}
	return s
}

// view is what every page's template sees: the nonce, a title, and the
// page's own data.
type view struct {
	Nonce string
	Title string
	Data  any
}

// render writes a template into a buffer first, so that a failure is a
// clean error page rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	nonce := page.NewNonce()
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, name, view{Nonce: nonce, Title: title, Data: data}); err != nil {
		s.cfg.Logger.Warn("ui: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Security-Policy", page.CSP(nonce))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", http.StatusText(status), msg)
}

// runsPage is the runs list.
type runsPage struct {
	Pipeline, Status, Label, Q string
	Runs                       []lineage.Summary
	Truncated                  bool
	Max                        int
}

func (s *Server) runs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := runsPage{Pipeline: q.Get("pipeline"), Status: q.Get("status"), Label: q.Get("label"), Q: q.Get("q"), Max: s.cfg.MaxRuns}
	query := lineage.Query{Pipeline: p.Pipeline, Limit: s.cfg.MaxRuns}
	if p.Label != "" {
		l, err := lineage.ParseLabel(p.Label)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, "label: "+err.Error())
			return
		}
		query.Label = l
	}
	runs, err := s.hist.Runs(r.Context(), query)
	if err != nil {
		s.cfg.Logger.Warn("ui: list runs", "err", err)
		s.fail(w, r, http.StatusInternalServerError, "cannot list runs")
		return
	}
	p.Truncated = len(runs) >= s.cfg.MaxRuns
	needle := strings.ToLower(p.Q)
	for _, run := range runs {
		if p.Status != "" && string(run.Status) != p.Status {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(run.ID), needle) && !strings.Contains(strings.ToLower(run.Pipeline), needle) {
			continue
		}
		p.Runs = append(p.Runs, run)
	}
	s.render(w, r, http.StatusOK, "runs", "runs", p)
}

func (s *Server) loadRun(w http.ResponseWriter, r *http.Request, id string) *lineage.Run {
	run, err := s.hist.Run(r.Context(), id)
	if errors.Is(err, lineage.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "no run "+page.Visible(id))
		return nil
	}
	if err != nil {
		s.cfg.Logger.Warn("ui: read run", "run", id, "err", err)
		s.fail(w, r, http.StatusInternalServerError, "cannot read run "+page.Visible(id))
		return nil
	}
	return run
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	run := s.loadRun(w, r, r.PathValue("id"))
	if run == nil {
		return
	}
	cfg := s.cfg.Page
	cfg.Links, cfg.Nonce = true, page.NewNonce()
	var buf bytes.Buffer
	if err := page.Run(r.Context(), &buf, cfg, run, s.store, s.hist); err != nil {
		if errors.Is(err, page.ErrTooBig) {
			s.fail(w, r, http.StatusUnprocessableEntity, err.Error())
			return
		}
		s.cfg.Logger.Warn("ui: run page", "run", run.ID, "err", err)
		s.fail(w, r, http.StatusInternalServerError, "cannot draw the run")
		return
	}
	w.Header().Set("Content-Security-Policy", page.CSP(cfg.Nonce))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

type valuePage struct {
	Digest    string
	JSON      string
	Truncated bool
	Note      string
}

func (s *Server) value(w http.ResponseWriter, r *http.Request) {
	d, err := cas.ParseDigest(r.PathValue("digest"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "not a digest: "+err.Error())
		return
	}
	max := s.cfg.Page.MaxStoredBytes
	if max == 0 {
		max = 1 << 20
	}
	p := valuePage{Digest: d.String()}
	p.JSON, p.Truncated, p.Note = page.Decode(r.Context(), s.store, d, max, s.cfg.MaxValueBytes)
	s.render(w, r, http.StatusOK, "value", "value "+short(p.Digest), p)
}

type lineagePage struct {
	By, Arg   string // "output", "input" or "knot"
	Records   []lineage.Record
	Total     int
	Truncated bool
}

func (s *Server) lineage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var p lineagePage
	set := 0
	for _, by := range []string{"output", "input", "knot"} {
		if v := q.Get(by); v != "" {
			p.By, p.Arg = by, v
			set++
		}
	}
	if set > 1 {
		s.fail(w, r, http.StatusBadRequest, "give one of output, input or knot")
		return
	}
	var recs []lineage.Record
	var err error
	switch p.By {
	case "":
		s.render(w, r, http.StatusOK, "lineage", "lineage", p)
		return
	case "knot":
		recs, err = s.hist.ByKnot(r.Context(), p.Arg)
	default:
		d, perr := cas.ParseDigest(p.Arg)
		if perr != nil {
			s.fail(w, r, http.StatusBadRequest, p.By+": not a digest: "+perr.Error())
			return
		}
		if p.By == "output" {
			recs, err = s.hist.ByOutput(r.Context(), d)
		} else {
			recs, err = s.hist.ByInput(r.Context(), d)
		}
	}
	if err != nil {
		s.cfg.Logger.Warn("ui: lineage", "by", p.By, "err", err)
		s.fail(w, r, http.StatusInternalServerError, "lineage query failed")
		return
	}
	p.Total = len(recs)
	if len(recs) > s.cfg.MaxRecords {
		recs, p.Truncated = recs[:s.cfg.MaxRecords], true
	}
	p.Records = recs
	s.render(w, r, http.StatusOK, "lineage", "lineage", p)
}

type diffPage struct {
	A, B string
	Diff *rundiff.Diff
}

func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := diffPage{A: q.Get("a"), B: q.Get("b")}
	if p.A == "" || p.B == "" {
		s.render(w, r, http.StatusOK, "diff", "diff", p)
		return
	}
	a := s.loadRun(w, r, p.A)
	if a == nil {
		return
	}
	b := s.loadRun(w, r, p.B)
	if b == nil {
		return
	}
	d, err := rundiff.Runs(r.Context(), s.cfg.Diff, s.store, a, b)
	if err != nil {
		s.fail(w, r, http.StatusServiceUnavailable, "diff interrupted")
		return
	}
	p.Diff = d
	s.render(w, r, http.StatusOK, "diff", "diff", p)
}
