package main

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/mbaudit/mbaudit/backup/backuptest"
)

var update = flag.Bool("update", false, "rewrite testdata/backups (the samples of make demo)")

const samplesDir = "testdata/backups"

// TestSamples checks that the committed sample backups are exactly what
// backuptest.Samples writes today; with -update it rewrites them.
func TestSamples(t *testing.T) {
	if *update {
		if err := os.RemoveAll(samplesDir); err != nil {
			t.Fatal(err)
		}
		if err := backuptest.Samples(samplesDir); err != nil {
			t.Fatal(err)
		}
	}
	fresh := t.TempDir()
	if err := backuptest.Samples(fresh); err != nil {
		t.Fatal(err)
	}
	want := readTree(t, fresh)
	got := readTree(t, samplesDir)
	for name, data := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s is missing from %s (run make samples)", name, samplesDir)
		case !bytes.Equal(g, data):
			t.Errorf("%s differs from what backuptest writes (run make samples)", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is not a sample any more (run make samples)", name)
		}
	}
	var total int
	for _, data := range got {
		total += len(data)
	}
	if total > 400<<10 {
		t.Errorf("the samples hold %d KB: keep them to a few hundred KB", total>>10)
	}
}

// readTree maps every regular file under dir to its content (git keeps no
// empty folders, so folders are not compared).
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
