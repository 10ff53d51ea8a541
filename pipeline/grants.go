package pipeline

import (
	"strings"

	"github.com/pirn-wasm/pirn/model"
	"go.yaml.in/yaml/v3"
)

var (
	grantKeys = []string{"dirs", "env", "clock", "random", "http"}
	dirKeys   = []string{"path", "mount", "write"}
	httpKeys  = []string{"host", "methods"}
)

// grants parses
//
//	grants:
//	  dirs: [{path: ./data, mount: /data}, {path: ./out, mount: /out, write: true}]
//	  env: [REGION]
//	  clock: true
//	  random: true
//	  http: [api.example.com, {host: "*.example.org", methods: [GET, POST]}]
func (p *parser) grants(v *yaml.Node, what string) model.Grants {
	var g model.Grants
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "%s: grants must be a mapping (keys: %s)", what, strings.Join(grantKeys, ", "))
		return g
	}
	what += ": grants"
	p.fields(v, what, grantKeys, func(key string, val *yaml.Node) {
		switch key {
		case "dirs":
			if val.Kind != yaml.SequenceNode {
				p.errorf(val.Line, "%s: dirs must be a list of {path, mount, write}", what)
				return
			}
			mounts := map[string]int{}
			for _, item := range val.Content {
				d := p.dirGrant(item, what)
				if d.Mount != "" {
					if first, dup := mounts[d.Mount]; dup {
						p.errorf(item.Line, "%s: mount %q is granted twice (first at line %d)", what, d.Mount, first)
					}
					mounts[d.Mount] = item.Line
				}
				g.Dirs = append(g.Dirs, d)
			}
		case "env":
			for _, name := range p.strings(val, what+": env") {
				if err := model.ValidateEnvName(name); err != nil {
					p.errorf(val.Line, "%s: %v", what, err)
				}
				g.Env = append(g.Env, name)
			}
		case "clock":
			g.Clock = p.boolean(val, what+": clock")
		case "random":
			g.Random = p.boolean(val, what+": random")
		case "http":
			if val.Kind != yaml.SequenceNode {
				p.errorf(val.Line, "%s: http must be a list of hosts or {host, methods}", what)
				return
			}
			for _, item := range val.Content {
				g.HTTP = append(g.HTTP, p.httpGrant(item, what))
			}
		}
	})
	return g
}

func (p *parser) dirGrant(v *yaml.Node, what string) model.DirGrant {
	var d model.DirGrant
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "%s: a dir is a mapping {path, mount, write}", what)
		return d
	}
	p.fields(v, what+": dir", dirKeys, func(key string, val *yaml.Node) {
		switch key {
		case "path":
			d.Path = p.str(val, "path")
		case "mount":
			d.Mount = p.str(val, "mount")
		case "write":
			d.Write = p.boolean(val, what+": write")
		}
	})
	p.errorEach(v.Line, what, d.Validate())
	return d
}

func (p *parser) httpGrant(v *yaml.Node, what string) model.HTTPGrant {
	var h model.HTTPGrant
	switch v.Kind {
	case yaml.ScalarNode:
		h.Host = v.Value
	case yaml.MappingNode:
		p.fields(v, what+": http", httpKeys, func(key string, val *yaml.Node) {
			switch key {
			case "host":
				h.Host = p.str(val, "host")
			case "methods":
				for _, m := range p.strings(val, what+": http methods") {
					h.Methods = append(h.Methods, strings.ToUpper(m))
				}
			}
		})
	default:
		p.errorf(v.Line, "%s: an http grant is a host or {host, methods}", what)
	}
	p.errorEach(v.Line, what, h.Validate())
	return h
}

// errorEach reports each error of err (one, or joined) at line.
func (p *parser) errorEach(line int, what string, err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		p.errorf(line, "%s: %v", what, e)
	}
}
