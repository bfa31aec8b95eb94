package backuptest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Backup describes a backup folder Write produced: where it is and what a
// correct audit of it must find. Lists of files are in index order.
type Backup struct {
	Path string // the backup folder that was written
	ID   string // folder name (UDID, or UDID-YYYYMMDD-HHMMSS for a dated copy)
	UDID string

	DeviceName     string
	ProductType    string
	ProductVersion string
	BuildVersion   string
	SerialNumber   string
	Date           time.Time // Status.plist Date: when the backup finished
	Legacy         bool      // Manifest.mbdb layout
	Encrypted      bool      // Manifest.db (unless Legacy) and blobs are encrypted
	Password       string    // the backup password, when Encrypted

	// Rows is the number of index rows (files, folders, symlinks and any
	// invalid rows) the index holds: 0 when it is missing, garbage, a folder
	// or has no Files table; the complete records before the cut of a
	// truncated Manifest.mbdb. An encrypted Manifest.db holds Rows rows that
	// only the password would reveal.
	Rows     int
	Dirs     int // directory rows (flags 2)
	Symlinks int // symlink rows (flags 4)
	// WALRows is how many of the Rows live only in Manifest.db-wal (LeftoverWAL).
	WALRows int

	// Files lists the regular-file rows (flags 1) of the index, including any
	// with defects below. When the index itself is missing or unreadable it
	// lists the rows it would have held (their blobs are on disk).
	Files []File
	// Bytes is the sum of Size over Files; BlobBytes the sum of the lengths of
	// the blobs written for them.
	Bytes, BlobBytes int64

	Missing          []File          // listed files whose blob was not written
	SizeMismatch     []File          // blob length differs from Size (padded size when encrypted)
	BadPadding       []File          // encrypted blob length not a multiple of 16
	DigestMismatch   []File          // legacy DataHash does not match the blob
	Altered          []File          // encrypted blob of the right length whose padding does not decode
	InvalidFileIDs   []File          // fileID not 40 lowercase hex; no blob
	FileIDMismatch   []File          // 40-hex fileID that is not sha1(domain-relativePath)
	MissingSize      []File          // MBFile without a Size key
	InvalidRecords   []InvalidRecord // rows that break the device's rules
	Orphans          []string        // blob paths (relative to Path) that no row lists
	OrphanBytes      int64
	SnapshotBlobs    []string // blob paths under Snapshot/ (relative to Path)
	SnapshotBytes    int64    // bytes of files under Snapshot/
	Links            int      // blobs written as hard links (HardLinks)
	CorruptPages     []int    // Manifest.db pages overwritten (CorruptIndexPages)
	MismatchedUDID   string   // the other device's UDID in Info.plist (UDIDMismatch)
	IndexTruncatedAt int64    // length Manifest.mbdb was cut to (TruncatedMbdb)
}

// File is one regular-file row.
type File struct {
	Domain, RelativePath, FileID string
	Size                         int64 // the MBFile Size (what the file holds)
	Flags                        int   // Files.flags
	Blob                         int64 // length of the blob written, -1 for none
}

// InvalidRecord is an index row that breaks the device's rules.
type InvalidRecord struct {
	Kind RecordKind
	File File
}

// Name is the row as findings show it: domain/relativePath.
func (f File) Name() string { return f.Domain + "/" + f.RelativePath }

// MustWrite is Write for tests: it fails tb on error.
func MustWrite(tb testing.TB, root string, opts ...Option) *Backup {
	tb.Helper()
	b, err := Write(root, opts...)
	if err != nil {
		tb.Fatalf("backuptest.Write: %v", err)
	}
	return b
}

// Write writes one backup folder, root/<ID>/, and describes it. The folder
// must not exist yet. The same options always give the same bytes. On error
// the folder may be left half-written.
func Write(root string, opts ...Option) (*Backup, error) {
	s := &spec{seed: 1, files: 200}
	for _, o := range opts {
		o(s)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	w, err := plan(s)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	w.b.Path = filepath.Join(root, w.b.ID)
	if err := os.Mkdir(w.b.Path, 0o755); err != nil {
		return nil, fmt.Errorf("creating backup folder: %w", err)
	}
	if err := w.write(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", w.b.Path, err)
	}
	return w.b, nil
}

// check refuses option combinations that do not describe one backup.
func (s *spec) check() error {
	errs := s.errs
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	index := 0
	for _, on := range []bool{s.noIndex, s.garbageIdx, s.indexDir, s.noFiles, s.dropCol != "",
		s.corruptIdx, s.garbMbdb, s.truncMbdb, s.leftover} {
		if on {
			index++
		}
	}
	if index > 1 {
		bad("more than one index option (NoIndex, GarbageIndex, IndexIsDir, NoFilesTable, MissingColumn, CorruptIndexPages, GarbageMbdb, TruncatedMbdb, LeftoverWAL)")
	}
	if s.legacy {
		for name, on := range map[string]bool{
			"GarbageIndex": s.garbageIdx, "IndexIsDir": s.indexDir, "NoFilesTable": s.noFiles,
			"MissingColumn": s.dropCol != "", "CorruptIndexPages": s.corruptIdx, "LeftoverWAL": s.leftover,
			"InvalidRecords": len(s.records) > 0, "InvalidFileIDs": s.badIDs > 0,
			"FileIDMismatch": s.idMism > 0, "MissingSize": s.noSize > 0, "RootIndex": s.rootIndex > 1,
			"ManifestKeyMissing": s.noManKey,
		} {
			if on {
				bad("%s needs a Manifest.db: it cannot be used with Legacy", name)
			}
		}
	}
	if s.encrypted && s.flagMism {
		bad("EncryptionFlagMismatch describes a decrypted copy: it cannot be used with Encrypted, BadPadding, KeybagMissing or ManifestKeyMissing")
	}
	if s.encrypted && !s.legacy && (s.noFiles || s.dropCol != "" || s.corruptIdx || s.leftover) {
		bad("an encrypted Manifest.db is random bytes: NoFilesTable, MissingColumn, CorruptIndexPages and LeftoverWAL need a plain one")
	}
	if s.encrypted && s.digestMism > 0 && !s.legacy {
		bad("DigestMismatch needs Legacy")
	}
	if s.badPad > 0 && !s.encrypted {
		bad("BadPadding needs Encrypted")
	}
	if s.altered > 0 && s.flagMism {
		bad("AlteredBlobs needs encrypted blobs: it cannot be used with EncryptionFlagMismatch")
	}
	return errors.Join(errs...)
}

// writer holds one backup being written.
type writer struct {
	s       *spec
	b       *Backup
	rows    []row
	dev     deviceInfo
	date    time.Time
	modTime time.Time
	dataEnc bool // blobs and Manifest.db are ciphertext
	crypto  *Crypto
	manKey  []byte // the key Manifest.db is encrypted with
	manWrap []byte // ManifestKey: its class and the wrapped key
	keyEnc  bool   // rows carry EncryptionKey, plists say encrypted
	walFrom int    // rows from here on go to the -wal (LeftoverWAL)
	xattr   []byte
	mtimes  []string // paths (files and folders) whose times are set last
}

// plan decides everything about the backup before a byte is written.
func plan(s *spec) (*writer, error) {
	w := &writer{s: s, b: &Backup{}}
	w.dev = defaultDevice(s)
	w.date = s.date
	if w.date.IsZero() {
		r := rand.New(rand.NewPCG(uint64(s.seed), 0x64617465))
		w.date = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(365*24*3600)) * time.Second)
	}
	w.modTime = s.modTime
	if w.modTime.IsZero() {
		w.modTime = w.date
	}
	w.dataEnc = s.encrypted
	w.keyEnc = s.encrypted || s.flagMism
	udid := s.udid
	if udid == "" {
		udid = defaultUDID(s, w.dev)
	}
	b := w.b
	b.UDID, b.ID = udid, udid
	if !s.dated.IsZero() {
		b.ID = udid + "-" + s.dated.Format("20060102-150405")
	}
	b.DeviceName, b.ProductType, b.ProductVersion, b.BuildVersion = w.dev.Name, w.dev.ProductType, w.dev.Version, w.dev.Build
	b.SerialNumber = w.dev.Serial
	b.Date = w.date
	b.Legacy = s.legacy
	b.Encrypted = w.dataEnc
	if w.dataEnc {
		if err := w.newCrypto(); err != nil {
			return nil, err
		}
	}
	w.xattr = binaryPlist(newDict("com.apple.TextEncoding", []byte("utf-8;134217984")))

	rows, err := generate(s, w.date)
	if err != nil {
		return nil, err
	}
	w.rows = rows
	for i := range w.rows {
		rw := &w.rows[i]
		if rw.kind == kindFile && w.dataEnc {
			rw.blob = paddedSize(rw.size)
			rw.wrapped, rw.fileKey = w.crypto.FileKey(uint32(rw.pclass))
		}
	}
	if err := w.applyDefects(); err != nil {
		return nil, err
	}
	w.walFrom = len(w.rows)
	if s.leftover {
		w.walFrom = len(w.rows) - max(1, min(len(w.rows)/5, 50))
		for i := w.walFrom; i < len(w.rows); i++ {
			w.rows[i].walOnly = true
		}
		b.WALRows = len(w.rows) - w.walFrom
	}
	w.describe()
	return w, nil
}

// paddedSize is the length of a file of n bytes after AES-CBC with PKCS#7 padding.
func paddedSize(n int64) int64 { return (n/16 + 1) * 16 }

// applyDefects picks the rows each defect hits, from the seed, and changes them.
func (w *writer) applyDefects() error {
	s := w.s
	r := rand.New(rand.NewPCG(uint64(s.seed), 0x64656665637473))
	var files, dirs, links []int
	for i, rw := range w.rows {
		switch rw.kind {
		case kindFile:
			files = append(files, i)
		case kindDir:
			if rw.path != "" {
				dirs = append(dirs, i)
			}
		case kindSymlink:
			links = append(links, i)
		}
	}
	r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	r.Shuffle(len(dirs), func(i, j int) { dirs[i], dirs[j] = dirs[j], dirs[i] })
	r.Shuffle(len(links), func(i, j int) { links[i], links[j] = links[j], links[i] })
	take := func(name string, pool *[]int, n int) ([]int, error) {
		if n > len(*pool) {
			return nil, fmt.Errorf("%s(%d): only %d suitable rows left", name, n, len(*pool))
		}
		got := slices.Clone((*pool)[:n])
		*pool = (*pool)[n:]
		slices.Sort(got)
		return got, nil
	}
	kinds := map[RecordKind]int{}
	for _, k := range s.records {
		kinds[k]++
	}
	b := w.b
	steps := []struct {
		name string
		pool *[]int
		n    int
		list *[]File    // where the hit rows are listed, or
		kind RecordKind // the kind of invalid record they become
		fn   func(rw *row, nth int)
	}{
		{"InvalidFileIDs", &files, s.badIDs, &b.InvalidFileIDs, 0, func(rw *row, nth int) {
			rw.fileID = invalidFileID(rw.fileID, nth)
			rw.blob = -1
		}},
		{"FileIDMismatch", &files, s.idMism, &b.FileIDMismatch, 0, func(rw *row, _ int) {
			rw.fileID = sha1Hex(rw.domain, rw.path+"\x00renamed")
			rw.blobID = rw.fileID
		}},
		{"MissingBlobs", &files, s.missing, &b.Missing, 0, func(rw *row, _ int) { rw.blob = -1 }},
		{"SizeMismatch", &files, s.sizeMism, &b.SizeMismatch, 0, func(rw *row, nth int) {
			step := int64(1 + r.IntN(64))
			if w.dataEnc {
				step = 16 * int64(1+r.IntN(4)) // still a multiple of 16
			}
			if nth%2 == 1 && rw.blob >= step {
				rw.blob -= step
			} else {
				rw.blob += step
			}
		}},
		{"BadPadding", &files, s.badPad, &b.BadPadding, 0, func(rw *row, nth int) {
			if nth%2 == 1 && rw.blob > 16 {
				rw.blob -= int64(1 + r.IntN(15))
			} else {
				rw.blob += int64(1 + r.IntN(15))
			}
		}},
		{"DigestMismatch", &files, s.digestMism, &b.DigestMismatch, 0, func(rw *row, _ int) { rw.badHash = true }},
		{"MissingSize", &files, s.noSize, &b.MissingSize, 0, func(rw *row, _ int) { rw.noSize = true }},
		{"InvalidRecords(RecordUndecodable)", &files, kinds[RecordUndecodable], nil, RecordUndecodable,
			func(rw *row, _ int) { rw.undecodable = true }},
		{"InvalidRecords(RecordUnknownFlags)", &files, kinds[RecordUnknownFlags], nil, RecordUnknownFlags,
			func(rw *row, _ int) { rw.flags, rw.blob = 8, -1 }},
		{"InvalidRecords(RecordDirWithSize)", &dirs, kinds[RecordDirWithSize], nil, RecordDirWithSize,
			func(rw *row, _ int) { rw.size = 1 + r.Int64N(4096) }},
		{"InvalidRecords(RecordSymlinkNoTarget)", &links, kinds[RecordSymlinkNoTarget], nil, RecordSymlinkNoTarget,
			func(rw *row, _ int) { rw.hasTarget = false }},
	}
	type rec struct {
		row int
		r   InvalidRecord
	}
	var recs []rec
	for _, st := range steps {
		got, err := take(st.name, st.pool, st.n)
		if err != nil {
			return err
		}
		for nth, i := range got {
			st.fn(&w.rows[i], nth)
			f := w.rows[i].file()
			if st.list != nil {
				*st.list = append(*st.list, f)
			} else {
				recs = append(recs, rec{i, InvalidRecord{Kind: st.kind, File: f}})
			}
		}
	}
	// Last, from the files left: altering needs a blob of two blocks.
	var big []int
	for _, i := range files {
		if w.rows[i].size >= 16 {
			big = append(big, i)
		}
	}
	got, err := take("AlteredBlobs", &big, s.altered)
	if err != nil {
		return err
	}
	for _, i := range got {
		w.rows[i].altered = true
		b.Altered = append(b.Altered, w.rows[i].file())
	}
	slices.SortFunc(recs, func(x, y rec) int { return x.row - y.row })
	for _, r := range recs {
		b.InvalidRecords = append(b.InvalidRecords, r.r)
	}
	return nil
}

// invalidFileID returns the nth kind of bad fileID for a row whose real ID is id.
func invalidFileID(id string, nth int) string {
	switch nth % 8 {
	case 0:
		return id[:12] // too short
	case 1:
		return strings.ToUpper(id)
	case 2:
		return "../../../../etc/passwd" + strings.Repeat("/.", nth/8)
	case 3:
		return "z" + id[1:] // not hex
	case 4:
		return "/etc/hosts" + strings.Repeat("/", nth/8)
	case 5:
		return id + "0" // 41 characters
	case 6:
		return id[:2] + "/../" + id[6:] // 40 characters with a path in it
	}
	return id[:39] // 39 characters
}

func (rw *row) file() File {
	return File{Domain: rw.domain, RelativePath: rw.path, FileID: rw.fileID, Size: rw.size, Flags: int(rw.flags), Blob: rw.blob}
}

// describe fills in the counts and lists of the Backup.
func (w *writer) describe() {
	b := w.b
	b.Files = make([]File, 0, w.s.files)
	for _, rw := range w.rows {
		switch rw.flags {
		case kindFile:
			f := rw.file()
			b.Files = append(b.Files, f)
			b.Bytes += rw.size
			if rw.blob > 0 {
				b.BlobBytes += rw.blob
			}
		case kindDir:
			b.Dirs++
		case kindSymlink:
			b.Symlinks++
		}
	}
	b.Rows = len(w.rows)
	s := w.s
	if s.noIndex || s.garbageIdx || s.indexDir || s.noFiles || s.garbMbdb {
		b.Rows = 0
	}
}

// newCrypto makes the keys of an encrypted backup, from the seed: the
// keybag for the password and the key of Manifest.db.
func (w *writer) newCrypto() error {
	s := w.s
	pw := s.password
	if pw == "" {
		pw = TestPassword
	}
	dp, it := s.dpRounds, s.rounds
	if dp == 0 {
		dp = DefaultDPRounds
	}
	if it == 0 {
		it = DefaultRounds
	}
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(s.seed)^0x6b657962616773)
	c, err := NewCrypto(pw, dp, it, s.legacy, rand.NewChaCha8(seed))
	if err != nil {
		return err
	}
	w.crypto = c
	w.b.Password = pw
	if !s.legacy {
		// Apple's devices wrap the index key with class 4 (ManifestKey
		// starts with 04 00 00 00).
		w.manWrap, w.manKey = c.ManifestKey(4)
	}
	return nil
}
