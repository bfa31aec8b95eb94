package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mbaudit/mbaudit/backup/backuptest"
)

// The exact exit status of each command on real runs (testscript's "!"
// only says "not zero").
func TestExitStatus(t *testing.T) {
	healthy := t.TempDir()
	backuptest.MustWrite(t, healthy, backuptest.Seed(1), backuptest.Files(10))
	broken := t.TempDir()
	backuptest.MustWrite(t, broken, backuptest.Seed(2), backuptest.Files(10), backuptest.MissingBlobs(2))
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"list healthy", []string{"list", healthy}, 0},
		{"list broken is still 0", []string{"list", broken}, 0},
		{"verify healthy", []string{"verify", healthy}, 0},
		{"verify broken", []string{"verify", broken}, 1},
		{"verify deep broken", []string{"verify", "--deep", broken}, 1},
		{"missing root", []string{"list", filepath.Join(healthy, "nope")}, 2},
		{"verify missing root beside a broken one", []string{"verify", broken, filepath.Join(healthy, "nope")}, 2},
		{"root is a file", []string{"verify", file}, 2},
		{"no root on linux", []string{"list"}, 2},
		{"unknown flag", []string{"list", "--bogus", healthy}, 2},
		{"unknown format", []string{"verify", "--format", "yaml", healthy}, 2},
		{"text is table", []string{"list", "--format", "text", healthy}, 0},
		{"unknown sort", []string{"list", "--sort", "color", healthy}, 2},
		{"bad duration", []string{"list", "--busy-window", "5m", healthy}, 2},
		{"unknown command", []string{"frobnicate"}, 2},
		{"version", []string{"--version"}, 0},
		{"help", []string{"verify", "--help"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, testEnv(t), tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
			if code == 2 && !strings.HasPrefix(stderr, "mbaudit: error: ") {
				t.Errorf("stderr %q does not say what went wrong", stderr)
			}
		})
	}
}

// list --format json follows the contract's field names and types.
func TestListJSONContract(t *testing.T) {
	root := t.TempDir()
	backuptest.MustWrite(t, root, backuptest.Seed(3), backuptest.Files(10))
	backuptest.MustWrite(t, root, backuptest.Seed(4), backuptest.Files(10), backuptest.Missing(backuptest.StatusPlist))
	code, out, _ := run(t, testEnv(t), "list", "--format", "json", root)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema_version", "generated_at", "roots", "skipped", "backups", "volumes", "summary"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no %q", k)
		}
	}
	backups := doc["backups"].([]any)
	if len(backups) != 2 {
		t.Fatalf("%d backups", len(backups))
	}
	for _, b := range backups {
		row := b.(map[string]any)
		for _, k := range []string{"path", "id", "udid", "device_name", "product_type", "model", "ios_version",
			"last_backup", "last_attempt", "size_bytes", "apparent_bytes", "file_count", "encrypted", "format", "state", "problems"} {
			if _, ok := row[k]; !ok {
				t.Errorf("backup has no %q", k)
			}
		}
		if _, ok := row["problems"].([]any); !ok {
			t.Errorf("problems is %T, want a list", row["problems"])
		}
	}
	s := doc["summary"].(map[string]any)
	if s["backups"].(float64) != 2 || s["devices"].(float64) != 2 {
		t.Errorf("summary %v", s)
	}
}

// Decorations only on a terminal: colour and ages when stdout is one,
// plain text otherwise, and never colour with NO_COLOR or --no-color.
func TestTableDecorations(t *testing.T) {
	root := t.TempDir()
	backuptest.MustWrite(t, root, backuptest.Seed(5), backuptest.Files(5))
	env := testEnv(t)
	_, plain, _ := run(t, env, "list", root)
	if strings.Contains(plain, "\x1b[") || strings.Contains(plain, " ago") {
		t.Errorf("decorations in a pipe:\n%s", plain)
	}
	env.IsTerminal = func(any) bool { return true }
	_, tty, _ := run(t, env, "list", root)
	if !strings.Contains(tty, "\x1b[32mok") || !strings.Contains(tty, " ago)") {
		t.Errorf("no decorations on a terminal:\n%s", tty)
	}
	_, noColor, _ := run(t, env, "list", "--no-color", root)
	if strings.Contains(noColor, "\x1b[") {
		t.Errorf("colour with --no-color:\n%s", noColor)
	}
	env.Getenv = func(k string) string {
		if k == "NO_COLOR" {
			return "1"
		}
		return ""
	}
	_, envNoColor, _ := run(t, env, "list", root)
	if strings.Contains(envNoColor, "\x1b[") {
		t.Errorf("colour with NO_COLOR:\n%s", envNoColor)
	}
}

// An interrupted run exits 130 and says so; a cancelled verify stops
// between or inside backups without a result on stdout.
func TestInterrupted(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < 3; i++ {
		backuptest.MustWrite(t, root, backuptest.Seed(int64(20+i)), backuptest.Files(300))
	}
	for _, args := range [][]string{{"list", root}, {"verify", root}, {"verify", "--deep", root}} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		env := testEnv(t)
		out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
		env.Stdout, env.Stderr = out, errOut
		code := Main(ctx, append([]string{"mbaudit"}, args...), env)
		if code != 130 || !strings.Contains(errOut.String(), "mbaudit: error: interrupted") || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
