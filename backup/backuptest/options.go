package backuptest

import (
	"fmt"
	"time"
)

// Option changes the backup Write produces.
type Option func(*spec)

// PlistName names one of the three top-level plists.
type PlistName int

// The plists a backup folder holds.
const (
	InfoPlist PlistName = iota
	ManifestPlist
	StatusPlist
)

func (p PlistName) String() string {
	switch p {
	case InfoPlist:
		return "Info.plist"
	case ManifestPlist:
		return "Manifest.plist"
	case StatusPlist:
		return "Status.plist"
	}
	return fmt.Sprintf("PlistName(%d)", int(p))
}

// plistDefect says how a plist is broken.
type plistDefect int

const (
	plistOK plistDefect = iota
	plistMissing
	plistEmpty
	plistGarbage
	plistTruncated
	plistWrongType
	plistWrongTopLevel
)

// RecordKind names a way an index row breaks the device's rules.
type RecordKind int

// The kinds of invalid index rows InvalidRecords can write.
const (
	// RecordUndecodable is a regular-file row whose file column is not a
	// plist (a real MBFile archive cut in half). Its blob is on disk.
	RecordUndecodable RecordKind = iota + 1
	// RecordUnknownFlags is a row with flags 8 (no regular-file bit), so no blob.
	RecordUnknownFlags
	// RecordDirWithSize is a directory row whose MBFile has a non-zero Size.
	RecordDirWithSize
	// RecordSymlinkNoTarget is a symlink row whose MBFile has no Target.
	RecordSymlinkNoTarget
)

func (k RecordKind) String() string {
	switch k {
	case RecordUndecodable:
		return "undecodable"
	case RecordUnknownFlags:
		return "unknown-flags"
	case RecordDirWithSize:
		return "dir-with-size"
	case RecordSymlinkNoTarget:
		return "symlink-no-target"
	}
	return fmt.Sprintf("RecordKind(%d)", int(k))
}

type plistFormat int

const (
	formatDefault plistFormat = iota // Info.plist XML, the others binary
	formatXML
	formatBinary
)

// spec is everything the options decide.
type spec struct {
	seed       int64
	udid       string
	oldUDID    bool
	dated      time.Time
	device     *deviceInfo
	date       time.Time
	modTime    time.Time
	files      int
	minSize    int64
	maxSize    int64
	sizesSet   bool
	legacy     bool
	format     plistFormat
	encrypted  bool
	password   string
	dpRounds   int // keybag DPIC; 0: the default (none for Legacy)
	rounds     int // keybag ITER; 0: the default
	altered    int
	leftover   bool
	linkFrom   *Backup
	rootIndex  int
	plists     [3]plistDefect
	snapState  *string
	backState  *string
	snapDir    int
	noIndex    bool
	garbageIdx bool
	indexDir   bool
	noFiles    bool
	dropCol    string
	corruptIdx bool
	garbMbdb   bool
	truncMbdb  bool
	noKeybag   bool
	noManKey   bool
	flagMism   bool
	records    []RecordKind
	badIDs     int
	idMism     int
	missing    int
	sizeMism   int
	badPad     int
	digestMism int
	orphans    int
	noSize     int
	udidMism   bool
	errs       []error
}

func (s *spec) errorf(format string, args ...any) {
	s.errs = append(s.errs, fmt.Errorf(format, args...))
}

func count(s *spec, name string, n int) int {
	if n < 0 {
		s.errorf("%s(%d): negative count", name, n)
		return 0
	}
	return n
}

// Seed makes every pseudo-random choice (paths, sizes, contents, which rows a
// defect hits) follow from seed. The default is 1.
func Seed(seed int64) Option { return func(s *spec) { s.seed = seed } }

// UDID names the device (and the folder). The default is a new-style
// 8hex-16hex uppercase UDID derived from the seed.
func UDID(udid string) Option { return func(s *spec) { s.udid = udid } }

// OldUDID makes the default UDID the pre-2018 form: 40 lowercase hex.
func OldUDID() Option { return func(s *spec) { s.oldUDID = true } }

// DatedCopy writes the copy the device makes of a backup during a restore
// at t: folder <UDID>-YYYYMMDD-HHMMSS (t in its own location), Info.plist
// Target Identifier set to that name and " - <date>" added to Display Name.
func DatedCopy(t time.Time) Option { return func(s *spec) { s.dated = t } }

// Device sets the device name, product type (e.g. "iPhone14,5"), iOS version
// and build. The default depends on the seed (an iOS 9 device with Legacy).
func Device(name, productType, iosVersion, build string) Option {
	return func(s *spec) {
		s.device = &deviceInfo{Name: name, ProductType: productType, Version: iosVersion, Build: build}
	}
}

// Date sets when the backup finished (Status.plist Date). The default is a
// fixed time in 2024 derived from the seed, never the clock.
func Date(t time.Time) Option { return func(s *spec) { s.date = t } }

// ModTime sets the modification time of every file and folder written. The
// default is the backup's Date.
func ModTime(t time.Time) Option { return func(s *spec) { s.modTime = t } }

// Files sets the number of regular files (flags 1 rows); directories and
// symlinks come on top, roughly as in a real backup. The default is 200.
func Files(n int) Option { return func(s *spec) { s.files = count(s, "Files", n) } }

// FileSizes makes file sizes uniform in [min, max]. By default most files
// are 0 to 8 KiB (some 0 bytes) and about one in 500 is 64 KiB to 1 MiB.
func FileSizes(min, max int64) Option {
	return func(s *spec) {
		if min < 0 || max < min {
			s.errorf("FileSizes(%d, %d): need 0 <= min <= max", min, max)
			return
		}
		s.minSize, s.maxSize, s.sizesSet = min, max, true
	}
}

// Legacy writes the iOS 5-9 layout: Manifest.mbdb, blobs flat in the folder,
// no Manifest.db and no 00-ff folders.
func Legacy() Option { return func(s *spec) { s.legacy = true } }

// XMLPlists writes all three plists as XML.
func XMLPlists() Option { return func(s *spec) { s.format = formatXML } }

// BinaryPlists writes all three plists as binary plists.
func BinaryPlists() Option { return func(s *spec) { s.format = formatBinary } }

// Encrypted writes an encrypted backup as the device does, with the
// password TestPassword (or the one Password gives): IsEncrypted, a
// BackupKeyBag whose class keys are wrapped with the key derived from the
// password, a ManifestKey, Manifest.db encrypted with it (AES-256-CBC, zero
// IV, PKCS#7) and each blob encrypted with a key of its own, wrapped in its
// row's EncryptionKey. The keybag asks for few PBKDF2 rounds (see
// KeybagRounds) so that tests stay fast. With Legacy the index stays plain
// (as before iOS 10.2) and the keybag has only the SHA-1 step.
func Encrypted() Option { return func(s *spec) { s.encrypted = true } }

// TestPassword is the password of Encrypted backups unless Password says
// otherwise.
const TestPassword = "mbaudit-test-password"

// Default keybag rounds of generated encrypted backups: real keybags ask
// for 10,000,000 and 10,000.
const (
	DefaultDPRounds = 100
	DefaultRounds   = 10
)

// Password sets the backup password (implies Encrypted).
func Password(pw string) Option { return func(s *spec) { s.encrypted, s.password = true, pw } }

// KeybagRounds sets the keybag's PBKDF2 round counts: dp for the SHA-256
// step (DPIC; ignored with Legacy, whose keybags have none) and rounds for
// the SHA-1 step (ITER). Implies Encrypted.
func KeybagRounds(dp, rounds int) Option {
	return func(s *spec) {
		s.encrypted = true
		if dp < 1 || rounds < 1 {
			s.errs = append(s.errs, fmt.Errorf("KeybagRounds(%d, %d): both must be at least 1", dp, rounds))
		}
		s.dpRounds, s.rounds = dp, rounds
	}
}

// AlteredBlobs flips a bit in the second-to-last AES block of n encrypted
// blobs of at least 16 bytes: the length stays right, the content is wrong
// and its padding no longer decodes, which only a --deep check with the
// password can see (implies Encrypted).
func AlteredBlobs(n int) Option {
	return func(s *spec) { s.encrypted, s.altered = true, count(s, "AlteredBlobs", n) }
}

// LeftoverWAL leaves Manifest.db-wal beside Manifest.db holding the last
// rows (committed, never checkpointed), as a copy taken while the device
// still had the database open. Backup.WALRows says how many.
func LeftoverWAL() Option { return func(s *spec) { s.leftover = true } }

// HardLinks makes each blob that is identical to one in from (same fileID,
// same bytes) a hard link to it, as space-saving copy tools do. Linked blobs
// keep the modification time they have in from.
func HardLinks(from *Backup) Option { return func(s *spec) { s.linkFrom = from } }

// RootIndex puts the MBFile object at $objects[n] (n >= 1) of every archived
// row, with placeholder objects before it, so a test can check that a reader
// follows $top.root. Real rows always use 1.
func RootIndex(n int) Option {
	return func(s *spec) {
		if n < 1 {
			s.errorf("RootIndex(%d): need n >= 1", n)
			return
		}
		s.rootIndex = n
	}
}

func plistOption(name string, p PlistName, d plistDefect) Option {
	return func(s *spec) {
		if p < InfoPlist || p > StatusPlist {
			s.errorf("%s(%v): unknown plist", name, p)
			return
		}
		s.plists[p] = d
	}
}

// Missing leaves plist p out.
func Missing(p PlistName) Option { return plistOption("Missing", p, plistMissing) }

// Empty writes plist p as 0 bytes (as pymobiledevice3 leaves Manifest.plist
// during a full backup).
func Empty(p PlistName) Option { return plistOption("Empty", p, plistEmpty) }

// Garbage writes bytes that are not a plist in place of p.
func Garbage(p PlistName) Option { return plistOption("Garbage", p, plistGarbage) }

// Truncated writes p as a binary plist cut short.
func Truncated(p PlistName) Option { return plistOption("Truncated", p, plistTruncated) }

// WrongType writes p with a required key of the wrong type: Info.plist
// Product Type an integer, Manifest.plist IsEncrypted a string, Status.plist
// Date a string.
func WrongType(p PlistName) Option { return plistOption("WrongType", p, plistWrongType) }

// WrongTopLevel writes p as a plist whose top level is an array.
func WrongTopLevel(p PlistName) Option {
	return plistOption("WrongTopLevel", p, plistWrongTopLevel)
}

// SnapshotState sets Status.plist SnapshotState (default "finished"); any
// string is written, valid or not.
func SnapshotState(state string) Option { return func(s *spec) { s.snapState = &state } }

// BackupState sets Status.plist BackupState (default "new").
func BackupState(state string) Option { return func(s *spec) { s.backState = &state } }

// SnapshotDir leaves a Snapshot/ folder with Snapshot/Manifest.plist, the
// 256 prefix folders and n blobs in them, as a backup that could not remove
// it does. Status.plist still says finished: add SnapshotState("uploading")
// for an interrupted backup.
func SnapshotDir(n int) Option { return func(s *spec) { s.snapDir = count(s, "SnapshotDir", n) } }

// NoIndex writes neither Manifest.db nor Manifest.mbdb.
func NoIndex() Option { return func(s *spec) { s.noIndex = true } }

// GarbageIndex writes Manifest.db as random bytes whose length is not a
// multiple of 16 (so it cannot pass for an encrypted index either).
func GarbageIndex() Option { return func(s *spec) { s.garbageIdx = true } }

// IndexIsDir makes Manifest.db a directory.
func IndexIsDir() Option { return func(s *spec) { s.indexDir = true } }

// NoFilesTable writes a valid SQLite Manifest.db without the Files table.
func NoFilesTable() Option { return func(s *spec) { s.noFiles = true } }

// MissingColumn writes the Files table without column name (fileID, domain,
// relativePath, flags or file) and without the indexes on it.
func MissingColumn(name string) Option {
	return func(s *spec) {
		for _, c := range filesColumns {
			if c.name == name {
				s.dropCol = name
				return
			}
		}
		s.errorf("MissingColumn(%q): Files has no such column", name)
	}
}

// CorruptIndexPages overwrites cell pointers inside pages of the
// FilesDomainIdx and FilesRelativePathIdx indexes. The header and the table
// pages are intact, so a full table scan still returns every row, but
// PRAGMA quick_check reports the damage.
func CorruptIndexPages() Option { return func(s *spec) { s.corruptIdx = true } }

// GarbageMbdb writes Manifest.mbdb as random bytes after a valid header
// (implies Legacy).
func GarbageMbdb() Option { return func(s *spec) { s.legacy, s.garbMbdb = true, true } }

// TruncatedMbdb cuts Manifest.mbdb inside its last record (implies Legacy).
// Backup.Rows counts the complete records.
func TruncatedMbdb() Option { return func(s *spec) { s.legacy, s.truncMbdb = true, true } }

// KeybagMissing leaves BackupKeyBag out of Manifest.plist (implies Encrypted).
func KeybagMissing() Option { return func(s *spec) { s.encrypted, s.noKeybag = true, true } }

// ManifestKeyMissing leaves ManifestKey out of Manifest.plist (implies Encrypted).
func ManifestKeyMissing() Option { return func(s *spec) { s.encrypted, s.noManKey = true, true } }

// EncryptionFlagMismatch writes what a decryption tool leaves: the plists of
// an encrypted backup (IsEncrypted, BackupKeyBag, ManifestKey) beside a
// plain SQLite Manifest.db and plain blobs whose rows keep EncryptionKey.
func EncryptionFlagMismatch() Option { return func(s *spec) { s.flagMism = true } }

// InvalidRecords adds one invalid index row per kind given.
func InvalidRecords(kinds ...RecordKind) Option {
	return func(s *spec) {
		for _, k := range kinds {
			if k < RecordUndecodable || k > RecordSymlinkNoTarget {
				s.errorf("InvalidRecords: unknown kind %v", k)
				return
			}
		}
		s.records = append(s.records, kinds...)
	}
}

// InvalidFileIDs gives n file rows a fileID that is not 40 lowercase hex
// characters (too short, too long, uppercase, non-hex, "../../../../etc/passwd",
// "/etc/hosts", ...). No blob is written for them.
func InvalidFileIDs(n int) Option {
	return func(s *spec) { s.badIDs = count(s, "InvalidFileIDs", n) }
}

// FileIDMismatch gives n file rows a 40-hex fileID that is not
// sha1(domain-relativePath); the blob is stored under that fileID.
func FileIDMismatch(n int) Option {
	return func(s *spec) { s.idMism = count(s, "FileIDMismatch", n) }
}

// MissingBlobs leaves the blobs of n listed files out.
func MissingBlobs(n int) Option { return func(s *spec) { s.missing = count(s, "MissingBlobs", n) } }

// SizeMismatch makes n blobs longer or shorter than their listed Size (than
// the padded size when encrypted, by a multiple of 16).
func SizeMismatch(n int) Option {
	return func(s *spec) { s.sizeMism = count(s, "SizeMismatch", n) }
}

// BadPadding makes n encrypted blobs a length that is not a multiple of 16
// (implies Encrypted).
func BadPadding(n int) Option {
	return func(s *spec) { s.encrypted, s.badPad = true, count(s, "BadPadding", n) }
}

// DigestMismatch gives n Manifest.mbdb records a DataHash that does not match
// their blob (implies Legacy).
func DigestMismatch(n int) Option {
	return func(s *spec) { s.legacy, s.digestMism = true, count(s, "DigestMismatch", n) }
}

// Orphans adds n blobs, named like real ones and in the right prefix
// folders, that no row lists.
func Orphans(n int) Option { return func(s *spec) { s.orphans = count(s, "Orphans", n) } }

// MissingSize leaves the Size key out of n file rows' MBFile.
func MissingSize(n int) Option { return func(s *spec) { s.noSize = count(s, "MissingSize", n) } }

// UDIDMismatch writes Info.plist Target Identifier and Unique Identifier of
// another device; the folder and Manifest.plist keep the real UDID.
func UDIDMismatch() Option { return func(s *spec) { s.udidMism = true } }
