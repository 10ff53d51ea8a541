package main

import (
	"net/url"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn/redact"
)

// redactFlag adds patterns to mask in logs, error records and output.
var redactFlag = &cli.StringSliceFlag{Name: "redact", EnvVars: []string{"PIRN_REDACT"},
	Usage: "a regular expression whose matches (or first group) are masked in logs, error records and events; repeatable. Always masked: the values of environment variables granted to knots, the passwords of --history, --store and NATS URLs, and password=/token=/Authorization: shapes"}

// redactor returns the command's redactor, made once: the --redact
// patterns, the common ones, and the passwords the command line holds.
func redactor(c *cli.Context) (*redact.Redactor, error) {
	if r, ok := c.App.Metadata["redactor"].(*redact.Redactor); ok {
		return r, nil
	}
	r, err := redact.New(redact.Config{Patterns: c.StringSlice("redact")})
	if err != nil {
		return nil, usageErr("--redact: %v", err)
	}
	var secrets []string
	for _, name := range []string{"history", "store", "dispatch", "nats"} {
		if pw := urlPassword(c.String(name)); pw != "" {
			secrets = append(secrets, pw)
		}
	}
	for _, name := range []string{"nats-password", "nats-token"} {
		secrets = append(secrets, c.String(name))
	}
	if err := r.AddSecrets(secrets...); err != nil {
		return nil, usageErr("%v", err)
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata["redactor"] = r
	return r, nil
}

// urlPassword returns the password of a URL's user information, or of
// a "password=" query or key=value parameter.
func urlPassword(s string) string {
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err == nil {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
		if pw := u.Query().Get("password"); pw != "" {
			return pw
		}
	}
	for _, f := range strings.Fields(s) {
		if pw, ok := strings.CutPrefix(f, "password="); ok {
			return pw
		}
	}
	return ""
}
