package manifest

import (
	"context"
	"fmt"
	"strings"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// The row loop of Scan steps an SQLite statement through modernc.org/sqlite's
// C-level API (modernc.org/sqlite/lib) and hands out the column bytes where
// SQLite holds them. Through database/sql the driver copies and boxes every
// value; see performance.md and BenchmarkScan for the difference.

// ColumnType is the storage class SQLite reports for a value.
type ColumnType uint8

// The SQLite storage classes.
const (
	TypeNull ColumnType = iota
	TypeInteger
	TypeFloat
	TypeText
	TypeBlob
)

// String returns the SQL name of the storage class.
func (t ColumnType) String() string {
	switch t {
	case TypeInteger:
		return "INTEGER"
	case TypeFloat:
		return "REAL"
	case TypeText:
		return "TEXT"
	case TypeBlob:
		return "BLOB"
	}
	return "NULL"
}

// Indexes into Row.Types.
const (
	ColFileID = iota
	ColDomain
	ColRelativePath
	ColFlags
	ColFile
	numColumns
)

// expectedTypes are the storage classes of a well-formed row.
var expectedTypes = [numColumns]ColumnType{TypeText, TypeText, TypeText, TypeInteger, TypeBlob}

// Row is one row of the Files table as Scan hands it to its callback.
//
// The byte slices point into SQLite's memory: they are valid only until the
// callback returns and must not be modified. Copy what must outlive the call.
// A value of an unexpected type does not stop the scan: Types says what each
// column held (NULL gives a nil slice; a number in a text column gives its
// text form), and TypeError turns a mismatch into an error.
type Row struct {
	FileID       []byte
	Domain       []byte
	RelativePath []byte
	Flags        int64 // 0 when NULL; SQLite's conversion when not an integer
	FlagsNull    bool
	File         []byte // the MBFile archive: see ReadMBFile

	// Types holds the storage class of each column, indexed by ColFileID,
	// ColDomain, ColRelativePath, ColFlags and ColFile.
	Types [numColumns]ColumnType
}

// TypeError returns nil when fileID, domain and relativePath are TEXT, flags
// is an INTEGER and file is a BLOB, and otherwise an error naming the
// columns that are not. It does not allocate when the types are right.
func (r *Row) TypeError() error {
	if r.Types == expectedTypes {
		return nil
	}
	var b strings.Builder
	for i, t := range r.Types {
		if t != expectedTypes[i] {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s is %s, not %s", filesColumns[i], t, expectedTypes[i])
		}
	}
	return fmt.Errorf("row of unexpected types: %s", b.String())
}

// scanRowsPerCheck is how many rows Scan steps between looks at its context.
const scanRowsPerCheck = 4096

// Scan calls fn for every row of the Files table, in table order (not sorted
// by fileID: a plain table scan is several times faster; sort in Go where
// order matters). fn is handed the same *Row each time, valid only during
// the call. An error from fn stops the scan and is returned as is; so is the
// context's error when ctx is done. Scan uses a connection of its own and
// may run beside QuickCheck.
func (db *DB) Scan(ctx context.Context, fn func(*Row) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := openRawConn(db.uri)
	if err != nil {
		return fmt.Errorf("scanning %s: %w", db.path, err)
	}
	defer c.close()
	// A table scan reads each page once: a small page cache serves it as
	// well as SQLite's default of 2 MB, and keeps the process smaller.
	if err := c.exec(smallCache); err != nil {
		return fmt.Errorf("scanning %s: %w", db.path, err)
	}
	stmt, err := c.prepare("SELECT fileID, domain, relativePath, flags, file FROM Files")
	if err != nil {
		return fmt.Errorf("scanning %s: %w", db.path, err)
	}
	defer sqlite3.Xsqlite3_finalize(c.tls, stmt)

	var row Row
	for n := 1; ; n++ {
		if n%scanRowsPerCheck == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		switch rc := sqlite3.Xsqlite3_step(c.tls, stmt); rc {
		case sqlite3.SQLITE_ROW:
		case sqlite3.SQLITE_DONE:
			return nil
		default:
			return fmt.Errorf("scanning %s: %w", db.path, c.err(rc))
		}
		c.readRow(stmt, &row)
		if err := fn(&row); err != nil {
			return err
		}
	}
}

// rawConn is a connection opened through the C-level API.
type rawConn struct {
	tls *libc.TLS
	db  uintptr
}

// sqliteError is an error from the C-level API.
type sqliteError struct {
	code int32 // extended result code
	msg  string
}

func (e *sqliteError) Error() string { return fmt.Sprintf("%s (%d)", e.msg, e.code) }

const ptrSize = int(unsafe.Sizeof(uintptr(0)))

func openRawConn(uri string) (*rawConn, error) {
	c := &rawConn{tls: libc.NewTLS()}
	if err := c.open(uri); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *rawConn) open(uri string) error {
	zName, err := libc.CString(uri)
	if err != nil {
		return err
	}
	defer libc.Xfree(c.tls, zName)
	pDB := c.tls.Alloc(ptrSize)
	defer c.tls.Free(ptrSize)
	rc := sqlite3.Xsqlite3_open_v2(c.tls, zName, pDB,
		sqlite3.SQLITE_OPEN_READONLY|sqlite3.SQLITE_OPEN_URI|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	// SQLite may return a handle even on failure; it holds the message.
	c.db = *(*uintptr)(cPointer(pDB))
	if rc != sqlite3.SQLITE_OK {
		return c.err(rc)
	}
	return nil
}

func (c *rawConn) close() {
	if c.db != 0 {
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
		c.db = 0
	}
	if c.tls != nil {
		c.tls.Close()
		c.tls = nil
	}
}

func (c *rawConn) prepare(query string) (uintptr, error) {
	zSQL, err := libc.CString(query)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, zSQL)
	pStmt := c.tls.Alloc(ptrSize)
	defer c.tls.Free(ptrSize)
	if rc := sqlite3.Xsqlite3_prepare_v2(c.tls, c.db, zSQL, -1, pStmt, 0); rc != sqlite3.SQLITE_OK {
		return 0, c.err(rc)
	}
	return *(*uintptr)(cPointer(pStmt)), nil
}

// exec runs one statement that returns no rows.
func (c *rawConn) exec(query string) error {
	stmt, err := c.prepare(query)
	if err != nil {
		return err
	}
	defer sqlite3.Xsqlite3_finalize(c.tls, stmt)
	if rc := sqlite3.Xsqlite3_step(c.tls, stmt); rc != sqlite3.SQLITE_DONE && rc != sqlite3.SQLITE_ROW {
		return c.err(rc)
	}
	return nil
}

// err describes result code rc with the connection's message.
func (c *rawConn) err(rc int32) error {
	e := &sqliteError{code: rc}
	if c.db != 0 {
		e.code = sqlite3.Xsqlite3_extended_errcode(c.tls, c.db)
		e.msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	}
	if e.msg == "" {
		e.msg = libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	}
	return e
}

// readRow fills row from the current row of stmt without copying.
func (c *rawConn) readRow(stmt uintptr, row *Row) {
	// Types first: reading a value as text or blob may convert it.
	for i := range row.Types {
		row.Types[i] = columnType(sqlite3.Xsqlite3_column_type(c.tls, stmt, int32(i)))
	}
	row.FileID = c.bytes(stmt, ColFileID, row.Types[ColFileID])
	row.Domain = c.bytes(stmt, ColDomain, row.Types[ColDomain])
	row.RelativePath = c.bytes(stmt, ColRelativePath, row.Types[ColRelativePath])
	row.FlagsNull = row.Types[ColFlags] == TypeNull
	row.Flags = sqlite3.Xsqlite3_column_int64(c.tls, stmt, ColFlags)
	row.File = c.bytes(stmt, ColFile, row.Types[ColFile])
}

func columnType(t int32) ColumnType {
	switch t {
	case sqlite3.SQLITE_INTEGER:
		return TypeInteger
	case sqlite3.SQLITE_FLOAT:
		return TypeFloat
	case sqlite3.SQLITE_TEXT:
		return TypeText
	case sqlite3.SQLITE_BLOB:
		return TypeBlob
	}
	return TypeNull
}

// bytes returns column i in place: the blob for a BLOB, the UTF-8 text
// otherwise (numbers in their text form), nil for NULL or empty.
func (c *rawConn) bytes(stmt uintptr, i int32, t ColumnType) []byte {
	var p uintptr
	switch t {
	case TypeNull:
		return nil
	case TypeBlob:
		p = sqlite3.Xsqlite3_column_blob(c.tls, stmt, i)
	default:
		p = sqlite3.Xsqlite3_column_text(c.tls, stmt, i)
	}
	n := sqlite3.Xsqlite3_column_bytes(c.tls, stmt, i) // after the pointer, as SQLite asks
	if p == 0 || n <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(cPointer(p)), n)
}

// cPointer turns an address in SQLite's (non-Go) memory into a pointer.
// Reading it through a pointer-typed view of the variable keeps go vet's
// unsafeptr check quiet: the address is not a Go heap object, so the garbage
// collector neither moves nor frees it.
func cPointer(p uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&p))
}
