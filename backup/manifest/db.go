package manifest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/mbaudit/mbaudit/internal/tmpdir"
	"modernc.org/sqlite"
)

// ErrNotSQLite is matched by the error Open returns for a file that is not
// an SQLite database (empty, encrypted or garbage: see Sniff).
var ErrNotSQLite = errors.New("not an SQLite database")

// DB is an open Manifest.db, read-only. Its methods may be called
// concurrently (Scan uses a connection of its own), but not with Close.
type DB struct {
	path   string  // as given to Open
	uri    string  // what SQLite opens
	tmpDir string  // private copy of a database with a WAL or a journal, or ""
	sql    *sql.DB // for everything but the row loop of Scan

	// RolledBack is set when a hot rollback journal lay beside the
	// database: what is read is the private copy, rolled back.
	RolledBack bool
}

// Open opens the Manifest.db at path read-only, without creating anything
// beside it.
//
// A database alone is opened in place as immutable, so SQLite takes no lock
// and creates no -wal or -shm file. If a non-empty PATH-wal lies beside it
// (committed pages that immutable mode would ignore), the database and its
// WAL are copied to a private temporary folder and the copy is opened, so the
// WAL is applied; Close removes the folder. A hot rollback journal (a
// write that never finished) is handled the same way, and the copy is
// rolled back.
//
// A file that is not SQLite gives an error matching ErrNotSQLite; a database
// SQLite finds malformed on opening (a bad header, a truncated file) gives an
// error for which IsCorrupt is true.
func Open(path string) (*DB, error) {
	kind, err := Sniff(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if kind != KindSQLite {
		return nil, fmt.Errorf("opening %s: %w (%s)", path, ErrNotSQLite, kind)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	db := &DB{path: path}
	hot, err := hotJournal(abs + "-journal")
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	wal, err := os.Stat(abs + "-wal")
	switch {
	case hot:
		// A write that never finished: its rollback journal holds the
		// pages as they were. Immutable mode would read the half-written
		// file as it stands; a private copy opened read-write is rolled
		// back by SQLite on the first read, as the writer's next open
		// would have done.
		if db.tmpDir, err = copyWith(abs, "-journal", "-wal"); err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		copied := filepath.Join(db.tmpDir, filepath.Base(abs))
		if err := rollBack(copied); err != nil {
			db.Close()
			return nil, fmt.Errorf("opening %s: rolling back its journal: %w", path, err)
		}
		db.uri = sqliteURI(copied, "mode=ro")
		db.RolledBack = true
	case err == nil && wal.Mode().IsRegular() && wal.Size() > 0:
		if db.tmpDir, err = copyWith(abs, "-wal"); err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		// mode=ro still lets SQLite create the -shm it needs, in tmpDir.
		db.uri = sqliteURI(filepath.Join(db.tmpDir, filepath.Base(abs)), "mode=ro")
	case err == nil && !wal.Mode().IsRegular():
		return nil, fmt.Errorf("opening %s: %s-wal is not a regular file", path, path)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("opening %s: %w", path, err)
	default:
		// Read through the read-ahead VFS (readvfs.go): immutable, the
		// file needs no locks or shared memory, which it does not have.
		// Nor can it open temporary files: the few that a query may want
		// (the IN list of Names) are kept in memory.
		q := "mode=ro&immutable=1"
		if name := readVFS(); name != "" && useReadVFS {
			q += "&vfs=" + name + "&_pragma=temp_store(memory)"
		}
		db.uri = sqliteURI(abs, q)
	}
	if db.sql, err = sql.Open("sqlite", db.uri); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	// Reading the schema makes SQLite check the header now.
	var n int
	if err := db.sql.QueryRow("SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return db, nil
}

// sqliteURI builds a file: URI; the path is escaped, so '?', '#' and '%'
// in folder names are safe.
func sqliteURI(abs, query string) string {
	u := url.URL{Scheme: "file", OmitHost: true, Path: filepath.ToSlash(abs), RawQuery: query}
	return u.String()
}

// rollBack opens a private copy read-write once, which makes SQLite roll
// back its hot journal: every later reader, read-only, sees the database
// as it was before the unfinished write.
func rollBack(path string) error {
	rw, err := sql.Open("sqlite", sqliteURI(path, "mode=rw"))
	if err != nil {
		return err
	}
	defer rw.Close()
	var n int
	return rw.QueryRow("SELECT count(*) FROM sqlite_master").Scan(&n)
}

// journalMagic starts the header of a rollback journal that is still in
// force; a committed journal kept by journal_mode=PERSIST has it zeroed.
var journalMagic = []byte{0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7}

// hotJournal reports whether a rollback journal at path holds a write that
// never finished (a "hot" journal: present, and its header not zeroed).
func hotJournal(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false, err
	}
	head := make([]byte, len(journalMagic))
	if _, err := io.ReadFull(f, head); err != nil {
		return false, nil // too short to be in force
	}
	return bytes.Equal(head, journalMagic), nil
}

// copyWith copies the database at abs, and those of its side files (the
// suffixes) that exist, into a new private folder and returns the folder.
func copyWith(abs string, suffixes ...string) (dir string, err error) {
	dir, err = tmpdir.Private() // mode 0700
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
			dir = ""
		}
	}()
	base := filepath.Base(abs)
	for _, suffix := range append([]string{""}, suffixes...) {
		err := copyTo(abs+suffix, filepath.Join(dir, base+suffix))
		if suffix != "" && errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
	}
	return dir, nil
}

func copyTo(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}

// Close closes the database and removes the private copy, if any.
func (db *DB) Close() error {
	var err error
	if db.sql != nil {
		err = db.sql.Close()
		db.sql = nil
	}
	if db.tmpDir != "" {
		if rmErr := os.RemoveAll(db.tmpDir); err == nil {
			err = rmErr
		}
		db.tmpDir = ""
	}
	return err
}

// Copied reports whether Open worked on a private copy because a WAL lay
// beside the database.
func (db *DB) Copied() bool { return db.tmpDir != "" }

// QuickCheck runs PRAGMA quick_check. ok is true when SQLite reports no
// problem; otherwise problems holds its messages, one a line (at most 100). A database
// too damaged to check is not ok, with SQLite's message as the problem; err
// is for a check that could not run (cancelled, unreadable).
func (db *DB) QuickCheck(ctx context.Context) (ok bool, problems []string, err error) {
	return db.check(ctx, "PRAGMA quick_check")
}

// IntegrityCheck runs PRAGMA integrity_check, which also checks indexes
// against their tables; it is several times slower than QuickCheck. Its
// results are as for QuickCheck.
func (db *DB) IntegrityCheck(ctx context.Context) (ok bool, problems []string, err error) {
	return db.check(ctx, "PRAGMA integrity_check")
}

// maxProblems caps the problems a check returns.
const maxProblems = 100

// smallCache sets the page cache of a connection that reads each page of
// the database about once (a scan, quick_check) to 256 KB.
const smallCache = "PRAGMA cache_size = -256"

func (db *DB) check(ctx context.Context, pragma string) (bool, []string, error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return checkFailed(ctx, err)
	}
	defer conn.Close()
	if pragma == "PRAGMA quick_check" {
		// quick_check walks each b-tree once. integrity_check keeps the
		// default: it also looks every row up in every index.
		if _, err := conn.ExecContext(ctx, smallCache); err != nil {
			return checkFailed(ctx, err)
		}
		defer conn.ExecContext(context.Background(), "PRAGMA cache_size = -2000")
	}
	rows, err := conn.QueryContext(ctx, pragma)
	if err != nil {
		return checkFailed(ctx, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var msg sql.NullString
		if err := rows.Scan(&msg); err != nil {
			return checkFailed(ctx, err)
		}
		// SQLite may put several problems in one row, one a line, after a
		// "*** in database main ***" heading.
		for _, line := range strings.Split(msg.String, "\n") {
			if line != "" && !strings.HasPrefix(line, "*** ") && len(problems) < maxProblems {
				problems = append(problems, line)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return checkFailed(ctx, err)
	}
	if len(problems) == 1 && problems[0] == "ok" {
		return true, nil, nil
	}
	if len(problems) == 0 {
		problems = []string{"the check returned nothing"}
	}
	return false, problems, nil
}

func checkFailed(ctx context.Context, err error) (bool, []string, error) {
	if ctx.Err() == nil && IsCorrupt(err) {
		return false, []string{err.Error()}, nil
	}
	if ctx.Err() != nil {
		return false, nil, ctx.Err()
	}
	return false, nil, err
}

// SQLite primary result codes that mean the file is damaged.
const (
	sqliteCorrupt = 11
	sqliteNotADB  = 26
)

// IsCorrupt reports whether err is SQLite saying the database file is
// malformed or not a database: a finding about the backup rather than a
// failure of the audit.
func IsCorrupt(err error) bool {
	var code int
	var se *sqlite.Error
	var re *sqliteError
	switch {
	case errors.As(err, &se):
		code = se.Code()
	case errors.As(err, &re):
		code = int(re.code)
	default:
		return false
	}
	code &= 0xFF // the primary code of an extended one
	return code == sqliteCorrupt || code == sqliteNotADB
}

// The columns of the Files table that mbaudit reads.
var filesColumns = []string{"fileID", "domain", "relativePath", "flags", "file"}

// SchemaError says what Manifest.db lacks: the Files table, or some of its
// columns.
type SchemaError struct {
	NoFilesTable   bool
	MissingColumns []string
}

// Error says what is missing.
func (e *SchemaError) Error() string {
	if e.NoFilesTable {
		return "Manifest.db has no Files table"
	}
	return "the Files table of Manifest.db lacks column " + strings.Join(e.MissingColumns, ", ")
}

// CheckSchema checks that the Files table exists with the columns fileID,
// domain, relativePath, flags and file. Index names are not checked: they
// differ between iOS versions. A wrong schema gives a *SchemaError; any
// other error means the schema could not be read.
func (db *DB) CheckSchema() error {
	rows, err := db.sql.Query("SELECT name FROM pragma_table_info('Files')")
	if err != nil {
		return fmt.Errorf("reading the schema: %w", err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("reading the schema: %w", err)
		}
		have[strings.ToLower(name)] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the schema: %w", err)
	}
	if len(have) == 0 {
		return &SchemaError{NoFilesTable: true}
	}
	var missing []string
	for _, c := range filesColumns {
		if !have[strings.ToLower(c)] {
			missing = append(missing, c)
		}
	}
	if missing != nil {
		return &SchemaError{MissingColumns: missing}
	}
	return nil
}
