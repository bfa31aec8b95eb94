package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mbaudit/mbaudit/backup/manifest"
)

// Options tune an audit.
type Options struct {
	// Now is the clock for busy decisions; tests fix it.
	Now time.Time
	// BusyWindow is how recent a change to an unfinished backup must be for
	// the backup to count as being written now.
	BusyWindow time.Duration
	// Jobs is the number of parallel file-system workers (0: DefaultJobs).
	Jobs int
}

// DefaultBusyWindow is the contract's default for --busy-window.
const DefaultBusyWindow = 10 * time.Minute

// List inspects each candidate the quick way (plists, index header, folder
// sizes; no index rows) and judges its state.
func List(ctx context.Context, cands []Candidate, opt Options, progress func(files int64)) ([]*Backup, error) {
	bs, err := InspectAll(ctx, cands, opt)
	if err != nil {
		return nil, err
	}
	if err := Measure(ctx, bs, opt.Jobs, progress); err != nil {
		return nil, err
	}
	for _, b := range bs {
		b.Judge(opt.Now, opt.BusyWindow)
	}
	return bs, nil
}

// InspectAll inspects each candidate (see Inspect) and judges its state,
// without measuring sizes.
func InspectAll(ctx context.Context, cands []Candidate, opt Options) ([]*Backup, error) {
	bs := make([]*Backup, 0, len(cands))
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := Inspect(c)
		b.Judge(opt.Now, opt.BusyWindow)
		bs = append(bs, b)
	}
	return bs, nil
}

// Inspect reads what a quick look at a backup folder can tell: the three
// plists, the kind of index from its header, a leftover Snapshot/ folder and
// whether the folder is being written. It does not judge the state (see
// Backup.Judge) and does not read index rows.
func Inspect(c Candidate) *Backup {
	id := filepath.Base(filepath.Clean(c.Path))
	udid, copyTime := SplitID(id)
	b := &Backup{Path: c.Path, ID: id, UDID: udid, CopyTime: copyTime, Symlink: c.Symlink, Format: FormatUnknown}

	b.readPlists()
	b.checkSnapshot()
	b.detectIndex()
	b.checkIdentity()
	b.NewestChange = newestChange(b.Path)
	return b
}

func (b *Backup) readPlists() {
	type plistSpec struct {
		name             string
		missing, invalid Code
		parse            func(map[string]any) *plistError
	}
	specs := []plistSpec{
		{"Info.plist", InfoPlistMissing, InfoPlistInvalid, func(d map[string]any) (e *plistError) {
			b.Info, e = parseInfoPlist(d)
			return e
		}},
		{"Manifest.plist", ManifestPlistMissing, ManifestPlistInvalid, func(d map[string]any) (e *plistError) {
			b.Manifest, e = parseManifestPlist(d)
			return e
		}},
		{"Status.plist", StatusPlistMissing, StatusPlistInvalid, func(d map[string]any) (e *plistError) {
			b.Status, e = parseStatusPlist(d)
			return e
		}},
	}
	for _, s := range specs {
		d, perr := readPlistDict(filepath.Join(b.Path, s.name))
		if perr == nil {
			perr = s.parse(d)
		}
		switch {
		case perr == nil:
		case perr.Missing:
			b.Addf(s.missing, "%s is %s", s.name, perr.Reason)
		case perr.Unreadable:
			b.Addf(BackupUnreadable, "could not read %s: %s", s.name, perr.Reason)
		default:
			b.Addf(s.invalid, "%s cannot be used: %s", s.name, perr.Reason)
		}
	}
	if st := b.Status; st != nil {
		if st.SnapshotState != "finished" {
			b.Unfinished = true
			b.Addf(SnapshotUnfinished, "the last backup stopped while %s (SnapshotState %q)", st.SnapshotState, st.SnapshotState)
		}
		if st.BackupState != "new" {
			why := "a restore would refuse it"
			if st.Legacy {
				why = "an iOS 3 era status; the device will start a full backup"
			}
			b.Addf(BackupStateNotNew, "BackupState is %q: %s", st.BackupState, why)
		}
	}
}

func (b *Backup) checkSnapshot() {
	fi, err := os.Lstat(filepath.Join(b.Path, "Snapshot"))
	if err != nil || !fi.IsDir() {
		return
	}
	b.Unfinished = true
	b.Add(SnapshotDirPresent, 1, "a Snapshot folder is left over from an interrupted backup (its bytes are reclaimable)")
}

// detectIndex decides the index format and whether it is encrypted, from the
// evidence of the index itself: IsEncrypted alone is not trusted.
func (b *Backup) detectIndex() {
	dbPath := filepath.Join(b.Path, "Manifest.db")
	mbdbPath := filepath.Join(b.Path, "Manifest.mbdb")
	flag := b.Manifest != nil && b.Manifest.IsEncrypted
	hasKey := b.Manifest != nil && len(b.Manifest.ManifestKey) > 0

	// Stat, not Lstat: a link loop or a broken disk must read as
	// unreadable, not as a missing index.
	fi, err := os.Stat(dbPath)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(dbPath); lerr == nil {
			b.Format = FormatManifestDB
			b.Addf(BackupUnreadable, "could not read Manifest.db: %s", describeIOError(err))
			return
		}
	}
	switch {
	case err == nil:
		b.Format = FormatManifestDB
		if !fi.Mode().IsRegular() {
			b.Addf(ManifestDBInvalid, "Manifest.db is not a regular file")
			return
		}
		kind, err := manifest.Sniff(dbPath)
		if err != nil {
			b.Addf(BackupUnreadable, "could not read Manifest.db: %s", describeIOError(err))
			return
		}
		b.judgeDBKind(kind, flag, hasKey)
		return
	case !errors.Is(err, fs.ErrNotExist):
		b.Addf(BackupUnreadable, "could not read Manifest.db: %s", describeIOError(err))
		return
	}

	fi, err = os.Stat(mbdbPath)
	switch {
	case err == nil:
		b.Format = FormatMbdb
		// The index is plain before iOS 10; the files are encrypted when the
		// flag says so.
		b.Encrypted = flag
		if !fi.Mode().IsRegular() {
			b.Addf(ManifestMbdbInvalid, "Manifest.mbdb is not a regular file")
			return
		}
		ok, err := hasMbdbMagic(mbdbPath)
		if err != nil {
			b.Addf(BackupUnreadable, "could not read Manifest.mbdb: %s", describeIOError(err))
		} else if !ok {
			b.Addf(ManifestMbdbInvalid, "Manifest.mbdb does not start with the mbdb header")
		}
	case errors.Is(err, fs.ErrNotExist):
		b.Add(ManifestDBMissing, 1, "there is no index: neither Manifest.db nor Manifest.mbdb")
	default:
		b.Addf(BackupUnreadable, "could not read Manifest.mbdb: %s", describeIOError(err))
	}
}

func (b *Backup) judgeDBKind(kind manifest.Kind, flag, hasKey bool) {
	switch kind {
	case manifest.KindEmpty:
		b.Add(ManifestDBMissing, 1, "Manifest.db is empty (0 bytes)")
	case manifest.KindSQLite:
		if flag && !hasKey && versionBefore(b.IOSVersion(), 10, 2) {
			// Before iOS 10.2 the index of an encrypted backup is plain
			// and only the files are encrypted.
			b.Encrypted = true
			return
		}
		if flag || hasKey {
			b.Add(EncryptionFlagMismatch, 1, "Manifest.plist says encrypted but Manifest.db is plain SQLite (a decrypted copy?); files are checked as plain")
		}
	case manifest.KindEncrypted:
		if !flag && !hasKey {
			b.Add(ManifestDBInvalid, 1, "Manifest.db is not SQLite and nothing says the backup is encrypted")
			return
		}
		b.Encrypted, b.IndexEncrypted = true, true
		if !flag {
			b.Add(EncryptionFlagMismatch, 1, "Manifest.db is encrypted but Manifest.plist says IsEncrypted false")
		}
		if b.Manifest == nil || len(b.Manifest.BackupKeyBag) == 0 || !hasKey {
			b.Add(KeybagMissing, 1, "the index is encrypted but Manifest.plist has no BackupKeyBag or ManifestKey: it can never be decrypted")
		}
		b.Add(ManifestEncrypted, 1, "the index is encrypted: file-level checks need the backup password")
	default:
		b.Add(ManifestDBInvalid, 1, "Manifest.db is neither SQLite nor an encrypted index")
	}
}

var mbdbMagic = []byte("mbdb\x05\x00")

func hasMbdbMagic(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, len(mbdbMagic))
	if _, err := io.ReadFull(f, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		return false, err
	}
	return bytes.Equal(head, mbdbMagic), nil
}

// checkIdentity compares Info.plist's identifiers with the folder name.
func (b *Backup) checkIdentity() {
	if b.Info == nil {
		return
	}
	for _, v := range []struct{ key, val string }{
		{"Target Identifier", b.Info.TargetIdentifier},
		{"Unique Identifier", b.Info.UniqueIdentifier},
	} {
		if v.val == "" || strings.EqualFold(v.val, b.UDID) || (b.DatedCopy() && strings.EqualFold(v.val, b.ID)) {
			continue
		}
		b.Addf(UDIDMismatch, "Info.plist %s names another device than the folder %s", v.key, b.ID)
		return
	}
}

// newestChange is the newest modification time among the folder and the
// files a backup in progress touches.
func newestChange(dir string) time.Time {
	var newest time.Time
	for _, name := range []string{"", "Status.plist", "Manifest.db", "Manifest.plist", "Snapshot"} {
		if fi, err := os.Lstat(filepath.Join(dir, name)); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	return newest
}

// versionBefore reports whether the dotted version v is lower than
// major.minor; an unknown version is not.
func versionBefore(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	maj, err := strconv.Atoi(parts[0])
	if err != nil {
		return false
	}
	mi := 0
	if len(parts) > 1 {
		mi, _ = strconv.Atoi(parts[1])
	}
	return maj < major || (maj == major && mi < minor)
}
