package manifest

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenHotJournal: a writer that died in the middle of a transaction
// leaves the database half written and a hot rollback journal beside it.
// Open reads the rolled-back state from a private copy, and writes nothing
// beside the backup's files.
func TestOpenHotJournal(t *testing.T) {
	work := t.TempDir()
	w, writer, orig := writerDB(t, work, "PRAGMA journal_mode=DELETE")
	tx, err := w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	insertFiles(t, tx, 300)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// A tiny page cache makes SQLite spill changed pages into the database
	// file before the commit; the copy taken then is what a crash leaves.
	if _, err := w.Exec("PRAGMA cache_size=2"); err != nil {
		t.Fatal(err)
	}
	tx, err = w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("DELETE FROM Files"); err != nil {
		t.Fatal(err)
	}
	insertFiles(t, tx, 2000)
	copyFile(t, writer, orig)
	copyFile(t, writer+"-journal", orig+"-journal")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if hot, err := hotJournal(orig + "-journal"); !hot || err != nil {
		t.Fatalf("the journal is not hot: %v", err)
	}

	// The file alone is the half-written state: reading it as it stands
	// (immutable, journal ignored) would not give the committed rows.
	alone := filepath.Join(work, "alone.db")
	copyFile(t, orig, alone)
	if a, err := Open(alone); err == nil {
		ok, _, _ := a.QuickCheck(context.Background())
		var n int
		_ = a.sql.QueryRow("SELECT count(*) FROM Files").Scan(&n)
		a.Close()
		if ok && n == 300 {
			t.Fatal("the test did not leave a half-written database")
		}
	}

	before := snapshot(t, filepath.Dir(orig))
	db, err := Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !db.Copied() || !db.RolledBack {
		t.Fatal("not read from a rolled-back copy")
	}
	if ok, p, err := db.IntegrityCheck(context.Background()); !ok || err != nil {
		t.Fatalf("integrity_check %v %q %v", ok, p, err)
	}
	if c := scanCount(t, db); c[1]+c[2] != 300 {
		t.Fatalf("saw %v, want the 300 committed rows", c)
	}
	tmp := db.tmpDir
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("the private copy is still there: %v", err)
	}
	if after := snapshot(t, filepath.Dir(orig)); after != before {
		t.Fatalf("the backup folder changed:\n%s\nbecame\n%s", before, after)
	}
}

// A journal whose header was zeroed (journal_mode=PERSIST after a commit)
// or that is empty is not in force: the database is opened in place.
func TestOpenColdJournal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "Manifest.db")
	w, err := sql.Open("sqlite", sqliteURI(path, ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(filesSchema); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for name, data := range map[string][]byte{"zeroed": make([]byte, 512), "empty": nil} {
		if err := os.WriteFile(path+"-journal", data, 0o644); err != nil {
			t.Fatal(err)
		}
		db := mustOpen(t, path)
		if db.Copied() || db.RolledBack {
			t.Errorf("%s journal: copied", name)
		}
		db.Close()
	}
}
