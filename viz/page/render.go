package page

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
)

//go:embed page.html
var pageHTML string

// outcomes are the node states the filters offer, in order.
var outcomes = []string{"ok", "err", "skipped", "pending"}

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"csp":      CSP,
	"outcomes": func() []string { return outcomes },
}).Parse(pageHTML))

func render(w io.Writer, p *data) error {
	if err := tmpl.Execute(w, p); err != nil {
		return fmt.Errorf("write page: %w", err)
	}
	return nil
}
