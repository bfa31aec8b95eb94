package cmd

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs moves every flag ahead of the positional arguments of its
// command, because urfave/cli v2 stops reading flags at the first path:
// `mbaudit list ~/Backups --format json` would otherwise ignore the flag.
// Flags written before the command name move after it, so that they reach
// the command. "--" ends the flags as usual.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// Find the command: the first argument that names one.
	// Before the command, a flag's value is skipped using what any command
	// knows of that flag, so `--device list list` finds the second "list".
	anyValue := map[string]bool{}
	for _, c := range app.Commands {
		for n, v := range valueFlags(c) {
			anyValue[n] = anyValue[n] || v
		}
	}
	var cmd *cli.Command
	cmdAt := -1
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			if name := strings.TrimLeft(a, "-"); !strings.Contains(name, "=") && anyValue[name] {
				i++
			}
			continue
		}
		if c := app.Command(a); c != nil {
			cmd, cmdAt = c, i
		}
		break
	}
	if cmd == nil {
		return args
	}
	takesValue := valueFlags(cmd)
	var flags, positional []string
	rest := append(append([]string{}, args[1:cmdAt]...), args[cmdAt+1:]...)
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			positional = append(positional, rest[i+1:]...)
			i = len(rest)
		case len(a) > 1 && strings.HasPrefix(a, "-"):
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
				flags = append(flags, rest[i+1])
				i++
			}
		default:
			positional = append(positional, a)
		}
	}
	out := []string{args[0], args[cmdAt]}
	out = append(out, flags...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

// valueFlags maps each flag name of the command to whether it takes a value.
func valueFlags(c *cli.Command) map[string]bool {
	m := map[string]bool{}
	for _, f := range c.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}
