package backuptest

import (
	"bytes"
	"crypto/sha1"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"howett.net/plist"
)

// This file reads generated backups back the way an auditor would, with
// independent code (howett.net/plist, modernc.org/sqlite, a small mbdb
// walker), so the tests can check that a backup holds exactly the defects
// its Backup value claims.

var fileIDRe = regexp.MustCompile(`^[0-9a-f]{40}$`)

// dbRecord is one Files row as read back.
type dbRecord struct {
	fileID, domain, path string
	flags                int64
	file                 []byte
	mb                   *mbFile // nil if the blob does not decode
}

// openIndex copies Manifest.db (and a -wal beside it) into a temporary
// folder and opens the copy, so the backup is never written to.
func openIndex(t testing.TB, b *Backup) *sql.DB {
	t.Helper()
	dir := tempDir(t)
	for _, name := range []string{"Manifest.db", "Manifest.db-wal"} {
		data, err := os.ReadFile(filepath.Join(b.Path, name))
		if errors.Is(err, os.ErrNotExist) && name != "Manifest.db" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "Manifest.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func pragma(t testing.TB, db *sql.DB, q string) string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return strings.Join(out, "\n")
}

// readRows reads every Files row; columns missing from the table come back empty.
func readRows(t testing.TB, db *sql.DB) []dbRecord {
	t.Helper()
	have := map[string]bool{}
	for _, c := range strings.Split(pragma(t, db, "SELECT name FROM pragma_table_info('Files')"), "\n") {
		have[c] = true
	}
	cols := []string{}
	for _, c := range []string{"fileID", "domain", "relativePath", "flags", "file"} {
		if have[c] {
			cols = append(cols, c)
		} else {
			cols = append(cols, "NULL")
		}
	}
	rows, err := db.Query("SELECT " + strings.Join(cols, ", ") + " FROM Files ORDER BY rowid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []dbRecord
	for rows.Next() {
		var id, dom, path sql.NullString
		var flags sql.NullInt64
		var file []byte
		if err := rows.Scan(&id, &dom, &path, &flags, &file); err != nil {
			t.Fatal(err)
		}
		r := dbRecord{fileID: id.String, domain: dom.String, path: path.String, flags: flags.Int64, file: file}
		if f, err := mbFileFromArchive(file); err == nil {
			r.mb = f
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// mbdbRecord is one Manifest.mbdb record as read back.
type mbdbRec struct {
	domain, path, target string
	hash, key            []byte
	mode                 uint16
	size                 uint64
	hasTarget            bool
}

// walkMbdb parses Manifest.mbdb record by record. It returns the records it
// could read and an error if the file does not parse to its last byte.
func walkMbdb(data []byte) ([]mbdbRec, error) {
	if !bytes.HasPrefix(data, []byte("mbdb\x05\x00")) {
		return nil, errors.New("bad header")
	}
	p := data[6:]
	var recs []mbdbRec
	str := func() ([]byte, bool, error) {
		if len(p) < 2 {
			return nil, false, io.ErrUnexpectedEOF
		}
		n := binary.BigEndian.Uint16(p)
		p = p[2:]
		if n == 0xffff {
			return nil, false, nil
		}
		if int(n) > len(p) {
			return nil, false, io.ErrUnexpectedEOF
		}
		s := p[:n]
		p = p[n:]
		return s, true, nil
	}
	for len(p) > 0 {
		var r mbdbRec
		var fields [5][]byte
		var present [5]bool
		for i := range fields {
			var err error
			if fields[i], present[i], err = str(); err != nil {
				return recs, fmt.Errorf("record %d: %w", len(recs), err)
			}
		}
		r.domain, r.path = string(fields[0]), string(fields[1])
		r.target, r.hasTarget = string(fields[2]), present[2]
		r.hash, r.key = fields[3], fields[4]
		if len(p) < 2+8+4*5+8+2 {
			return recs, fmt.Errorf("record %d: %w", len(recs), io.ErrUnexpectedEOF)
		}
		r.mode = binary.BigEndian.Uint16(p)
		r.size = binary.BigEndian.Uint64(p[30:])
		props := int(p[39])
		p = p[40:]
		for range props * 2 {
			if _, _, err := str(); err != nil {
				return recs, fmt.Errorf("record %d: %w", len(recs), err)
			}
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// findings is what an audit of a generated backup finds, as fileID lists.
type findings struct {
	rows                         int
	files                        []string
	missing, sizeMismatch        []string
	badPadding, digestMismatch   []string
	invalidIDs, idMismatch       []string
	missingSize                  []string
	undecodable, unknownFlags    []string
	dirWithSize, symlinkNoTarget []string
	orphans                      []string
}

// expected is what b says an audit must find.
func expected(b *Backup) findings {
	ids := func(fs []File) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.FileID)
		}
		return out
	}
	f := findings{
		rows: b.Rows, files: ids(b.Files), missing: ids(b.Missing), sizeMismatch: ids(b.SizeMismatch),
		badPadding: ids(b.BadPadding), digestMismatch: ids(b.DigestMismatch),
		invalidIDs: ids(b.InvalidFileIDs), idMismatch: ids(b.FileIDMismatch), missingSize: ids(b.MissingSize),
		orphans: slices.Clone(b.Orphans),
	}
	for _, r := range b.InvalidRecords {
		switch r.Kind {
		case RecordUndecodable:
			f.undecodable = append(f.undecodable, r.File.FileID)
		case RecordUnknownFlags:
			f.unknownFlags = append(f.unknownFlags, r.File.FileID)
		case RecordDirWithSize:
			f.dirWithSize = append(f.dirWithSize, r.File.FileID)
		case RecordSymlinkNoTarget:
			f.symlinkNoTarget = append(f.symlinkNoTarget, r.File.FileID)
		}
	}
	return f
}

// blobsOnDisk lists the blob files of a backup: name relative to the
// folder -> length.
func blobsOnDisk(t testing.TB, b *Backup) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	add := func(dir, prefix string) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.IsDir() || !fileIDRe.MatchString(e.Name()) {
				continue
			}
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			out[prefix+e.Name()] = info.Size()
		}
	}
	if b.Legacy {
		add(b.Path, "")
		return out
	}
	for i := range 256 {
		p := fmt.Sprintf("%02x", i)
		add(filepath.Join(b.Path, p), p+"/")
	}
	return out
}

// audit reads b's folder and reports what is wrong with it, file by file.
// It needs a readable index: a plain Manifest.db or a Manifest.mbdb.
func audit(t testing.TB, b *Backup) findings {
	t.Helper()
	var f findings
	blobs := blobsOnDisk(t, b)
	listed := map[string]bool{}
	enc := b.Encrypted
	checkBlob := func(id string, size int64, hasSize bool) (int64, bool) {
		rel := b.blobRel(id)
		listed[rel] = true
		n, ok := blobs[rel]
		if !ok {
			f.missing = append(f.missing, id)
			return 0, false
		}
		switch {
		case enc && n%16 != 0:
			f.badPadding = append(f.badPadding, id)
		case !hasSize:
		case enc && n != paddedSize(size):
			f.sizeMismatch = append(f.sizeMismatch, id)
		case !enc && n != size:
			f.sizeMismatch = append(f.sizeMismatch, id)
		}
		return n, true
	}
	if b.Legacy {
		data, err := os.ReadFile(filepath.Join(b.Path, "Manifest.mbdb"))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := walkMbdb(data)
		if err != nil {
			t.Fatalf("Manifest.mbdb: %v", err)
		}
		f.rows = len(recs)
		for _, r := range recs {
			if r.mode&0xf000 != 0x8000 {
				continue
			}
			id := sha1Hex(r.domain, r.path)
			f.files = append(f.files, id)
			if _, ok := checkBlob(id, int64(r.size), true); ok {
				blob, err := os.ReadFile(filepath.Join(b.Path, id))
				if err != nil {
					t.Fatal(err)
				}
				if sum := sha1.Sum(blob); !bytes.Equal(sum[:], r.hash) {
					f.digestMismatch = append(f.digestMismatch, id)
				}
			}
		}
	} else {
		db := openIndex(t, b)
		for _, r := range readRows(t, db) {
			f.rows++
			switch {
			case r.flags == 1:
				f.files = append(f.files, r.fileID)
			case r.flags != 2 && r.flags != 4:
				f.unknownFlags = append(f.unknownFlags, r.fileID)
				continue
			}
			if r.mb == nil {
				f.undecodable = append(f.undecodable, r.fileID)
			} else {
				switch r.flags {
				case 2:
					if r.mb.Size != 0 {
						f.dirWithSize = append(f.dirWithSize, r.fileID)
					}
				case 4:
					if !r.mb.HasTarget {
						f.symlinkNoTarget = append(f.symlinkNoTarget, r.fileID)
					}
				}
			}
			if r.flags != 1 {
				continue
			}
			if !fileIDRe.MatchString(r.fileID) {
				f.invalidIDs = append(f.invalidIDs, r.fileID)
				continue
			}
			if r.fileID != sha1Hex(r.domain, r.path) {
				f.idMismatch = append(f.idMismatch, r.fileID)
			}
			hasSize := r.mb != nil && !r.mb.NoSize
			if r.mb != nil && r.mb.NoSize {
				f.missingSize = append(f.missingSize, r.fileID)
			}
			var size int64
			if r.mb != nil {
				size = r.mb.Size
			}
			checkBlob(r.fileID, size, hasSize)
		}
	}
	for rel := range blobs {
		if !listed[rel] {
			f.orphans = append(f.orphans, rel)
		}
	}
	slices.Sort(f.orphans)
	return f
}

// checkAudit compares what an audit finds with what b claims.
func checkAudit(t *testing.T, b *Backup) {
	t.Helper()
	got, want := audit(t, b), expected(b)
	slices.Sort(want.orphans)
	if got.rows != want.rows {
		t.Errorf("audit read %d rows, Backup.Rows = %d", got.rows, want.rows)
	}
	cmp := func(name string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: audit found %d %q, Backup says %d %q", name, len(got), trim(got), len(want), trim(want))
		}
	}
	cmp("files", got.files, want.files)
	cmp("missing", got.missing, want.missing)
	cmp("size mismatch", got.sizeMismatch, want.sizeMismatch)
	cmp("bad padding", got.badPadding, want.badPadding)
	cmp("digest mismatch", got.digestMismatch, want.digestMismatch)
	cmp("invalid file IDs", got.invalidIDs, want.invalidIDs)
	cmp("file ID mismatch", got.idMismatch, want.idMismatch)
	cmp("missing Size", got.missingSize, want.missingSize)
	cmp("undecodable", got.undecodable, want.undecodable)
	cmp("unknown flags", got.unknownFlags, want.unknownFlags)
	cmp("dir with size", got.dirWithSize, want.dirWithSize)
	cmp("symlink without target", got.symlinkNoTarget, want.symlinkNoTarget)
	cmp("orphans", got.orphans, want.orphans)
}

func trim(s []string) []string {
	if len(s) > 4 {
		return append(slices.Clone(s[:4]), "...")
	}
	return s
}

// readPlist decodes a plist file of the backup into v.
func readPlist(t testing.TB, b *Backup, name string, v any) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.Path, name))
	if err != nil {
		t.Fatal(err)
	}
	format, err := plist.Unmarshal(data, v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return format
}
