package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Kind is what the first bytes and the length of a Manifest.db say it is.
type Kind int

// The kinds of Manifest.db.
const (
	KindEmpty     Kind = iota // 0 bytes
	KindSQLite                // starts with the SQLite header
	KindEncrypted             // not SQLite, length a non-zero multiple of 16 (AES-CBC)
	KindGarbage               // anything else
)

// String returns the kind in lower case.
func (k Kind) String() string {
	switch k {
	case KindEmpty:
		return "empty"
	case KindSQLite:
		return "sqlite"
	case KindEncrypted:
		return "encrypted"
	}
	return "garbage"
}

var sqliteHeader = []byte("SQLite format 3\x00")

// ErrNotFile is returned by Sniff for a path that is not a regular file.
var ErrNotFile = errors.New("not a regular file")

// Sniff tells from its header and length what kind of file a Manifest.db is.
// Whether an encrypted-looking file really is an encrypted index depends on
// Manifest.plist, which the caller weighs. A directory, another non-regular
// file (never opened, so a FIFO cannot block) or a file that cannot be read
// is an error.
func Sniff(path string) (Kind, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return KindGarbage, err
	}
	if !fi.Mode().IsRegular() {
		return KindGarbage, fmt.Errorf("%s: %w", path, ErrNotFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return KindGarbage, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return KindGarbage, err
	}
	if !fi.Mode().IsRegular() { // replaced since the first look
		return KindGarbage, fmt.Errorf("%s: %w", path, ErrNotFile)
	}
	if fi.Size() == 0 {
		return KindEmpty, nil
	}
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return KindGarbage, err
	}
	if n == len(head) && bytes.Equal(head, sqliteHeader) {
		return KindSQLite, nil
	}
	if fi.Size()%16 == 0 {
		return KindEncrypted, nil
	}
	return KindGarbage, nil
}
