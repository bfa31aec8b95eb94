package cmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// fixedNow is the clock of command tests.
var fixedNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// testEnv is a Linux environment with no terminal and captured output.
func testEnv(t *testing.T) Env {
	t.Helper()
	return Env{
		Stdin:  strings.NewReader(""),
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{},
		Getenv: func(string) string { return "" },
		GOOS:   "linux", Home: t.TempDir(),
		Now:        func() time.Time { return fixedNow },
		IsTerminal: func(any) bool { return false },
	}
}

// run runs mbaudit in env and returns its exit code, stdout and stderr.
func run(t *testing.T, env Env, args ...string) (int, string, string) {
	t.Helper()
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	env.Stdout, env.Stderr = out, errOut
	code := Main(context.Background(), append([]string{"mbaudit"}, args...), env)
	return code, out.String(), errOut.String()
}
