package backup

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mbaudit/mbaudit/backup/backuptest"
)

func TestRealBackupList(t *testing.T) {
	dir := backuptest.RealBackup(t)
	before := backuptest.HashTree(t, dir)
	bs, err := List(context.Background(), []Candidate{{Path: dir, Root: dir}}, Options{Now: time.Now(), BusyWindow: DefaultBusyWindow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := bs[0]
	if b.ProductType() != "iPhone9,3" || b.Model() != "iPhone 7" || b.IOSVersion() != "14.3" {
		t.Errorf("device = %s %s %s", b.ProductType(), b.Model(), b.IOSVersion())
	}
	if b.Format != FormatManifestDB || b.State != StateIncomplete {
		t.Errorf("format %s, state %s", b.Format, b.State)
	}
	for _, c := range []Code{ManifestPlistMissing, StatusPlistMissing} {
		if !b.Has(c) {
			t.Errorf("no %s in %v", c, b.Problems())
		}
	}
	if b.Usage.Files != 13 {
		t.Errorf("file count = %d, want 13", b.Usage.Files)
	}
	if after := backuptest.HashTree(t, dir); after != before {
		t.Error("list changed the backup folder")
	}
}

func TestRealBackupVerify(t *testing.T) {
	dir := backuptest.RealBackup(t)
	before := backuptest.HashTree(t, dir)
	for _, deep := range []bool{false, true} {
		b := Inspect(Candidate{Path: dir, Root: dir})
		b.Judge(time.Now(), DefaultBusyWindow)
		c, err := Verify(context.Background(), b, VerifyOptions{Options: Options{Now: time.Now(), BusyWindow: DefaultBusyWindow}, Deep: deep})
		if err != nil {
			t.Fatal(err)
		}
		if c == nil {
			t.Fatal("not verified")
		}
		if c.RowsRead != 3721 || c.FilesListed != 1089 || c.FilesChecked != 1089 {
			t.Errorf("deep=%v: counts %+v", deep, c.Counts)
		}
		want := map[Code]int{FileMissing: 1079, FileSizeMismatch: 9, FileOrphan: 1, ManifestPlistMissing: 1, StatusPlistMissing: 1}
		for _, f := range b.Findings {
			if want[f.Code] != f.Count {
				t.Errorf("deep=%v: %s count %d, want %d", deep, f.Code, f.Count, want[f.Code])
			}
			if len(f.Examples) > MaxExamples {
				t.Errorf("%s has %d examples", f.Code, len(f.Examples))
			}
			delete(want, f.Code)
		}
		if len(want) > 0 {
			t.Errorf("deep=%v: findings missing: %v", deep, want)
		}
		if f := b.Finding(FileSizeMismatch); f != nil && f.Examples[0] == "" {
			t.Error("empty example")
		}
		if b.State != StateIncomplete {
			t.Errorf("state %s", b.State)
		}
	}
	if after := backuptest.HashTree(t, dir); after != before {
		t.Error("verify changed the backup folder")
	}
}

// The shared fixture is read-only, which would hide a write; a writable
// copy shows any -wal or -shm file SQLite would create beside Manifest.db.
func TestRealBackupWritableCopyUnchanged(t *testing.T) {
	src := backuptest.RealBackup(t)
	dir := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	before := backuptest.HashTree(t, dir)
	opt := Options{Now: time.Now(), BusyWindow: DefaultBusyWindow}
	bs, err := List(context.Background(), []Candidate{{Path: dir, Root: dir}}, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), bs[0], VerifyOptions{Options: opt, Deep: true}); err != nil {
		t.Fatal(err)
	}
	if after := backuptest.HashTree(t, dir); after != before {
		t.Error("list or verify wrote inside the backup folder")
	}
	for _, name := range []string{"Manifest.db-wal", "Manifest.db-shm"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s was created", name)
		}
	}
}
