package cmd

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/mbaudit/mbaudit/backup/backuptest"
)

// The exact exit status of usage: a view, 0 whenever it ran.
func TestUsageExitStatus(t *testing.T) {
	root := t.TempDir()
	ok := backuptest.MustWrite(t, root, backuptest.Seed(51), backuptest.Files(20))
	backuptest.MustWrite(t, root, backuptest.Seed(52), backuptest.Files(20), backuptest.MissingBlobs(3))
	for _, tt := range []struct {
		name string
		args []string
		want int
	}{
		{"backup", []string{"usage", ok.Path}, 0},
		{"root with a broken backup", []string{"usage", root}, 0},
		{"by category json", []string{"usage", "--by", "category", "--format", "json", ok.Path}, 0},
		{"top csv", []string{"usage", "--top", "3", "--format", "csv", ok.Path}, 0},
		{"missing path", []string{"usage", filepath.Join(root, "nope")}, 2},
		{"bad --by", []string{"usage", "--by", "colour", ok.Path}, 2},
		{"bad --top", []string{"usage", "--top", "-1", ok.Path}, 2},
		{"unknown flag", []string{"usage", "--bogus", ok.Path}, 2},
		{"bad format", []string{"usage", "--format", "prom", ok.Path}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, testEnv(t), tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
		})
	}
}

// The per-category numbers of a generated backup come out exactly in JSON,
// CSV and the table.
func TestUsageFormats(t *testing.T) {
	gen := backuptest.MustWrite(t, t.TempDir(), backuptest.Seed(53), backuptest.Files(500))
	want := map[string][2]int64{}
	for _, f := range gen.Files {
		k := "other"
		switch {
		case strings.HasPrefix(f.Domain, "AppDomain"):
			k = "app-data"
		case f.Domain == "CameraRollDomain":
			k = "photos"
		}
		if k != "other" {
			w := want[k]
			want[k] = [2]int64{w[0] + 1, w[1] + f.Size}
		}
	}
	code, out, _ := run(t, testEnv(t), "usage", "--by", "category", "--format", "json", gen.Path)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var doc struct {
		By      string `json:"by"`
		Backups []struct {
			ID     string `json:"id"`
			Groups []struct {
				Key   string `json:"key"`
				Files int64  `json:"files"`
				Bytes int64  `json:"bytes"`
			} `json:"groups"`
		} `json:"backups"`
		Devices []any `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.By != "category" || len(doc.Backups) != 1 || doc.Devices == nil {
		t.Fatalf("document: %s", out)
	}
	found := 0
	for _, g := range doc.Backups[0].Groups {
		if w, ok := want[g.Key]; ok {
			found++
			if g.Files != w[0] || g.Bytes != w[1] {
				t.Errorf("json %s: %d files %d bytes, want %v", g.Key, g.Files, g.Bytes, w)
			}
		}
	}
	if found != len(want) {
		t.Errorf("found %d of %d categories", found, len(want))
	}
	_, csv, _ := run(t, testEnv(t), "usage", "--by", "category", "--format", "csv", gen.Path)
	_, table, _ := run(t, testEnv(t), "usage", "--by", "category", gen.Path)
	for k, w := range want {
		if !strings.Contains(csv, ","+k+",") || !strings.Contains(csv, ","+itoa(w[0])+","+itoa(w[1])+",") {
			t.Errorf("csv lacks %s %v:\n%s", k, w, csv)
		}
		if !strings.Contains(table, humanize.IBytes(uint64(w[1]))) {
			t.Errorf("table lacks %s %s:\n%s", k, humanize.IBytes(uint64(w[1])), table)
		}
	}
	if strings.ContainsRune(table, '█') {
		t.Error("bars when stdout is not a terminal")
	}
	env := testEnv(t)
	env.IsTerminal = func(any) bool { return true }
	_, tty, _ := run(t, env, "usage", "--by", "category", gen.Path)
	if !strings.ContainsRune(tty, '█') {
		t.Errorf("no bars on a terminal:\n%s", tty)
	}
}

// Roots give the devices view with would-free figures.
func TestUsageRoots(t *testing.T) {
	root := t.TempDir()
	a := backuptest.MustWrite(t, root, backuptest.Seed(54), backuptest.Files(100))
	backuptest.MustWrite(t, root, backuptest.Seed(54), backuptest.Files(100),
		backuptest.DatedCopy(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), backuptest.HardLinks(a))
	code, out, _ := run(t, testEnv(t), "usage", "--format", "json", root)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var doc struct {
		Devices []struct {
			Backups []struct {
				SizeBytes      int64 `json:"size_bytes"`
				WouldFreeBytes int64 `json:"would_free_bytes"`
			} `json:"backups"`
			ReclaimableBytes *int64 `json:"reclaimable_bytes"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Devices) != 1 || len(doc.Devices[0].Backups) != 2 || doc.Devices[0].ReclaimableBytes == nil {
		t.Fatalf("document: %s", out)
	}
	for _, b := range doc.Devices[0].Backups {
		if b.WouldFreeBytes >= b.SizeBytes {
			t.Errorf("shared blobs counted as freed: %+v", b)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
