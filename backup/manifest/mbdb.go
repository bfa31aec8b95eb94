package manifest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNotMbdb means the data does not start with the Manifest.mbdb header
// "mbdb\x05\x00".
var ErrNotMbdb = errors.New("not a Manifest.mbdb (bad header)")

// MbdbRecord is one file record of a legacy Manifest.mbdb (iOS 4 to 9).
type MbdbRecord struct {
	Domain string
	Path   string // RelativePath
	Target string // LinkTarget, for symlinks

	// DataHash is the 20-byte SHA-1 some file records carry, nil when null
	// or empty. It is only valid until fn returns.
	DataHash []byte
	// HasEncryptionKey reports a non-empty EncryptionKey.
	HasEncryptionKey bool
	// EncryptionKey is that key (a 4-byte class and a wrapped key), nil
	// when null or empty. It is only valid until fn returns.
	EncryptionKey []byte

	Mode             uint16 // file type (0x8000, 0x4000, 0xA000) and permissions
	Inode            uint64
	UserID, GroupID  uint32
	LastModified     uint32 // Unix seconds
	LastStatusChange uint32
	Birth            uint32
	Size             uint64
	ProtectionClass  uint8
	PropertyCount    int // extended attributes, skipped

	// Offset is the byte offset of the record in the file.
	Offset int64

	hash []byte // DataHash's buffer, reused between records
	key  []byte // EncryptionKey's buffer, likewise
}

// MbdbError is a Manifest.mbdb that could be read but not parsed: a
// truncated tail, a string that runs past the end, or a read error.
type MbdbError struct {
	Offset int64  // byte offset in the file where the problem is
	Record int    // index of the record being read
	What   string // what was being read
	Err    error  // io.ErrUnexpectedEOF for a truncated file, or the read error
}

// Error gives the record, the field and the byte offset.
func (e *MbdbError) Error() string {
	if errors.Is(e.Err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("mbdb record %d: %s at byte %d runs past the end of the file", e.Record, e.What, e.Offset)
	}
	return fmt.Sprintf("mbdb record %d: reading %s at byte %d: %v", e.Record, e.What, e.Offset, e.Err)
}

// Unwrap returns the underlying error.
func (e *MbdbError) Unwrap() error { return e.Err }

const (
	mbdbMagic     = "mbdb\x05\x00"
	mbdbNull      = 0xFFFF
	mbdbFixedSize = 40 // Mode .. PropertyCount
	// maxInterned bounds the table of domain names shared between records,
	// so that a hostile file cannot grow it without limit.
	maxInterned = 4096
)

// mbdbScanner reads records from a buffered stream, counting bytes.
type mbdbScanner struct {
	br     *bufio.Reader
	off    int64
	record int
	domain map[string]string
}

// ScanMbdb reads the Manifest.mbdb in r record by record and calls fn for
// each, in file order. It returns the number of records passed to fn.
//
// fn is handed the same *MbdbRecord every time, overwritten for each record:
// copy what must outlive the call. Memory use does not grow with the size of
// the file: strings are at most 65,534 bytes, read through a fixed buffer.
//
// A file that does not start with the mbdb header gives ErrNotMbdb. A
// truncated record or a read error gives an *MbdbError with the byte offset.
// An error from fn stops the scan and is returned as is.
func ScanMbdb(r io.Reader, fn func(rec *MbdbRecord) error) (n int, err error) {
	s := mbdbScanner{
		br:     bufio.NewReaderSize(r, 1<<16+16), // holds the longest string
		domain: make(map[string]string),
	}
	head, err := s.br.Peek(len(mbdbMagic))
	if string(head) != mbdbMagic {
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, &MbdbError{What: "header", Err: err}
		}
		return 0, ErrNotMbdb
	}
	s.discard(len(mbdbMagic))

	var rec MbdbRecord
	for {
		if _, err := s.br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, s.fail("record", err)
		}
		if err := s.read(&rec); err != nil {
			return n, err
		}
		if err := fn(&rec); err != nil {
			return n, err
		}
		n++
		s.record++
	}
}

// read reads one record into rec.
func (s *mbdbScanner) read(rec *MbdbRecord) error {
	rec.Offset = s.off
	b, err := s.str("Domain")
	if err != nil {
		return err
	}
	rec.Domain = s.intern(b)
	if b, err = s.str("RelativePath"); err != nil {
		return err
	}
	rec.Path = string(b)
	if b, err = s.str("LinkTarget"); err != nil {
		return err
	}
	rec.Target = string(b)
	if b, err = s.str("DataHash"); err != nil {
		return err
	}
	rec.DataHash = nil
	if len(b) > 0 {
		rec.hash = append(rec.hash[:0], b...)
		rec.DataHash = rec.hash
	}
	if b, err = s.str("EncryptionKey"); err != nil {
		return err
	}
	rec.HasEncryptionKey = len(b) > 0
	rec.EncryptionKey = nil
	if len(b) > 0 {
		rec.key = append(rec.key[:0], b...)
		rec.EncryptionKey = rec.key
	}

	f, err := s.peek(mbdbFixedSize, "fixed fields")
	if err != nil {
		return err
	}
	be := binary.BigEndian
	rec.Mode = be.Uint16(f[0:])
	rec.Inode = be.Uint64(f[2:])
	rec.UserID = be.Uint32(f[10:])
	rec.GroupID = be.Uint32(f[14:])
	rec.LastModified = be.Uint32(f[18:])
	rec.LastStatusChange = be.Uint32(f[22:])
	rec.Birth = be.Uint32(f[26:])
	rec.Size = be.Uint64(f[30:])
	rec.ProtectionClass = f[38]
	rec.PropertyCount = int(f[39])
	s.discard(mbdbFixedSize)

	for range rec.PropertyCount {
		if _, err := s.str("property name"); err != nil {
			return err
		}
		if _, err := s.str("property value"); err != nil {
			return err
		}
	}
	return nil
}

// str reads a length-prefixed string and returns its bytes (nil for the null
// string), valid until the next read.
func (s *mbdbScanner) str(what string) ([]byte, error) {
	h, err := s.br.Peek(2)
	if err != nil {
		return nil, s.fail(what+" length", err)
	}
	n := int(binary.BigEndian.Uint16(h))
	s.discard(2)
	if n == mbdbNull {
		return nil, nil
	}
	b, err := s.peek(n, what)
	if err != nil {
		return nil, err
	}
	s.discard(n)
	return b, nil
}

// peek returns the next n bytes without consuming them; n never exceeds
// the buffer, so Peek never allocates.
func (s *mbdbScanner) peek(n int, what string) ([]byte, error) {
	b, err := s.br.Peek(n)
	if err != nil {
		return nil, s.fail(what, err)
	}
	return b, nil
}

func (s *mbdbScanner) discard(n int) {
	s.br.Discard(n) // the bytes were peeked: cannot fail
	s.off += int64(n)
}

func (s *mbdbScanner) fail(what string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &MbdbError{Offset: s.off, Record: s.record, What: what, Err: err}
}

// intern returns b as a string shared between records: backups hold a few
// hundred domains and millions of records.
func (s *mbdbScanner) intern(b []byte) string {
	if v, ok := s.domain[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(s.domain) < maxInterned {
		s.domain[v] = v
	}
	return v
}
