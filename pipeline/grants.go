package pipeline

import (
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Grants are a node's capabilities (docs/security.md). None makes the
// knot hermetic.
type Grants struct {
	Dirs   []DirGrant
	Env    []string
	Clock  bool
	Random bool
	HTTP   []HTTPGrant
	Line   int
}

// DirGrant is a directory the knot sees.
type DirGrant struct {
	Path  string // as written: relative paths are relative to Spec.Dir
	Mount string // the guest path
	Write bool
}

// HTTPGrant allows requests to one host.
type HTTPGrant struct {
	Host    string
	Methods []string // upper case; none means GET
}

// Empty reports whether g grants nothing.
func (g Grants) Empty() bool {
	return len(g.Dirs) == 0 && len(g.Env) == 0 && !g.Clock && !g.Random && len(g.HTTP) == 0
}

var (
	grantKeys   = []string{"dirs", "env", "clock", "random", "http"}
	dirKeys     = []string{"path", "mount", "write"}
	httpKeys    = []string{"host", "methods"}
	httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
)

// grants parses
//
//	grants:
//	  dirs: [{path: ./data, mount: /data}, {path: ./out, mount: /out, write: true}]
//	  env: [REGION]
//	  clock: true
//	  random: true
//	  http: [api.example.com, {host: "*.example.org", methods: [GET, POST]}]
func (p *parser) grants(v *yaml.Node, what string) Grants {
	g := Grants{Line: v.Line}
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
				if name == "" || strings.ContainsAny(name, "=\x00") {
					p.errorf(val.Line, "%s: env %q is not a variable name", what, name)
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

func (p *parser) dirGrant(v *yaml.Node, what string) DirGrant {
	var d DirGrant
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
	switch {
	case d.Path == "":
		p.errorf(v.Line, "%s: a dir needs a path (on the host)", what)
	case d.Mount == "":
		p.errorf(v.Line, "%s: dir %q needs a mount (the path the knot sees, such as /data)", what, d.Path)
	case !path.IsAbs(d.Mount) || path.Clean(d.Mount) != d.Mount:
		p.errorf(v.Line, "%s: dir %q: mount %q must be a clean absolute path such as /data", what, d.Path, d.Mount)
	}
	return d
}

func (p *parser) httpGrant(v *yaml.Node, what string) HTTPGrant {
	var h HTTPGrant
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
					m = strings.ToUpper(m)
					if !slices.Contains(httpMethods, m) {
						p.errorf(val.Line, "%s: http method %q is not one of %s", what, m, strings.Join(httpMethods, ", "))
					}
					h.Methods = append(h.Methods, m)
				}
			}
		})
	default:
		p.errorf(v.Line, "%s: an http grant is a host or {host, methods}", what)
	}
	host := strings.TrimPrefix(h.Host, "*.")
	if host == "" || strings.ContainsAny(host, "/*?[]@ ") {
		p.errorf(v.Line, "%s: http host %q: want a host name, an IP address or *.domain (no scheme or path)", what, h.Host)
	}
	return h
}
