package backup

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/mbaudit/mbaudit/backup/keybag"
	"github.com/mbaudit/mbaudit/backup/manifest"
)

// Counts says how much of a backup verify looked at.
type Counts struct {
	RowsRead     int64 // index rows
	FilesListed  int64 // regular-file rows
	FilesChecked int64 // listed files whose presence on disk was checked
	BytesListed  int64 // sum of the listed files' sizes
	BytesRead    int64 // blob bytes read by --deep
	// BlobsSeen counts the blobs on disk when the index is encrypted and
	// only their lengths can be checked.
	BlobsSeen int64
}

// Verified holds the outcome of a full verification.
type Verified struct {
	Counts
	Deep bool
	// Unlocked is set when the password unlocked the backup's keybag.
	Unlocked *Unlock
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	Options
	// Deep reads every blob to its end, checks legacy digests and runs the
	// full SQLite integrity check.
	Deep bool
	// Progress, when not nil, is called now and then: while the index is
	// read with the rows read so far (the totals 0), and under --deep with
	// the files and bytes read and their totals.
	Progress func(files, totalFiles, bytes, totalBytes int64)
	// Password, when not nil, unlocks encrypted backups: their index is
	// decrypted into a private temporary folder and checked like a plain
	// one, and with Deep every blob is decrypted (to nowhere).
	Password *Password
	// Unlocking, when not nil, is called now and then while a key is
	// derived from the password, with the rounds done and to do.
	Unlocking func(done, total int64)

	// openBlob stands in for os.Open in tests that need a read to fail
	// (as root, permissions stop nothing).
	openBlob func(path string) (io.ReadCloser, error)
}

// listed is one regular file of the index, as compact as the merge allows:
// about 30 bytes a file, so a million-file backup fits in tens of MB.
type listed struct {
	id   [20]byte
	size int64 // -1: not recorded
}

// onDisk is one blob in a prefix folder: its fileID and length. It is
// listed's twin, so that one sort serves both.
type onDisk = listed

// verifier holds the state of one backup's verification.
type verifier struct {
	b        *Backup
	opt      VerifyOptions
	flat     bool // legacy layout: blobs in the backup folder itself
	buckets  [256][]listed
	scanned  [256]listedChunks     // the scan's listed files, by prefix, until the merge
	checking atomic.Bool           // quick_check is running: listFolders holds a worker back
	digests  map[[20]byte][20]byte // legacy --deep: DataHash by fileID
	dbPath   string                // the index to read: the backup's, or a decrypted copy
	keys     *keybag.Keys          // set when the password unlocked the keybag
	unlocked *Unlock

	mu       sync.Mutex
	examples map[Code][][20]byte // fileIDs to name in examples, found after the scan
	counts   Counts
	done     atomic.Int64
	doneB    atomic.Int64
	progMu   sync.Mutex
	progLast time.Time // when --deep last reported progress
}

// Verify proves a backup whole as far as it can without the password: it
// runs everything Inspect does, then reads the index row by row, checks
// every record against the device's own rules and merges the listed files
// with the folders' contents (missing, orphan and wrongly sized blobs).
// With Deep it also reads every blob. It never writes inside the backup.
// An error means the verification could not run (cancelled); problems with
// the backup are findings.
func Verify(ctx context.Context, b *Backup, opt VerifyOptions) (*Verified, error) {
	v := &verifier{b: b, opt: opt, examples: map[Code][][20]byte{},
		dbPath: filepath.Join(b.Path, "Manifest.db")}
	var err error
	switch {
	case b.State == StateBusy:
		// Hands off: a backup being written changes under our feet.
		return nil, nil
	case b.Format == FormatManifestDB && !b.IndexEncrypted && !b.hasIndexError():
		err = v.verifyDB(ctx)
	case b.Format == FormatMbdb && !b.hasIndexError():
		v.flat = true
		if b.Encrypted && opt.Password != nil {
			// The index is plain; the password is for the blobs.
			v.keys, err = v.unlock(ctx)
			if err != nil && !errors.Is(err, ErrWrongPassword) {
				return nil, err
			}
		}
		if verr := v.verifyMbdb(ctx); verr != nil {
			err = verr
		}
	case b.IndexEncrypted && opt.Password != nil && !b.hasIndexError():
		err = v.verifyEncryptedDB(ctx)
	case b.IndexEncrypted:
		err = v.verifyOpaque(ctx)
	default:
		return nil, nil
	}
	if err != nil && !errors.Is(err, ErrWrongPassword) {
		return nil, err
	}
	if f := b.Finding(ManifestEncrypted); f != nil {
		f.Message = "the index is encrypted and no password was given: the listed files were not checked " +
			"(presence, sizes, records), only the blobs' count and lengths"
		if errors.Is(err, ErrWrongPassword) {
			f.Message = strings.Replace(f.Message, "no password was given", "the password given is wrong", 1)
		}
	}
	b.Check = &Verified{Counts: v.counts, Deep: opt.Deep, Unlocked: v.unlocked}
	b.Judge(opt.Now, opt.BusyWindow)
	return b.Check, err
}

// hasIndexError reports whether the quick look already found the index
// unusable.
func (b *Backup) hasIndexError() bool {
	return b.Has(ManifestDBInvalid) || b.Has(ManifestMbdbInvalid) || b.Has(ManifestDBMissing) || b.Has(BackupUnreadable)
}

func (v *verifier) verifyDB(ctx context.Context) error {
	db, err := manifest.Open(v.dbPath)
	if err != nil {
		v.b.Addf(ManifestDBInvalid, "Manifest.db cannot be opened: %s", shortErr(err))
		return nil
	}
	defer db.Close()
	if err := db.CheckSchema(); err != nil {
		v.b.Addf(ManifestDBInvalid, "Manifest.db: %s", shortErr(err))
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return v.checkIntegrity(gctx, db) })
	var folders [256]folderListing
	g.Go(func() error { return v.listFolders(gctx, &folders) })
	g.Go(func() error {
		err := db.Scan(gctx, v.row)
		if err != nil && gctx.Err() == nil {
			v.b.Addf(ManifestDBInvalid, "Manifest.db cannot be read to its end: %s", shortErr(err))
			return nil
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if v.b.Has(ManifestDBInvalid) {
		// An index that cannot be trusted says nothing about the files:
		// every blob would look like an orphan.
		return nil
	}
	v.merge(&folders)
	deep := v.deep
	if v.keys != nil && v.opt.Deep {
		deep = func(ctx context.Context) error { return v.deepDecrypt(ctx, v.dbDeepRows(db)) }
	}
	if err := deep(ctx); err != nil {
		return err
	}
	v.nameExamples(func(ids map[string]bool) map[string]string {
		names, _ := db.Names(ctx, ids)
		return names
	})
	return nil
}

func (v *verifier) checkIntegrity(ctx context.Context, db *manifest.DB) error {
	v.checking.Store(true)
	defer v.checking.Store(false)
	check, name := db.QuickCheck, "quick_check"
	if v.opt.Deep {
		check, name = db.IntegrityCheck, "integrity_check"
	}
	ok, problems, err := check(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch {
	case err != nil:
		v.b.Addf(ManifestDBInvalid, "Manifest.db failed the SQLite %s: %s", name, shortErr(err))
	case !ok:
		v.mu.Lock()
		v.b.Add(ManifestDBInvalid, 1, "Manifest.db failed the SQLite "+name, problems...)
		v.mu.Unlock()
	}
	return nil
}

// row checks one index row against the device's rules and files it for
// the merge. It runs on the scanning goroutine only.
func (v *verifier) row(r *manifest.Row) error {
	v.counts.RowsRead++
	if v.opt.Progress != nil && v.counts.RowsRead%16384 == 0 {
		v.opt.Progress(v.counts.RowsRead, 0, 0, 0)
	}
	where := func() string { return string(r.Domain) + "/" + string(r.RelativePath) }
	var fi manifest.FileInfo
	fileErr := manifest.ReadMBFile(r.File, &fi)
	id, idOK := parseFileID(r.FileID)
	flags := r.Flags
	switch {
	case r.TypeError() != nil:
		v.addRecord(RecordInvalid, r.TypeError().Error(), where())
	case r.FlagsNull || (flags != 1 && flags != 2 && flags != 4):
		v.addRecord(RecordInvalid, fmt.Sprintf("flags %s", flagsText(r)), where())
	case fileErr != nil:
		v.addRecord(RecordInvalid, "undecodable file record", where())
	case flags != 1 && fi.HasSize && fi.Size != 0:
		v.addRecord(RecordInvalid, "a folder or link with a non-zero size", where())
	case flags == 4 && !fi.HasTarget:
		v.addRecord(RecordInvalid, "a symbolic link without a target", where())
	case fi.HasMode && !modeMatches(fi.Mode, flags):
		v.addRecord(RecordInvalid, "the mode does not match the flags", where())
	}
	if !idOK {
		v.addRecord(FileIDInvalid, "", where())
	} else if want := fileIDOf(r.Domain, r.RelativePath); want != id {
		v.addRecord(FileIDMismatch, "", where())
	}
	if flags != 1 || r.FlagsNull {
		return nil
	}
	v.counts.FilesListed++
	size := int64(-1)
	if fileErr == nil && fi.HasSize {
		size = fi.Size
		v.counts.BytesListed += fi.Size
	}
	if idOK {
		v.scanned[id[0]].add(listed{id: id, size: size})
	}
	return nil
}

func flagsText(r *manifest.Row) string {
	if r.FlagsNull {
		return "missing"
	}
	return fmt.Sprint(r.Flags)
}

// addRecord counts a per-row finding with the row as an example.
func (v *verifier) addRecord(c Code, detail, where string) {
	msg := map[Code]string{
		RecordInvalid:  "index rows break the device's rules",
		FileIDInvalid:  "index rows have a fileID that is not 40 hex characters (never used as a path)",
		FileIDMismatch: "index rows have a fileID that is not sha1(domain-relativePath)",
	}[c]
	ex := where
	if detail != "" {
		ex += " (" + detail + ")"
	}
	v.mu.Lock()
	v.b.Add(c, 1, msg, ex)
	v.mu.Unlock()
}

// modeMatches reports whether a file mode's type agrees with the row's flags.
func modeMatches(mode int64, flags int64) bool {
	switch mode & 0xF000 {
	case 0x8000:
		return flags == 1
	case 0x4000:
		return flags == 2
	case 0xA000:
		return flags == 4
	}
	return false
}

// parseFileID accepts exactly 40 lowercase hex characters: the only form
// the device writes, and the only one mbaudit ever turns into a path. It
// runs for every row and every blob, so it decodes by table in one pass.
func parseFileID(s []byte) (id [20]byte, ok bool) {
	if len(s) != 40 {
		return id, false
	}
	for i := 0; i < 20; i++ {
		hi, lo := hexVal[s[2*i]], hexVal[s[2*i+1]]
		if hi|lo == 0xff {
			return id, false
		}
		id[i] = hi<<4 | lo
	}
	return id, true
}

// hexVal maps a lowercase hex digit to its value and anything else to 0xff
// (so that hi|lo == 0xff catches either being invalid).
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

func fileIDOf(domain, path []byte) [20]byte {
	h := sha1.New()
	h.Write(domain)
	h.Write([]byte{'-'})
	h.Write(path)
	var id [20]byte
	h.Sum(id[:0])
	return id
}

// cmpID orders fileIDs as bytes.Compare does, a word at a time: the sorts
// and the merge compare each fileID some twenty times.
func cmpID(a, b *[20]byte) int {
	if x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); x != y {
		return cmp.Compare(x, y)
	}
	if x, y := binary.BigEndian.Uint64(a[8:16]), binary.BigEndian.Uint64(b[8:16]); x != y {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(binary.BigEndian.Uint32(a[16:]), binary.BigEndian.Uint32(b[16:]))
}

// sortScratch holds the scratch space of the folder workers' sorts.
var sortScratch = sync.Pool{New: func() any { return new([]listed) }}

// sortByID sorts the entries of one prefix folder by fileID: their first
// bytes are equal, so a counting pass on the second byte leaves runs of a
// few entries to finish by insertion. tmp is scratch space, grown as needed.
func sortByID(s []listed, tmp *[]listed) {
	if len(s) < 256 {
		slices.SortFunc(s, func(a, b listed) int { return cmpID(&a.id, &b.id) })
		return
	}
	var at [257]int
	first := s[0].id[0]
	for i := range s {
		if s[i].id[0] != first {
			slices.SortFunc(s, func(a, b listed) int { return cmpID(&a.id, &b.id) })
			return
		}
		at[int(s[i].id[1])+1]++
	}
	for k := 1; k < len(at); k++ {
		at[k] += at[k-1]
	}
	if cap(*tmp) < len(s) {
		*tmp = make([]listed, len(s))
	}
	t := (*tmp)[:len(s)]
	next := at
	for i := range s {
		k := s[i].id[1]
		t[next[k]] = s[i]
		next[k]++
	}
	copy(s, t)
	for k := 0; k < 256; k++ {
		run := s[at[k]:at[k+1]]
		if len(run) > 16 {
			slices.SortFunc(run, func(a, b listed) int { return cmpID(&a.id, &b.id) })
			continue
		}
		for i := 1; i < len(run); i++ {
			for j := i; j > 0 && cmpID(&run[j-1].id, &run[j].id) > 0; j-- {
				run[j-1], run[j] = run[j], run[j-1]
			}
		}
	}
}

// listedChunks holds one prefix's listed files in chunks that are filled,
// never grown: no copying as the scan goes, and little room unused.
type listedChunks struct {
	chunks [][]listed
	n      int
}

func (c *listedChunks) add(l listed) {
	if k := len(c.chunks) - 1; k >= 0 && len(c.chunks[k]) < cap(c.chunks[k]) {
		c.chunks[k] = append(c.chunks[k], l)
	} else {
		// 16, 32, ... 512 entries: small backups stay small.
		c.chunks = append(c.chunks, append(make([]listed, 0, 16<<min(len(c.chunks), 5)), l))
	}
	c.n++
}

// folderListing is the sorted content of one prefix folder.
type folderListing struct {
	blobs []onDisk
	// odd holds names that are not blobs of this folder (not 40 hex, in
	// the wrong folder, or not regular files), as paths in the backup.
	odd      []string
	oddBytes int64
}

// listFolders reads the 256 prefix folders (or, for the legacy layout, the
// backup folder) in parallel, with each blob's length.
func (v *verifier) listFolders(ctx context.Context, out *[256]folderListing) error {
	if v.flat {
		return v.listFlat(ctx, out)
	}
	jobs := v.opt.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs()
	}
	// While quick_check runs beside the scan and the workers, and they are
	// more than the CPUs, the last worker waits: the scan, the longest of
	// the three, then gets more of the CPUs, and they all end about
	// together.
	holdLast := jobs > 1 && jobs+2 > runtime.GOMAXPROCS(0)
	var next atomic.Int32
	g, gctx := errgroup.WithContext(ctx)
	for w := 0; w < jobs; w++ {
		g.Go(func() error {
			for {
				for holdLast && w == jobs-1 && v.checking.Load() && next.Load() < 256 && gctx.Err() == nil {
					time.Sleep(2 * time.Millisecond)
				}
				if gctx.Err() != nil {
					return gctx.Err()
				}
				i := int(next.Add(1)) - 1
				if i >= 256 {
					return nil
				}
				out[i] = v.listFolder(byte(i))
			}
		})
	}
	return g.Wait()
}

func (v *verifier) listFolder(prefix byte) folderListing {
	var fl folderListing
	name := hex.EncodeToString([]byte{prefix})
	dir := filepath.Join(v.b.Path, name)
	f, err := os.Open(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			v.unreadable(name, err)
		}
		return fl
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		v.unreadable(name, err)
	}
	fl.blobs = make([]onDisk, 0, len(names))
	fd := int(f.Fd())
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			v.unreadable(name+"/"+n, err)
			continue
		}
		id, ok := parseFileID([]byte(n))
		if !ok || id[0] != prefix || uint32(st.Mode)&unix.S_IFMT != unix.S_IFREG {
			fl.odd = append(fl.odd, name+"/"+n)
			fl.oddBytes += st.Size
			continue
		}
		fl.blobs = append(fl.blobs, onDisk{id: id, size: st.Size})
	}
	tmp := sortScratch.Get().(*[]listed)
	sortByID(fl.blobs, tmp)
	sortScratch.Put(tmp)
	return fl
}

// listFlat reads the legacy layout: 40-hex blobs beside the plists.
func (v *verifier) listFlat(ctx context.Context, out *[256]folderListing) error {
	f, err := os.Open(v.b.Path)
	if err != nil {
		v.unreadable(".", err)
		return nil
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		v.unreadable(".", err)
	}
	fd := int(f.Fd())
	for i, n := range names {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		id, ok := parseFileID([]byte(n))
		if !ok {
			continue // plists, the index and other files of the folder
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			v.unreadable(n, err)
			continue
		}
		if uint32(st.Mode)&unix.S_IFMT != unix.S_IFREG {
			out[id[0]].odd = append(out[id[0]].odd, n)
			continue
		}
		out[id[0]].blobs = append(out[id[0]].blobs, onDisk{id: id, size: st.Size})
	}
	var tmp []listed
	for i := range out {
		sortByID(out[i].blobs, &tmp)
	}
	return nil
}

func (v *verifier) unreadable(what string, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.b.Add(BackupUnreadable, 1, "parts of the backup folder could not be read", what+": "+describeIOError(err))
}

// blobPath is where a listed file's blob lives.
func (v *verifier) blobPath(id [20]byte) string {
	name := hex.EncodeToString(id[:])
	if v.flat {
		return filepath.Join(v.b.Path, name)
	}
	return filepath.Join(v.b.Path, name[:2], name)
}

func (v *verifier) relBlob(id [20]byte) string {
	name := hex.EncodeToString(id[:])
	if v.flat {
		return name
	}
	return name[:2] + "/" + name
}

// merge walks each folder's sorted blobs beside the sorted listed files.
func (v *verifier) merge(folders *[256]folderListing) {
	var tmp, scratch []listed
	var orphans []string
	var orphanCount, orphanBytes int64
	for p := 0; p < 256; p++ {
		want := v.buckets[p]
		if sc := &v.scanned[p]; sc.n > 0 {
			// --deep keeps the files (in a slice of their own); otherwise
			// they are only needed for this folder.
			if v.opt.Deep {
				want = slices.Grow(want, sc.n)
			} else {
				want = append(scratch[:0], want...)
			}
			for _, c := range sc.chunks {
				want = append(want, c...)
			}
			*sc = listedChunks{}
			if v.opt.Deep {
				v.buckets[p] = want
			} else {
				scratch = want
			}
		}
		sortByID(want, &tmp)
		have := folders[p].blobs
		i, j := 0, 0
		for i < len(want) || j < len(have) {
			var c int
			switch {
			case i == len(want):
				c = 1
			case j == len(have):
				c = -1
			default:
				c = cmpID(&want[i].id, &have[j].id)
			}
			switch {
			case c < 0:
				v.counts.FilesChecked++
				v.note(FileMissing, want[i].id)
				i++
			case c > 0:
				orphanCount++
				orphanBytes += have[j].size
				if len(orphans) < MaxExamples {
					orphans = append(orphans, v.relBlob(have[j].id))
				}
				j++
			default:
				v.counts.FilesChecked++
				v.checkSize(want[i], have[j].size)
				i++
				j++
			}
		}
		for _, odd := range folders[p].odd {
			orphanCount++
			if len(orphans) < MaxExamples {
				orphans = append(orphans, odd)
			}
		}
		orphanBytes += folders[p].oddBytes
		// Keep only what --deep reads; let the rest go.
		if !v.opt.Deep {
			v.buckets[p] = nil
		}
		folders[p] = folderListing{}
	}
	if orphanCount > 0 {
		v.b.Add(FileOrphan, int(orphanCount),
			fmt.Sprintf("blobs on disk that the index does not list (%d bytes reclaimable)", orphanBytes), orphans...)
	}
	v.b.Usage.OrphanBytes = orphanBytes
}

// checkSize compares a blob's length with the listed size: exact for plain
// backups, the PKCS#7-padded size for encrypted ones. A size that was not
// recorded is never a mismatch.
func (v *verifier) checkSize(l listed, onDisk int64) {
	if v.b.Encrypted {
		if onDisk%16 != 0 {
			v.note(FilePaddingInvalid, l.id)
			return
		}
		if l.size >= 0 && onDisk != (l.size/16+1)*16 {
			v.note(FileSizeMismatch, l.id)
		}
		return
	}
	if l.size >= 0 && onDisk != l.size {
		v.note(FileSizeMismatch, l.id)
	}
}

var fileMessages = map[Code]string{
	FileMissing:        "listed files have no blob",
	FileSizeMismatch:   "blobs differ in length from the listed size",
	FilePaddingInvalid: "encrypted blobs whose length is not a multiple of 16",
	FileUnreadable:     "blobs could not be read to their end",
	FileDigestMismatch: "blobs do not match the digest the index records",
	RecordInvalid:      "index rows break the device's rules",
}

// note counts a per-file finding; its examples are named after the scan.
func (v *verifier) note(c Code, id [20]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if f := v.b.Finding(c); f != nil {
		f.Count++
	} else {
		v.b.Add(c, 1, fileMessages[c])
	}
	if len(v.examples[c]) < MaxExamples {
		v.examples[c] = append(v.examples[c], id)
	}
}

// nameExamples turns the fileIDs noted as examples into domain/path names,
// asking the index once for all of them.
func (v *verifier) nameExamples(lookup func(ids map[string]bool) map[string]string) {
	ids := map[string]bool{}
	for _, list := range v.examples {
		for _, id := range list {
			ids[hex.EncodeToString(id[:])] = true
		}
	}
	if len(ids) == 0 {
		return
	}
	names := lookup(ids)
	for c, list := range v.examples {
		f := v.b.Finding(c)
		for _, id := range list {
			h := hex.EncodeToString(id[:])
			if n, ok := names[h]; ok {
				f.Examples = append(f.Examples, n)
			} else {
				f.Examples = append(f.Examples, v.relBlob(id))
			}
		}
	}
}

// deep reads every listed blob that is on disk to its end, in parallel, and
// checks legacy digests.
func (v *verifier) deep(ctx context.Context) error {
	if !v.opt.Deep {
		return nil
	}
	total, totalBytes := v.deepTotals()
	jobs := v.opt.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for p := range v.buckets {
		g.Go(func() error {
			buf := make([]byte, 256<<10)
			for _, l := range v.buckets[p] {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				v.readBlob(l, buf)
				v.blobDone(total, totalBytes)
			}
			return nil
		})
	}
	err := g.Wait()
	v.counts.BytesRead = v.doneB.Load()
	return err
}

// blobDone counts a blob --deep has read and reports progress now and then.
func (v *verifier) blobDone(total, totalBytes int64) {
	v.done.Add(1)
	if v.opt.Progress == nil {
		return
	}
	v.progMu.Lock()
	defer v.progMu.Unlock()
	if time.Since(v.progLast) > 100*time.Millisecond {
		v.progLast = time.Now()
		v.opt.Progress(v.done.Load(), total, v.doneB.Load(), totalBytes)
	}
}

// openBlob opens a listed file's blob for --deep. A blob that is not there
// was already counted as file-missing; one that cannot be opened is noted
// as file-unreadable. Either way it returns nil.
func (v *verifier) openBlob(id [20]byte) io.ReadCloser {
	open := v.opt.openBlob
	if open == nil {
		open = func(p string) (io.ReadCloser, error) { return os.Open(p) }
	}
	f, err := open(v.blobPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		v.note(FileUnreadable, id)
		return nil
	}
	return f
}

func (v *verifier) readBlob(l listed, buf []byte) {
	f := v.openBlob(l.id)
	if f == nil {
		return
	}
	defer f.Close()
	h := sha1.New()
	var w io.Writer = io.Discard
	want, hasDigest := v.digests[l.id]
	if hasDigest {
		w = h
	}
	n, err := io.CopyBuffer(w, struct{ io.Reader }{f}, buf)
	v.doneB.Add(n)
	if err != nil {
		v.note(FileUnreadable, l.id)
		return
	}
	if hasDigest && !bytes.Equal(h.Sum(nil), want[:]) {
		v.note(FileDigestMismatch, l.id)
	}
}

// verifyOpaque checks what an encrypted index leaves checkable without the
// password: the blobs are there and each is a whole number of AES blocks.
func (v *verifier) verifyOpaque(ctx context.Context) error {
	var folders [256]folderListing
	if err := v.listFolders(ctx, &folders); err != nil {
		return err
	}
	var bad []string
	var badCount int
	for p := range folders {
		for _, blob := range folders[p].blobs {
			v.counts.BlobsSeen++
			if blob.size%16 != 0 {
				badCount++
				if len(bad) < MaxExamples {
					bad = append(bad, v.relBlob(blob.id))
				}
			}
		}
	}
	if badCount > 0 {
		v.b.Add(FilePaddingInvalid, badCount, fileMessages[FilePaddingInvalid], bad...)
	}
	return nil
}
