package backup_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/backup/backuptest"
)

// now is long after every generated backup, so none is busy unless a test
// says so.
var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func opts() backup.Options {
	return backup.Options{Now: now, BusyWindow: backup.DefaultBusyWindow, Jobs: 4}
}

// audit lists then verifies one generated backup.
func audit(t *testing.T, b *backuptest.Backup, deep bool) *backup.Backup {
	t.Helper()
	bs, err := backup.List(context.Background(), []backup.Candidate{{Path: b.Path, Root: filepath.Dir(b.Path)}}, opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Verify(context.Background(), bs[0], backup.VerifyOptions{Options: opts(), Deep: deep}); err != nil {
		t.Fatal(err)
	}
	return bs[0]
}

func codes(b *backup.Backup) string {
	var out []string
	for _, f := range b.Findings {
		out = append(out, string(f.Code))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestFindingCodes builds one backup per defect and checks that verify
// finds exactly that defect, with the count and the state the contract
// gives it.
func TestFindingCodes(t *testing.T) {
	P := backuptest.InfoPlist
	M := backuptest.ManifestPlist
	S := backuptest.StatusPlist
	tests := []struct {
		name  string
		opts  []backuptest.Option
		deep  bool
		codes string // sorted, space-separated
		count map[backup.Code]int
		state backup.State
	}{
		{"healthy", nil, false, "", nil, backup.StateOK},
		{"healthy deep", nil, true, "", nil, backup.StateOK},
		{"healthy legacy deep", []backuptest.Option{backuptest.Legacy()}, true, "", nil, backup.StateOK},
		{"healthy xml", []backuptest.Option{backuptest.XMLPlists()}, false, "", nil, backup.StateOK},
		{"healthy old udid", []backuptest.Option{backuptest.OldUDID()}, false, "", nil, backup.StateOK},
		{"dated copy", []backuptest.Option{backuptest.DatedCopy(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))}, false, "", nil, backup.StateOK},
		{"leftover wal", []backuptest.Option{backuptest.LeftoverWAL()}, false, "", nil, backup.StateOK},

		{"info missing", []backuptest.Option{backuptest.Missing(P)}, false, "info-plist-missing", nil, backup.StateIncomplete},
		{"info empty", []backuptest.Option{backuptest.Empty(P)}, false, "info-plist-missing", nil, backup.StateIncomplete},
		{"info garbage", []backuptest.Option{backuptest.Garbage(P)}, false, "info-plist-invalid", nil, backup.StateCorrupt},
		{"info truncated", []backuptest.Option{backuptest.Truncated(P)}, false, "info-plist-invalid", nil, backup.StateCorrupt},
		{"info wrong type", []backuptest.Option{backuptest.WrongType(P)}, false, "info-plist-invalid", nil, backup.StateCorrupt},
		{"info wrong top", []backuptest.Option{backuptest.WrongTopLevel(P)}, false, "info-plist-invalid", nil, backup.StateCorrupt},
		{"manifest missing", []backuptest.Option{backuptest.Missing(M)}, false, "manifest-plist-missing", nil, backup.StateIncomplete},
		{"manifest empty", []backuptest.Option{backuptest.Empty(M)}, false, "manifest-plist-missing", nil, backup.StateIncomplete},
		{"manifest garbage", []backuptest.Option{backuptest.Garbage(M)}, false, "manifest-plist-invalid", nil, backup.StateCorrupt},
		{"manifest truncated", []backuptest.Option{backuptest.Truncated(M)}, false, "manifest-plist-invalid", nil, backup.StateCorrupt},
		{"manifest wrong type", []backuptest.Option{backuptest.WrongType(M)}, false, "manifest-plist-invalid", nil, backup.StateCorrupt},
		{"manifest wrong top", []backuptest.Option{backuptest.WrongTopLevel(M)}, false, "manifest-plist-invalid", nil, backup.StateCorrupt},
		{"status missing", []backuptest.Option{backuptest.Missing(S)}, false, "status-plist-missing", nil, backup.StateIncomplete},
		{"status empty", []backuptest.Option{backuptest.Empty(S)}, false, "status-plist-missing", nil, backup.StateIncomplete},
		{"status garbage", []backuptest.Option{backuptest.Garbage(S)}, false, "status-plist-invalid", nil, backup.StateCorrupt},
		{"status truncated", []backuptest.Option{backuptest.Truncated(S)}, false, "status-plist-invalid", nil, backup.StateCorrupt},
		{"status wrong type", []backuptest.Option{backuptest.WrongType(S)}, false, "status-plist-invalid", nil, backup.StateCorrupt},
		{"status wrong top", []backuptest.Option{backuptest.WrongTopLevel(S)}, false, "status-plist-invalid", nil, backup.StateCorrupt},
		{"snapshot state unknown", []backuptest.Option{backuptest.SnapshotState("bogus")}, false, "status-plist-invalid", nil, backup.StateCorrupt},
		{"snapshot uploading", []backuptest.Option{backuptest.SnapshotState("uploading")}, false, "snapshot-unfinished", nil, backup.StateIncomplete},
		{"backup state old", []backuptest.Option{backuptest.BackupState("old")}, false, "backup-state-not-new", nil, backup.StateIncomplete},
		{"backup state empty", []backuptest.Option{backuptest.BackupState("empty")}, false, "backup-state-not-new", nil, backup.StateIncomplete},
		{"snapshot dir", []backuptest.Option{backuptest.SnapshotDir(3)}, false, "snapshot-dir-present", nil, backup.StateIncomplete},

		{"no index", []backuptest.Option{backuptest.NoIndex()}, false, "manifest-db-missing", nil, backup.StateIncomplete},
		{"garbage index", []backuptest.Option{backuptest.GarbageIndex()}, false, "manifest-db-invalid", nil, backup.StateCorrupt},
		{"index is a folder", []backuptest.Option{backuptest.IndexIsDir()}, false, "manifest-db-invalid", nil, backup.StateCorrupt},
		{"no Files table", []backuptest.Option{backuptest.NoFilesTable()}, false, "manifest-db-invalid", nil, backup.StateCorrupt},
		{"missing column", []backuptest.Option{backuptest.MissingColumn("flags")}, false, "manifest-db-invalid", nil, backup.StateCorrupt},
		{"corrupt pages", []backuptest.Option{backuptest.CorruptIndexPages()}, false, "manifest-db-invalid", nil, backup.StateCorrupt},
		{"garbage mbdb", []backuptest.Option{backuptest.GarbageMbdb()}, false, "manifest-mbdb-invalid", nil, backup.StateCorrupt},
		{"truncated mbdb", []backuptest.Option{backuptest.TruncatedMbdb()}, false, "manifest-mbdb-invalid", nil, backup.StateCorrupt},

		{"encrypted", []backuptest.Option{backuptest.Encrypted()}, false, "manifest-encrypted", nil, backup.StateOK},
		{"keybag missing", []backuptest.Option{backuptest.KeybagMissing()}, false, "keybag-missing manifest-encrypted", nil, backup.StateCorrupt},
		{"manifest key missing", []backuptest.Option{backuptest.ManifestKeyMissing()}, false, "keybag-missing manifest-encrypted", nil, backup.StateCorrupt},
		{"flag mismatch", []backuptest.Option{backuptest.EncryptionFlagMismatch()}, false, "encryption-flag-mismatch", nil, backup.StateOK},
		{"encrypted bad padding", []backuptest.Option{backuptest.Encrypted(), backuptest.BadPadding(2)}, false,
			"file-padding-invalid manifest-encrypted", map[backup.Code]int{backup.FilePaddingInvalid: 2}, backup.StateCorrupt},
		{"legacy encrypted bad padding", []backuptest.Option{backuptest.Legacy(), backuptest.Encrypted(), backuptest.BadPadding(2)}, false,
			"file-padding-invalid", map[backup.Code]int{backup.FilePaddingInvalid: 2}, backup.StateCorrupt},
		{"legacy encrypted size mismatch", []backuptest.Option{backuptest.Legacy(), backuptest.Encrypted(), backuptest.SizeMismatch(2)}, false,
			"file-size-mismatch", map[backup.Code]int{backup.FileSizeMismatch: 2}, backup.StateOK},

		{"undecodable record", []backuptest.Option{backuptest.InvalidRecords(backuptest.RecordUndecodable)}, false, "record-invalid", nil, backup.StateCorrupt},
		{"unknown flags", []backuptest.Option{backuptest.InvalidRecords(backuptest.RecordUnknownFlags)}, false, "record-invalid", nil, backup.StateCorrupt},
		{"folder with size", []backuptest.Option{backuptest.InvalidRecords(backuptest.RecordDirWithSize)}, false, "record-invalid", nil, backup.StateCorrupt},
		{"link without target", []backuptest.Option{backuptest.InvalidRecords(backuptest.RecordSymlinkNoTarget)}, false, "record-invalid", nil, backup.StateCorrupt},
		{"all record kinds", []backuptest.Option{backuptest.InvalidRecords(backuptest.RecordUndecodable, backuptest.RecordUnknownFlags,
			backuptest.RecordDirWithSize, backuptest.RecordSymlinkNoTarget)}, false, "record-invalid", map[backup.Code]int{backup.RecordInvalid: 4}, backup.StateCorrupt},
		{"invalid file ids", []backuptest.Option{backuptest.InvalidFileIDs(4)}, false, "file-id-invalid", map[backup.Code]int{backup.FileIDInvalid: 4}, backup.StateCorrupt},
		{"file id mismatch", []backuptest.Option{backuptest.FileIDMismatch(2)}, false, "file-id-mismatch", map[backup.Code]int{backup.FileIDMismatch: 2}, backup.StateOK},
		{"missing blobs", []backuptest.Option{backuptest.MissingBlobs(3)}, false, "file-missing", map[backup.Code]int{backup.FileMissing: 3}, backup.StateIncomplete},
		{"legacy missing blobs", []backuptest.Option{backuptest.Legacy(), backuptest.MissingBlobs(3)}, false, "file-missing", map[backup.Code]int{backup.FileMissing: 3}, backup.StateIncomplete},
		{"size mismatch", []backuptest.Option{backuptest.SizeMismatch(2)}, false, "file-size-mismatch", map[backup.Code]int{backup.FileSizeMismatch: 2}, backup.StateOK},
		{"missing size", []backuptest.Option{backuptest.MissingSize(3)}, false, "", nil, backup.StateOK},
		{"orphans", []backuptest.Option{backuptest.Orphans(2)}, false, "file-orphan", map[backup.Code]int{backup.FileOrphan: 2}, backup.StateOK},
		{"legacy orphans", []backuptest.Option{backuptest.Legacy(), backuptest.Orphans(2)}, false, "file-orphan", map[backup.Code]int{backup.FileOrphan: 2}, backup.StateOK},
		{"digest mismatch", []backuptest.Option{backuptest.DigestMismatch(2)}, true, "file-digest-mismatch", map[backup.Code]int{backup.FileDigestMismatch: 2}, backup.StateCorrupt},
		{"digest not read without deep", []backuptest.Option{backuptest.DigestMismatch(2)}, false, "", nil, backup.StateOK},
		{"udid mismatch", []backuptest.Option{backuptest.UDIDMismatch()}, false, "udid-mismatch", nil, backup.StateOK},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := backuptest.MustWrite(t, t.TempDir(), append([]backuptest.Option{backuptest.Seed(int64(i + 1)), backuptest.Files(40)}, tt.opts...)...)
			got := audit(t, b, tt.deep)
			if c := codes(got); c != tt.codes {
				t.Fatalf("codes = %q, want %q\n%+v", c, tt.codes, got.Findings)
			}
			for code, n := range tt.count {
				if f := got.Finding(code); f.Count != n {
					t.Errorf("%s count = %d, want %d", code, f.Count, n)
				}
			}
			for _, f := range got.Findings {
				if f.Severity != f.Code.Severity() || f.Message == "" || len(f.Examples) > backup.MaxExamples {
					t.Errorf("malformed finding %+v", f)
				}
			}
			if got.State != tt.state {
				t.Errorf("state = %s, want %s", got.State, tt.state)
			}
		})
	}
}

// The examples of per-file findings name the files as domain/relativePath,
// exactly the ones the generator broke.
func TestFindingExamplesNameFiles(t *testing.T) {
	b := backuptest.MustWrite(t, t.TempDir(), backuptest.Seed(3), backuptest.Files(60), backuptest.MissingBlobs(3), backuptest.SizeMismatch(2))
	got := audit(t, b, false)
	check := func(code backup.Code, files []backuptest.File) {
		t.Helper()
		want := map[string]bool{}
		for _, f := range files {
			want[f.Domain+"/"+f.RelativePath] = true
		}
		f := got.Finding(code)
		if f == nil || len(f.Examples) != len(files) {
			t.Fatalf("%s = %+v, want examples %v", code, f, want)
		}
		for _, e := range f.Examples {
			if !want[e] {
				t.Errorf("%s example %q is not one of %v", code, e, want)
			}
		}
	}
	check(backup.FileMissing, b.Missing)
	check(backup.FileSizeMismatch, b.SizeMismatch)
}

// A missing blob shows in the counts: every listed file is checked, and
// the file rows are counted apart from folders and links.
func TestVerifyCounts(t *testing.T) {
	b := backuptest.MustWrite(t, t.TempDir(), backuptest.Seed(9), backuptest.Files(50), backuptest.MissingBlobs(1))
	got := audit(t, b, true)
	c := got.Check
	if c == nil || c.RowsRead != int64(b.Rows) || c.FilesListed != int64(len(b.Files)) || c.FilesChecked != int64(len(b.Files)) {
		t.Fatalf("counts %+v, want rows %d files %d", c, b.Rows, len(b.Files))
	}
	var bytes int64
	for _, f := range b.Files {
		bytes += f.Size
	}
	if c.BytesListed != bytes {
		t.Errorf("bytes listed %d, want %d", c.BytesListed, bytes)
	}
}

// Busy backups are left alone; an unfinished backup becomes busy only
// while it changes.
func TestBusy(t *testing.T) {
	recent := now.Add(-2 * time.Minute)
	for _, tt := range []struct {
		name  string
		opts  []backuptest.Option
		state backup.State
	}{
		{"uploading, written just now", []backuptest.Option{backuptest.SnapshotState("uploading"), backuptest.ModTime(recent)}, backup.StateBusy},
		{"snapshot folder, written just now", []backuptest.Option{backuptest.SnapshotDir(2), backuptest.ModTime(recent)}, backup.StateBusy},
		{"finished, copied just now", []backuptest.Option{backuptest.ModTime(recent)}, backup.StateOK},
		{"uploading long ago", []backuptest.Option{backuptest.SnapshotState("uploading")}, backup.StateIncomplete},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := backuptest.MustWrite(t, t.TempDir(), append([]backuptest.Option{backuptest.Files(10)}, tt.opts...)...)
			got := audit(t, b, false)
			if got.State != tt.state {
				t.Errorf("state = %s, want %s (%s)", got.State, tt.state, codes(got))
			}
			if tt.state == backup.StateBusy && got.Check != nil {
				t.Error("a busy backup was verified")
			}
		})
	}
}

// Reading what cannot be read (here a link loop, which fails as an I/O
// error would, even for root) makes the backup unreadable.
func TestUnreadable(t *testing.T) {
	for _, name := range []string{"Info.plist", "Manifest.db", "3f"} {
		t.Run(name, func(t *testing.T) {
			b := backuptest.MustWrite(t, t.TempDir(), backuptest.Seed(4), backuptest.Files(20))
			p := filepath.Join(b.Path, name)
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(p, p); err != nil {
				t.Fatal(err)
			}
			got := audit(t, b, false)
			if got.State != backup.StateUnreadable || !got.Has(backup.BackupUnreadable) {
				t.Errorf("state = %s, codes %s", got.State, codes(got))
			}
		})
	}
}

// Verify never writes inside a backup, even one with a WAL beside its
// index.
func TestVerifyWritesNothing(t *testing.T) {
	for _, o := range [][]backuptest.Option{nil, {backuptest.LeftoverWAL()}, {backuptest.Legacy()}, {backuptest.Encrypted()}} {
		b := backuptest.MustWrite(t, t.TempDir(), append([]backuptest.Option{backuptest.Files(30)}, o...)...)
		before := backuptest.HashTree(t, b.Path)
		audit(t, b, true)
		if after := backuptest.HashTree(t, b.Path); after != before {
			t.Errorf("%v: the backup changed", o)
		}
	}
}

// failingReader returns some bytes, then an I/O error, as a bad sector does.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		k := min(len(p), r.n)
		r.n -= k
		return k, nil
	}
	return 0, syscall.EIO
}
func (r *failingReader) Close() error { return nil }

// A blob that cannot be read to its end is file-unreadable under --deep.
func TestDeepUnreadableBlob(t *testing.T) {
	b := backuptest.MustWrite(t, t.TempDir(), backuptest.Seed(5), backuptest.Files(30))
	bad := map[string]bool{}
	for _, f := range b.Files[:2] {
		bad[f.FileID] = true
	}
	bs, err := backup.List(context.Background(), []backup.Candidate{{Path: b.Path}}, opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	vo := backup.VerifyOptions{Options: opts(), Deep: true}
	backup.SetOpenBlob(&vo, func(p string) (io.ReadCloser, error) {
		if bad[filepath.Base(p)] {
			return &failingReader{n: 3}, nil
		}
		return os.Open(p)
	})
	if _, err := backup.Verify(context.Background(), bs[0], vo); err != nil {
		t.Fatal(err)
	}
	got := bs[0]
	if f := got.Finding(backup.FileUnreadable); f == nil || f.Count != 2 || got.State != backup.StateUnreadable {
		t.Fatalf("state %s, findings %+v", got.State, got.Findings)
	}
}

// list alone (plists, index header, folders) already reports what it can
// see without reading index rows, with the state the contract gives.
func TestListFindings(t *testing.T) {
	P, M, S := backuptest.InfoPlist, backuptest.ManifestPlist, backuptest.StatusPlist
	tests := []struct {
		name  string
		opts  []backuptest.Option
		codes string
		state backup.State
	}{
		{"healthy", nil, "", backup.StateOK},
		{"info missing", []backuptest.Option{backuptest.Missing(P)}, "info-plist-missing", backup.StateIncomplete},
		{"info garbage", []backuptest.Option{backuptest.Garbage(P)}, "info-plist-invalid", backup.StateCorrupt},
		{"manifest empty", []backuptest.Option{backuptest.Empty(M)}, "manifest-plist-missing", backup.StateIncomplete},
		{"manifest wrong type", []backuptest.Option{backuptest.WrongType(M)}, "manifest-plist-invalid", backup.StateCorrupt},
		{"status missing", []backuptest.Option{backuptest.Missing(S)}, "status-plist-missing", backup.StateIncomplete},
		{"status truncated", []backuptest.Option{backuptest.Truncated(S)}, "status-plist-invalid", backup.StateCorrupt},
		{"snapshot uploading", []backuptest.Option{backuptest.SnapshotState("moving")}, "snapshot-unfinished", backup.StateIncomplete},
		{"backup state old", []backuptest.Option{backuptest.BackupState("old")}, "backup-state-not-new", backup.StateIncomplete},
		{"snapshot dir", []backuptest.Option{backuptest.SnapshotDir(2)}, "snapshot-dir-present", backup.StateIncomplete},
		{"no index", []backuptest.Option{backuptest.NoIndex()}, "manifest-db-missing", backup.StateIncomplete},
		{"garbage index", []backuptest.Option{backuptest.GarbageIndex()}, "manifest-db-invalid", backup.StateCorrupt},
		{"index is a folder", []backuptest.Option{backuptest.IndexIsDir()}, "manifest-db-invalid", backup.StateCorrupt},
		{"garbage mbdb", []backuptest.Option{backuptest.GarbageMbdb()}, "", backup.StateOK}, // the header is intact: only verify sees it
		{"encrypted", []backuptest.Option{backuptest.Encrypted()}, "manifest-encrypted", backup.StateOK},
		{"keybag missing", []backuptest.Option{backuptest.KeybagMissing()}, "keybag-missing manifest-encrypted", backup.StateCorrupt},
		{"flag mismatch", []backuptest.Option{backuptest.EncryptionFlagMismatch()}, "encryption-flag-mismatch", backup.StateOK},
		{"udid mismatch", []backuptest.Option{backuptest.UDIDMismatch()}, "udid-mismatch", backup.StateOK},
		{"missing blobs are not list's to see", []backuptest.Option{backuptest.MissingBlobs(2)}, "", backup.StateOK},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := backuptest.MustWrite(t, t.TempDir(), append([]backuptest.Option{backuptest.Seed(int64(100 + i)), backuptest.Files(20)}, tt.opts...)...)
			bs, err := backup.List(context.Background(), []backup.Candidate{{Path: b.Path}}, opts(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if c := codes(bs[0]); c != tt.codes || bs[0].State != tt.state {
				t.Errorf("codes %q state %s, want %q %s", c, bs[0].State, tt.codes, tt.state)
			}
			if bs[0].Check != nil {
				t.Error("list verified")
			}
		})
	}
}
