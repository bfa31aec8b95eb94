package manifest

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestReadaheadFile reads a file the way vfs does (Seek, then io.ReadFull)
// in sweeps forward and backward, at random and past the end, and checks
// every byte and every short read against the file itself.
func TestReadaheadFile(t *testing.T) {
	const size = 3<<20 + 1000 // not a whole number of pages
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := readaheadFS{}.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := f.(*readaheadFile)
	read := func(off int64, n int) {
		t.Helper()
		p := make([]byte, n)
		for i := range p {
			p[i] = 0xAA
		}
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadFull(r, p)
		want := max(0, min(int64(n), size-off))
		if int64(got) != want {
			t.Fatalf("read %d at %d: %d bytes, want %d (%v)", n, off, got, want, err)
		}
		if (err != nil) != (want < int64(n)) {
			t.Fatalf("read %d at %d: error %v", n, off, err)
		}
		if got > 0 && !bytes.Equal(p[:got], data[off:off+int64(got)]) {
			t.Fatalf("read %d at %d: wrong bytes", n, off)
		}
	}
	const page = 4096
	for off := int64(0); off < size; off += page {
		read(off, page)
	}
	for off := int64(size/page) * page; off >= 0; off -= page {
		read(off, page)
	}
	for off := int64(0); off < size; off += 3 * page { // sparse forward
		read(off, page)
	}
	for off := int64(size - 64<<10); off >= 0; off -= 5 * page { // sparse backward
		read(off, 64<<10)
	}
	for i := 0; i < 2000; i++ { // random, some past the end
		read(rng.Int64N(size+page), 1+rng.IntN(2*page))
	}
	for _, n := range []int{1, page, maxReadahead, maxReadahead + 1, 2 * maxReadahead} {
		read(size-int64(n)/2, n) // straddling the end
		read(0, n)
		read(page, n)
	}
}

// TestReadVFSSameRows checks that the read-ahead VFS and SQLite's own give
// the same rows and the same quick_check.
func TestReadVFSSameRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Manifest.db")
	writeDB(t, path, filesSchema, func(tx *sql.Tx) { insertFiles(t, tx, 5000) })
	type row struct {
		id, domain, path string
		flags            int64
		file             []byte
	}
	scan := func(vfs bool) []row {
		defer func(old bool) { useReadVFS = old }(useReadVFS)
		useReadVFS = vfs
		db := mustOpen(t, path)
		if ok, problems, err := db.QuickCheck(context.Background()); !ok || err != nil {
			t.Fatalf("quick_check: %v %v", problems, err)
		}
		var rows []row
		err := db.Scan(context.Background(), func(r *Row) error {
			rows = append(rows, row{string(r.FileID), string(r.Domain), string(r.RelativePath), r.Flags, slices.Clone(r.File)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	own, sqlites := scan(true), scan(false)
	if len(own) != 5000 || !slices.EqualFunc(own, sqlites, func(a, b row) bool {
		return a.id == b.id && a.domain == b.domain && a.path == b.path && a.flags == b.flags && bytes.Equal(a.file, b.file)
	}) {
		t.Fatalf("%d rows through the read-ahead VFS, %d through SQLite's, or they differ", len(own), len(sqlites))
	}
}

// TestReadVFSTemp runs a sort larger than the page cache: SQLite would spill
// it to a temporary file, which the read-ahead VFS cannot open (a "disk I/O
// error"); Open keeps temporary data in memory instead.
func TestReadVFSTemp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Manifest.db")
	writeDB(t, path, filesSchema, func(tx *sql.Tx) { insertFiles(t, tx, 30000) })
	db := mustOpen(t, path)
	conn, err := db.sql.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "PRAGMA cache_size = 10"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(context.Background(), "SELECT count(*) FROM (SELECT file FROM Files ORDER BY file)").Scan(&n); err != nil || n != 30000 {
		t.Fatalf("sorted %d rows: %v", n, err)
	}
}
