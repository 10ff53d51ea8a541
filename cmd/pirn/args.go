package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves a command's flags ahead of its positional arguments,
// so that `pirn run pipeline.yaml -p x=7` works: urfave/cli v2 stops
// parsing flags at the first positional argument. Global flags given after
// the command (`pirn run --log-level info ...`) move before it.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// Global flags come before the command.
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		out = append(out, args[i])
		if takesValue(app.Flags, args[i]) && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		}
		i++
	}
	if i >= len(args) {
		return out
	}
	cmd := find(app.Commands, args[i])
	if cmd == nil {
		return append(out, args[i:]...)
	}
	name := args[i]
	i++
	var subName string
	if i < len(args) {
		if sub := find(cmd.Subcommands, args[i]); sub != nil {
			subName = args[i]
			i++
			cmd = sub
		}
	}
	var globals, flags, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && len(a) > 1 && !hasFlag(cmd.Flags, a) && hasFlag(app.Flags, a):
			globals = append(globals, a)
			if takesValue(app.Flags, a) && i+1 < len(args) {
				globals = append(globals, args[i+1])
				i++
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			positional = append(positional, a)
		}
	}
	out = append(append(out, globals...), name)
	if subName != "" {
		out = append(out, subName)
	}
	out = append(out, flags...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

func find(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// hasFlag reports whether arg (e.g. "--log-level" or "--log-level=info")
// names one of flags.
func hasFlag(flags []cli.Flag, arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// takesValue reports whether arg (e.g. "-p" or "--state") names a flag
// that takes a separate value.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
