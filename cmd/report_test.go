package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/backup/backuptest"
)

// lowSpace makes every volume look as if it had free bytes left, for the
// length of the test.
func lowSpace(t *testing.T, free int64) {
	t.Helper()
	old := volumesFor
	volumesFor = func(paths []string) []backup.Volume {
		vs := backup.Volumes(paths)
		for i := range vs {
			vs[i].FreeBytes = free
		}
		return vs
	}
	t.Cleanup(func() { volumesFor = old })
}

// troubledRoot holds a stale device, an oversized backup, an incomplete
// dated copy and a healthy device.
func troubledRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	day := 24 * time.Hour
	backuptest.MustWrite(t, root, backuptest.Seed(61), backuptest.Files(5), backuptest.FileSizes(100, 100),
		backuptest.Device("Ben's iPad", "iPad13,1", "17.4.1", "21E236"), backuptest.Date(fixedNow.Add(-30*day)))
	backuptest.MustWrite(t, root, backuptest.Seed(62), backuptest.Files(40), backuptest.FileSizes(100<<10, 100<<10),
		backuptest.Device("Cy's iPhone", "iPhone16,2", "18.1", "22B83"), backuptest.Date(fixedNow.Add(-day)))
	ana := backuptest.MustWrite(t, root, backuptest.Seed(63), backuptest.Files(5), backuptest.FileSizes(100, 100),
		backuptest.Device("Ana's iPhone", "iPhone14,5", "17.5.1", "21F90"), backuptest.Date(fixedNow.Add(-day)))
	backuptest.MustWrite(t, root, backuptest.Seed(64), backuptest.UDID(ana.UDID), backuptest.Files(5), backuptest.FileSizes(100, 100),
		backuptest.Device("Ana's iPhone", "iPhone14,5", "17.5.1", "21F90"), backuptest.Date(fixedNow.Add(-40*day)),
		backuptest.DatedCopy(fixedNow.Add(-40*day)), backuptest.Missing(backuptest.StatusPlist))
	return root
}

func healthyRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	backuptest.MustWrite(t, root, backuptest.Seed(65), backuptest.Files(5), backuptest.Date(fixedNow.Add(-time.Hour)))
	return root
}

// One finding of each kind, in every format, and exit 1.
func TestReportFindings(t *testing.T) {
	lowSpace(t, 1<<20)
	root := troubledRoot(t)
	args := []string{"report", root, "--max-size", "2MiB"}

	code, out, stderr := run(t, testEnv(t), append(args, "--format", "json")...)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	var doc struct {
		OK      bool `json:"ok"`
		Devices []struct {
			DeviceName string `json:"device_name"`
			Findings   []struct{ Code string }
		}
		Findings []struct{ Code string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, d := range doc.Devices {
		for _, f := range d.Findings {
			seen[f.Code] += d.DeviceName + ";"
		}
	}
	for _, f := range doc.Findings {
		seen[f.Code] += "volume;"
	}
	want := map[string]string{
		"backup-stale": "Ben's iPad;", "backup-oversized": "Cy's iPhone;",
		"status-plist-missing": "Ana's iPhone;", "low-free-space": "volume;",
	}
	for c, w := range want {
		if seen[c] != w {
			t.Errorf("%s on %q, want %q (all: %v)", c, seen[c], w, seen)
		}
	}
	if len(seen) != len(want) || doc.OK {
		t.Errorf("findings %v, ok %v", seen, doc.OK)
	}

	for _, format := range []string{"text", "table", "markdown", "prom"} {
		code, out, _ := run(t, testEnv(t), append(args, "--format", format)...)
		if code != 1 {
			t.Errorf("%s: exit %d", format, code)
		}
		for c := range want {
			if format == "prom" {
				c = `code="` + c + `"`
				if strings.Contains(c, "low-free-space") {
					c = "mbaudit_volume_free_bytes"
				}
			}
			if !strings.Contains(out, c) {
				t.Errorf("%s output lacks %s:\n%s", format, c, out)
			}
		}
	}

	// --quiet-ok does not hide problems.
	if code, out, _ := run(t, testEnv(t), append(args, "--quiet-ok")...); code != 1 || out == "" {
		t.Errorf("--quiet-ok with problems: exit %d, output %q", code, out)
	}
}

// On macOS the text says that purgeable space is not counted.
func TestReportPurgeableNote(t *testing.T) {
	lowSpace(t, 1<<20)
	env := testEnv(t)
	env.GOOS = "darwin"
	_, out, _ := run(t, env, "report", healthyRoot(t))
	if !strings.Contains(out, "purgeable") {
		t.Errorf("no purgeable note:\n%s", out)
	}
	_, out, _ = run(t, testEnv(t), "report", healthyRoot(t))
	if strings.Contains(out, "purgeable") {
		t.Errorf("purgeable note on linux:\n%s", out)
	}
}

func TestReportExitStatus(t *testing.T) {
	lowSpace(t, 1<<40)
	healthy, troubled := healthyRoot(t), troubledRoot(t)
	for _, tt := range []struct {
		name string
		args []string
		want int
	}{
		{"healthy", []string{"report", healthy}, 0},
		{"healthy verify", []string{"report", "--verify", healthy}, 0},
		{"stale and incomplete", []string{"report", troubled}, 1},
		{"a stricter stale-after", []string{"report", "--stale-after", "30min", healthy}, 1},
		{"max-size crossed", []string{"report", "--max-size", "1KB", healthy}, 1},
		{"min-free crossed", []string{"report", "--min-free", "2TiB", healthy}, 1},
		{"min-free fine", []string{"report", "--min-free", "1GB", healthy}, 0},
		{"missing root", []string{"report", filepath.Join(healthy, "nope")}, 2},
		{"bad format", []string{"report", "--format", "csv", healthy}, 2},
		{"bad stale-after", []string{"report", "--stale-after", "2m", healthy}, 2},
		{"bad max-size", []string{"report", "--max-size", "lots", healthy}, 2},
		{"deep without verify", []string{"report", "--deep", healthy}, 2},
		{"no root on linux", []string{"report"}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, testEnv(t), tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
		})
	}
}

// A healthy root: exit 0, and with --quiet-ok nothing at all.
func TestReportQuietOK(t *testing.T) {
	lowSpace(t, 1<<40)
	root := healthyRoot(t)
	code, out, stderr := run(t, testEnv(t), "report", "--quiet-ok", root)
	if code != 0 || out != "" || stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, _ = run(t, testEnv(t), "report", root)
	if code != 0 || !strings.HasPrefix(out, "ok ") {
		t.Errorf("exit %d, stdout %q", code, out)
	}
}

// --output writes the prom file whole, through a temporary name, and
// leaves nothing else behind; the file parses as Prometheus text.
func TestReportOutputAtomic(t *testing.T) {
	lowSpace(t, 1<<20)
	root := troubledRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "mbaudit.prom")
	if err := os.WriteFile(out, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := run(t, testEnv(t), "report", "--format", "prom", "--output", out, root)
	if code != 1 || stdout != "" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left in the folder: %v", entries)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(data, []byte("mbaudit_report_success 1\n")) {
		t.Errorf("file not whole:\n%s", data)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(fams["mbaudit_backup_state"].GetMetric()) != 4*len(backup.States) {
		t.Errorf("%d state series", len(fams["mbaudit_backup_state"].GetMetric()))
	}

	// A healthy run with --quiet-ok still refreshes the file, silently.
	lowSpace(t, 1<<40)
	code, stdout, _ = run(t, testEnv(t), "report", "--format", "prom", "--quiet-ok", "--output", out, healthyRoot(t))
	if code != 0 || stdout != "" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	if data, _ := os.ReadFile(out); !bytes.Contains(data, []byte("mbaudit_report_ok 1")) {
		t.Errorf("file not refreshed:\n%s", data)
	}

	// A folder that cannot take the file: an error, and no temporary file.
	code, _, stderr := run(t, testEnv(t), "report", "--output", filepath.Join(dir, "nope", "x.prom"), root)
	if code != 2 || !strings.Contains(stderr, "mbaudit: error: writing") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestWriteFileAtomicCleansUp(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "sub") // a folder: rename over it fails
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(target, []byte("data")); err == nil {
		t.Fatal("no error")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}
