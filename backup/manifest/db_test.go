package manifest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const filesSchema = `CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB);
CREATE INDEX FilesDomainIdx ON Files(domain);
CREATE INDEX FilesRelativePathIdx ON Files(relativePath);
CREATE INDEX FilesFlagsIdx ON Files(flags);
CREATE TABLE Properties (key TEXT PRIMARY KEY, value BLOB);`

// writeDB creates an SQLite database at path with schema, and calls fill
// (if not nil) inside a transaction.
func writeDB(tb testing.TB, path, schema string, fill func(tx *sql.Tx)) {
	tb.Helper()
	db, err := sql.Open("sqlite", sqliteURI(path, ""))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(schema); err != nil {
		tb.Fatal(err)
	}
	if fill != nil {
		tx, err := db.Begin()
		if err != nil {
			tb.Fatal(err)
		}
		fill(tx)
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
}

// fileRow is a realistic Files row for a generated file number i.
func fileRow(i int) (id, domain, path string, flags int64, blob []byte) {
	domain = fmt.Sprintf("AppDomain-com.example.app%d", i%50)
	path = fmt.Sprintf("Library/Caches/com.example/fsCachedData/%08X-%04d", i*2654435761, i)
	sum := sha1.Sum([]byte(domain + "-" + path))
	rec := mbRecord{RelativePath: path, Size: int64(i * 37), Mode: 0o100644, ProtectionClass: 3, Inode: uint64(1e6 + i)}
	flags = 1
	switch i % 10 {
	case 0, 1, 2, 3:
		flags, rec.Mode, rec.Size = 2, 0o40755, 0
	case 4:
		rec.EncryptionKey = key44
	}
	return hex.EncodeToString(sum[:]), domain, path, flags, archive(rec, bpLayout{})
}

func insertFiles(tb testing.TB, tx *sql.Tx, n int) {
	tb.Helper()
	st, err := tx.Prepare("INSERT INTO Files VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	for i := range n {
		id, d, p, f, b := fileRow(i)
		if _, err := st.Exec(id, d, p, f, b); err != nil {
			tb.Fatal(err)
		}
	}
}

// snapshot lists a folder: names, sizes, modes, mtimes and content hashes.
func snapshot(tb testing.TB, dir string) string {
	tb.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

func mustOpen(tb testing.TB, path string) *DB {
	tb.Helper()
	db, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// scanCount scans db and returns the row count by flags.
func scanCount(tb testing.TB, db *DB) map[int64]int {
	tb.Helper()
	counts := map[int64]int{}
	if err := db.Scan(context.Background(), func(r *Row) error {
		counts[r.Flags]++
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return counts
}

func TestScanReal(t *testing.T) {
	src := realManifest(t)
	path := filepath.Join(t.TempDir(), "Manifest.db")
	copyFile(t, src, path)
	db := mustOpen(t, path)
	if db.Copied() {
		t.Error("copied although there is no WAL")
	}
	if err := db.CheckSchema(); err != nil {
		t.Fatal(err)
	}
	ok, problems, err := db.QuickCheck(context.Background())
	if !ok || err != nil {
		t.Fatalf("quick_check: %v %q %v", ok, problems, err)
	}

	want := map[string]realRow{}
	for _, r := range realRows(t) {
		want[r.fileID] = r
	}
	flags := map[int64]int{}
	var rows int
	err = db.Scan(context.Background(), func(r *Row) error {
		rows++
		if err := r.TypeError(); err != nil {
			return err
		}
		flags[r.Flags]++
		w, found := want[string(r.FileID)]
		if !found || w.domain != string(r.Domain) || w.path != string(r.RelativePath) || w.flags != r.Flags || !bytes.Equal(w.file, r.File) {
			return fmt.Errorf("row %s differs from database/sql", r.FileID)
		}
		sum := sha1.Sum([]byte(string(r.Domain) + "-" + string(r.RelativePath)))
		if hex.EncodeToString(sum[:]) != string(r.FileID) {
			return fmt.Errorf("fileID %s is not the SHA-1 of its domain and path", r.FileID)
		}
		var fi FileInfo
		if err := ReadMBFile(r.File, &fi); err != nil {
			return fmt.Errorf("%s: %w", r.FileID, err)
		}
		if !fi.HasSize {
			return fmt.Errorf("%s: no Size", r.FileID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows != 3721 || flags[1] != 1089 || flags[2] != 2618 || flags[4] != 14 {
		t.Fatalf("%d rows, flags %v; want 3721 rows, 1089/2618/14", rows, flags)
	}
}

// TestOpenRealInPlace opens the shared fixture itself (a WAL-mode database)
// and checks that nothing beside it changed or appeared.
func TestOpenRealInPlace(t *testing.T) {
	path := realManifest(t)
	dir := filepath.Dir(path)
	before := snapshot(t, dir)
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CheckSchema(); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := db.QuickCheck(context.Background()); !ok || err != nil {
		t.Fatalf("quick_check %v %v", ok, err)
	}
	if c := scanCount(t, db); c[1] != 1089 {
		t.Fatalf("flags %v", c)
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("the folder changed while open:\n%s\nbecame\n%s", before, after)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("the folder changed:\n%s\nbecame\n%s", before, after)
	}
}

// TestOpenWAL builds a database whose rows are only in its WAL, copies both
// files while the writer is still open, and opens the copy.
// writerDB makes a database that a test writes to as a device would (in
// work/writer) and the path of the backup's copy of it (in work/backup),
// and runs setup on the writer's one connection.
func writerDB(t *testing.T, work string, setup ...string) (w *sql.DB, writer, orig string) {
	t.Helper()
	writer = filepath.Join(work, "writer", "Manifest.db")
	orig = filepath.Join(work, "backup", "Manifest.db")
	for _, d := range []string{filepath.Dir(writer), filepath.Dir(orig)} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w, err := sql.Open("sqlite", sqliteURI(writer, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	w.SetMaxOpenConns(1)
	for _, q := range append([]string{filesSchema}, setup...) {
		if _, err := w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return w, writer, orig
}

func TestOpenWAL(t *testing.T) {
	work := t.TempDir()
	w, writer, orig := writerDB(t, work, "PRAGMA journal_mode=WAL", "PRAGMA wal_autocheckpoint=0")
	tx, err := w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	insertFiles(t, tx, 500)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, writer, orig)
	copyFile(t, writer+"-wal", orig+"-wal")

	// Without its WAL the database has no rows: immutable mode would miss them.
	alone := filepath.Join(work, "alone.db")
	copyFile(t, writer, alone)
	if c := scanCount(t, mustOpen(t, alone)); len(c) != 0 {
		t.Fatalf("the main file alone has rows: %v", c)
	}

	before := snapshot(t, filepath.Dir(orig))
	db, err := Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	if !db.Copied() {
		t.Fatal("not copied although a WAL is present")
	}
	tmp := db.tmpDir
	if fi, err := os.Stat(tmp); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("temp folder %v %v", fi, err)
	}
	if err := db.CheckSchema(); err != nil {
		t.Fatal(err)
	}
	if ok, p, err := db.QuickCheck(context.Background()); !ok || err != nil {
		t.Fatalf("quick_check %v %q %v", ok, p, err)
	}
	if c := scanCount(t, db); c[1]+c[2] != 500 {
		t.Fatalf("saw %v, want 500 rows from the WAL", c)
	}
	if after := snapshot(t, filepath.Dir(orig)); after != before {
		t.Fatalf("the backup folder changed:\n%s\nbecame\n%s", before, after)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temp folder left behind: %v", err)
	}
	if after := snapshot(t, filepath.Dir(orig)); after != before {
		t.Fatal("the backup folder changed after Close")
	}
}

func TestSniffAndOpenBadInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := filepath.Join(dir, "good.db")
	writeDB(t, good, filesSchema, nil)
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	badBody := append(append([]byte{}, goodBytes[:16]...), bytes.Repeat([]byte{0xA5}, 4080)...)
	big := filepath.Join(dir, "big.db")
	writeDB(t, big, filesSchema, func(tx *sql.Tx) { insertFiles(t, tx, 500) })
	bigBytes, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		path     string
		kind     Kind
		sniffErr bool
		corrupt  bool // Open's error is a corrupt database
	}{
		{"sqlite", good, KindSQLite, false, false},
		{"encrypted", write("enc.db", bytes.Repeat([]byte{0x3c}, 4096)), KindEncrypted, false, false},
		{"garbage", write("garbage.db", []byte("hello, world\n")), KindGarbage, false, false},
		{"short sqlite header", write("short.db", []byte("SQLite format")), KindGarbage, false, false},
		{"one block", write("block.db", []byte("0123456789abcdef")), KindEncrypted, false, false},
		{"empty", write("empty.db", nil), KindEmpty, false, false},
		{"sqlite header, garbage body", write("badbody.db", badBody), KindSQLite, false, true},
		{"truncated", write("truncated.db", bigBytes[:len(bigBytes)/2]), KindSQLite, false, true},
		{"directory", dir, KindGarbage, true, false},
		{"missing", filepath.Join(dir, "nope.db"), KindGarbage, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kind, err := Sniff(c.path)
			if (err != nil) != c.sniffErr || (err == nil && kind != c.kind) {
				t.Fatalf("Sniff = %v, %v; want %v (error %v)", kind, err, c.kind, c.sniffErr)
			}
			db, err := Open(c.path)
			if c.kind == KindSQLite && !c.sniffErr && !c.corrupt {
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				return
			}
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if want := !c.sniffErr && c.kind != KindSQLite; errors.Is(err, ErrNotSQLite) != want {
				t.Fatalf("Open: %v; ErrNotSQLite expected: %v", err, want)
			}
			if IsCorrupt(err) != c.corrupt {
				t.Fatalf("Open: %v; IsCorrupt expected: %v", err, c.corrupt)
			}
		})
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err == nil {
		if _, err := Sniff(filepath.Join(dir, "fifo")); !errors.Is(err, ErrNotFile) {
			t.Errorf("fifo: %v", err)
		}
	}
}

func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Backup ?#%20 é")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "Manifest.db")
	writeDB(t, path, filesSchema, func(tx *sql.Tx) { insertFiles(t, tx, 10) })
	before := snapshot(t, dir)
	db := mustOpen(t, path)
	if c := scanCount(t, db); c[1]+c[2] != 10 {
		t.Fatalf("counts %v", c)
	}
	db.Close()
	if snapshot(t, dir) != before {
		t.Fatal("folder changed")
	}
}

func TestCheckSchema(t *testing.T) {
	cases := []struct {
		name    string
		schema  string
		missing []string
		noTable bool
	}{
		{"real", filesSchema, nil, false},
		{"no indexes, other case", "CREATE TABLE files (FILEID TEXT, Domain TEXT, relativepath TEXT, flags INTEGER, file BLOB, extra)", nil, false},
		{"no Files", "CREATE TABLE Properties (key TEXT PRIMARY KEY, value BLOB)", nil, true},
		{"empty database", "", nil, true},
		{"missing columns", "CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT)", []string{"flags", "file"}, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), fmt.Sprintf("m%d.db", i))
			schema := c.schema
			if schema == "" {
				schema = "CREATE TABLE x (a); DROP TABLE x" // a valid, empty database
			}
			writeDB(t, path, schema, nil)
			err := mustOpen(t, path).CheckSchema()
			if c.missing == nil && !c.noTable {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *SchemaError
			if !errors.As(err, &se) || se.NoFilesTable != c.noTable || fmt.Sprint(se.MissingColumns) != fmt.Sprint(c.missing) {
				t.Fatalf("error %#v", err)
			}
			t.Log(err)
		})
	}
}

func TestScanOddTypes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Manifest.db")
	writeDB(t, path, "CREATE TABLE Files (fileID, domain, relativePath, flags, file)", func(tx *sql.Tx) {
		for _, q := range []string{
			"INSERT INTO Files VALUES ('aa', 'D', 'p', 1, x'62706c697374')",
			"INSERT INTO Files VALUES (42, x'00ff', NULL, NULL, 'text, not a blob')",
			"INSERT INTO Files VALUES (NULL, '', '', 2.5, 7)",
			"INSERT INTO Files VALUES ('bb', 'D', 'q', '4', NULL)",
		} {
			if _, err := tx.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	})
	type got struct {
		id, domain, path, file string
		flags                  int64
		null                   bool
		types                  [numColumns]ColumnType
		typeErr                string
	}
	var rows []got
	err := mustOpen(t, path).Scan(context.Background(), func(r *Row) error {
		g := got{string(r.FileID), string(r.Domain), string(r.RelativePath), string(r.File), r.Flags, r.FlagsNull, r.Types, ""}
		if err := r.TypeError(); err != nil {
			g.typeErr = err.Error()
		}
		rows = append(rows, g)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{"aa", "D", "p", "bplist", 1, false, [5]ColumnType{TypeText, TypeText, TypeText, TypeInteger, TypeBlob}, ""},
		{"42", "\x00\xff", "", "text, not a blob", 0, true, [5]ColumnType{TypeInteger, TypeBlob, TypeNull, TypeNull, TypeText},
			"row of unexpected types: fileID is INTEGER, not TEXT, domain is BLOB, not TEXT, relativePath is NULL, not TEXT, flags is NULL, not INTEGER, file is TEXT, not BLOB"},
		{"", "", "", "7", 2, false, [5]ColumnType{TypeNull, TypeText, TypeText, TypeFloat, TypeInteger},
			"row of unexpected types: fileID is NULL, not TEXT, flags is REAL, not INTEGER, file is INTEGER, not BLOB"},
		{"bb", "D", "q", "", 4, false, [5]ColumnType{TypeText, TypeText, TypeText, TypeText, TypeNull},
			"row of unexpected types: flags is TEXT, not INTEGER, file is NULL, not BLOB"},
	}
	if fmt.Sprintf("%+v", rows) != fmt.Sprintf("%+v", want) {
		t.Fatalf("got\n%+v\nwant\n%+v", rows, want)
	}
}

func TestScanStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Manifest.db")
	writeDB(t, path, filesSchema, func(tx *sql.Tx) { insertFiles(t, tx, 3*scanRowsPerCheck) })
	db := mustOpen(t, path)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.Scan(ctx, func(*Row) error { t.Fatal("row"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	n := 0
	err := db.Scan(ctx, func(*Row) error {
		if n++; n == 100 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n > scanRowsPerCheck+100 {
		t.Fatalf("cancelled during: %v after %d rows", err, n)
	}

	stop := errors.New("stop")
	n = 0
	if err := db.Scan(context.Background(), func(*Row) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("fn error: %v after %d rows", err, n)
	}
}

// TestQuickCheckCorrupt overwrites the middle of a table: a scan may still
// return rows, but quick_check must notice.
func TestQuickCheckCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Manifest.db")
	writeDB(t, path, filesSchema, func(tx *sql.Tx) { insertFiles(t, tx, 2000) })
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int(data[16])<<8 | int(data[17])
	for p := len(data) / pageSize / 2; p < len(data)/pageSize/2+3; p++ {
		copy(data[p*pageSize+8:], bytes.Repeat([]byte{0xEE}, 64))
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	db := mustOpen(t, path)
	ok, problems, err := db.QuickCheck(context.Background())
	if ok || err != nil || len(problems) == 0 {
		t.Fatalf("quick_check: %v %q %v", ok, problems, err)
	}
	t.Logf("quick_check: %q", problems[0])
	ok, problems, err = db.IntegrityCheck(context.Background())
	if ok || err != nil || len(problems) == 0 {
		t.Fatalf("integrity_check: %v %q %v", ok, problems, err)
	}
	// A scan returns rows or an error SQLite calls corruption; never a panic.
	if err := db.Scan(context.Background(), func(*Row) error { return nil }); err != nil && !IsCorrupt(err) {
		t.Fatalf("scan: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := db.QuickCheck(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled quick_check: %v", err)
	}
}
