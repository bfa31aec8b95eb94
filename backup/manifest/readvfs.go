package manifest

import (
	"io"
	"io/fs"
	"os"
	"sync"

	"modernc.org/sqlite/vfs"
)

// An immutable Manifest.db is read through a VFS of mbaudit's own rather
// than SQLite's unix VFS, which makes one pread per page: verify reads the
// pages of the Files table three times (the row scan, then quick_check's
// b-tree walk and its own pass over the rows) and those of the indexes once,
// and 4 KB reads cost more in system calls than in copying. readaheadFile serves the pages of a sweep, forward or
// backward, from a read-ahead buffer, and reads a page that is not part of
// one on its own. Memory stays bounded (one buffer per open file), unlike
// PRAGMA mmap_size, whose mapped pages count as the process's own.

const (
	minReadahead = 16 << 10
	maxReadahead = 256 << 10
)

// useReadVFS is false only in tests that compare with SQLite's own VFS.
var useReadVFS = true

// readVFS registers the VFS on first use and returns its name, or "" if it
// could not be registered (SQLite's own VFS then does the reading).
var readVFS = sync.OnceValue(func() string {
	name, _, err := vfs.New(readaheadFS{})
	if err != nil {
		return ""
	}
	return name
})

// readaheadFS opens files by the path SQLite gives, which is the absolute
// path of the URI: vfs passes it through unchanged.
type readaheadFS struct{}

func (readaheadFS) Open(name string) (fs.File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return &readaheadFile{f: f}, nil
}

// readaheadFile is the fs.File (with Seek, which vfs requires) of one open
// database. SQLite uses it from one connection, one call at a time.
type readaheadFile struct {
	f   *os.File
	pos int64 // set by Seek, moved by Read

	buf    []byte // read-ahead: the file's bytes from bufOff
	bufOff int64
	used   int   // bytes of buf handed out since it was filled
	win    int   // the next fill's size
	lo, hi int64 // the span of the last read
}

func (r *readaheadFile) Stat() (fs.FileInfo, error) { return r.f.Stat() }

func (r *readaheadFile) Close() error {
	r.buf = nil
	return r.f.Close()
}

func (r *readaheadFile) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekStart || off < 0 {
		return r.f.Seek(off, whence)
	}
	r.pos = off
	return off, nil
}

// Read reads len(p) bytes at the position set by Seek (vfs calls it through
// io.ReadFull). A read that starts where the last one ended, or a little
// beyond, is part of a forward sweep (a table scan): the buffer is filled
// from there. One that ends where the last one started, or a little before,
// is part of a backward sweep (quick_check walks each b-tree's children
// last to first): the buffer is filled up to its end. The fill grows while
// the buffer is mostly used and shrinks while it is not, so that a sparse
// sweep does not copy much more than it reads.
func (r *readaheadFile) Read(p []byte) (int, error) {
	off, end := r.pos, r.pos+int64(len(p))
	if off >= r.bufOff && end <= r.bufOff+int64(len(r.buf)) {
		return r.hit(p, off, end), nil
	}
	forward := off >= r.hi && off < r.hi+maxReadahead
	backward := end <= r.lo && end > r.lo-maxReadahead
	if (forward || backward) && len(p) <= maxReadahead {
		switch {
		case r.win == 0:
			r.win = minReadahead
		case len(r.buf) > 0 && r.used*4 >= len(r.buf)*3:
			r.win = min(r.win*2, maxReadahead)
		case len(r.buf) > 0 && r.used*2 < len(r.buf):
			r.win = max(r.win/2, minReadahead)
		}
		size := max(r.win, len(p))
		start := off
		if !forward {
			start = max(end-int64(size), 0)
		}
		if cap(r.buf) < maxReadahead {
			r.buf = make([]byte, maxReadahead)
		}
		n, _ := r.f.ReadAt(r.buf[:size], start)
		r.buf, r.bufOff, r.used = r.buf[:n], start, 0
		if start+int64(n) >= end {
			return r.hit(p, off, end), nil
		}
		// The file ends (or failed) within the fill: the direct read
		// below says how.
		r.buf = r.buf[:0]
	}
	n, err := r.f.ReadAt(p, off)
	r.lo, r.pos, r.hi = off, off+int64(n), off+int64(n)
	if n == len(p) {
		err = nil
	}
	return n, err
}

// hit copies p from the buffer, which holds [off, end).
func (r *readaheadFile) hit(p []byte, off, end int64) int {
	n := copy(p, r.buf[off-r.bufOff:])
	r.used += n
	r.lo, r.pos, r.hi = off, end, end
	return n
}
