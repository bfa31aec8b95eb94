package backuptest

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"howett.net/plist"
)

var (
	newUDIDRe = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{16}$`)
	oldUDIDRe = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

type infoPlist struct {
	BuildVersion     string         `plist:"Build Version"`
	DeviceName       string         `plist:"Device Name"`
	DisplayName      string         `plist:"Display Name"`
	GUID             string         `plist:"GUID"`
	IMEI             string         `plist:"IMEI"`
	SerialNumber     string         `plist:"Serial Number"`
	ProductType      string         `plist:"Product Type"`
	ProductVersion   string         `plist:"Product Version"`
	TargetIdentifier string         `plist:"Target Identifier"`
	TargetType       string         `plist:"Target Type"`
	UniqueIdentifier string         `plist:"Unique Identifier"`
	LastBackupDate   time.Time      `plist:"Last Backup Date"`
	ITunesVersion    string         `plist:"iTunes Version"`
	Installed        []string       `plist:"Installed Applications"`
	Applications     map[string]any `plist:"Applications"`
}

type manifestPlist struct {
	Version              string
	SystemDomainsVersion string
	Date                 time.Time
	IsEncrypted          bool
	WasPasscodeSet       bool
	BackupKeyBag         []byte
	ManifestKey          []byte
	Lockdown             map[string]any
	Applications         map[string]map[string]any
}

type statusPlist struct {
	Version       string
	UUID          string
	Date          time.Time
	BackupState   string
	SnapshotState string
	IsFullBackup  bool
}

// checkHealthyPlists checks the three plists of a healthy modern backup.
func checkHealthyPlists(t *testing.T, b *Backup) {
	t.Helper()
	var info infoPlist
	if f := readPlist(t, b, "Info.plist", &info); f != plist.XMLFormat {
		t.Errorf("Info.plist format %d, want XML", f)
	}
	if info.TargetIdentifier != b.ID || info.UniqueIdentifier != strings.ToUpper(b.UDID) || info.TargetType != "Device" {
		t.Errorf("Info.plist identifiers %q %q %q (folder %s)", info.TargetIdentifier, info.UniqueIdentifier, info.TargetType, b.ID)
	}
	if info.DeviceName != b.DeviceName || info.DisplayName != b.DeviceName || info.ProductType != b.ProductType ||
		info.ProductVersion != b.ProductVersion || info.BuildVersion != b.BuildVersion || info.SerialNumber != b.SerialNumber {
		t.Errorf("Info.plist device %+v, Backup %+v", info, b)
	}
	if len(info.GUID) != 32 || info.ITunesVersion == "" || !info.LastBackupDate.Before(b.Date) {
		t.Errorf("Info.plist GUID %q iTunes Version %q Last Backup Date %v", info.GUID, info.ITunesVersion, info.LastBackupDate)
	}
	if len(info.Installed) != len(installedApps) || len(info.Applications) != len(installedApps) {
		t.Errorf("Info.plist apps: %v", info.Installed)
	}
	for _, a := range installedApps {
		app, _ := info.Applications[a.bundle].(map[string]any)
		meta, _ := app["iTunesMetadata"].([]byte)
		var m struct {
			ItemName string `plist:"itemName"`
		}
		if _, err := plist.Unmarshal(meta, &m); err != nil || m.ItemName != a.name {
			t.Errorf("iTunesMetadata of %s: %q, %v", a.bundle, m.ItemName, err)
		}
	}

	var man manifestPlist
	if f := readPlist(t, b, "Manifest.plist", &man); f != plist.BinaryFormat {
		t.Errorf("Manifest.plist format %d, want binary", f)
	}
	if man.Version != "10.0" || man.SystemDomainsVersion != "24.0" || man.IsEncrypted || !man.WasPasscodeSet ||
		!man.Date.Before(b.Date) || len(man.Applications) == 0 {
		t.Errorf("Manifest.plist %+v", man)
	}
	want := map[string]string{"ProductVersion": b.ProductVersion, "ProductType": b.ProductType, "BuildVersion": b.BuildVersion,
		"UniqueDeviceID": b.UDID, "SerialNumber": b.SerialNumber, "DeviceName": b.DeviceName}
	for k, v := range want {
		if man.Lockdown[k] != v {
			t.Errorf("Manifest.plist Lockdown %s = %v, want %q", k, man.Lockdown[k], v)
		}
	}
	if man.BackupKeyBag != nil || man.ManifestKey != nil {
		t.Error("plain backup has a keybag")
	}

	var st statusPlist
	if f := readPlist(t, b, "Status.plist", &st); f != plist.BinaryFormat {
		t.Errorf("Status.plist format %d, want binary", f)
	}
	if st.Version != "3.3" || len(st.UUID) != 36 || !st.Date.Equal(b.Date) || st.BackupState != "new" ||
		st.SnapshotState != "finished" || st.IsFullBackup {
		t.Errorf("Status.plist %+v", st)
	}
}

// checkIndexHealthy checks Manifest.db as SQLite: header, schema, integrity
// and every row's MBFile.
func checkIndexHealthy(t *testing.T, b *Backup) {
	t.Helper()
	db := filepath.Join(b.Path, "Manifest.db")
	head := make([]byte, 100)
	f, err := os.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(head); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if string(head[:16]) != "SQLite format 3\x00" || head[18] != 2 || head[19] != 2 {
		t.Errorf("Manifest.db header %q, bytes 18-19 = %d %d, want WAL (2 2)", head[:16], head[18], head[19])
	}
	for _, side := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(db + side); err == nil && !(side == "-wal" && b.WALRows > 0) {
			t.Errorf("Manifest.db%s left beside the index", side)
		}
	}
	conn := openIndex(t, b)
	schema := pragma(t, conn, "SELECT type || ' ' || name || ' ' || rootpage || ' ' || ifnull(sql, '') FROM sqlite_master ORDER BY rowid")
	wantSchema := strings.Join([]string{
		"table Files 3 CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB)",
		"index sqlite_autoindex_Files_1 4 ",
		"index FilesDomainIdx 5 CREATE INDEX FilesDomainIdx ON Files(domain)",
		"index FilesRelativePathIdx 6 CREATE INDEX FilesRelativePathIdx ON Files(relativePath)",
		"index FilesFlagsIdx 7 CREATE INDEX FilesFlagsIdx ON Files(flags)",
		"table Properties 8 CREATE TABLE Properties (key TEXT PRIMARY KEY, value BLOB)",
		"index sqlite_autoindex_Properties_1 9 ",
	}, "\n")
	if schema != wantSchema {
		t.Errorf("schema:\n%s\nwant:\n%s", schema, wantSchema)
	}
	for _, q := range []string{"PRAGMA integrity_check", "PRAGMA quick_check"} {
		if got := pragma(t, conn, q); got != "ok" {
			t.Errorf("%s: %s", q, got)
		}
	}
	if got := pragma(t, conn, "SELECT count(*) FROM Properties"); got != "0" {
		t.Errorf("Properties has %s rows", got)
	}
	if got := pragma(t, conn, "PRAGMA auto_vacuum") + " " + pragma(t, conn, "PRAGMA user_version") + " " + pragma(t, conn, "PRAGMA page_size"); got != "2 2 4096" {
		t.Errorf("auto_vacuum user_version page_size = %s", got)
	}
	rows := readRows(t, conn)
	if len(rows) != b.Rows {
		t.Fatalf("%d rows, want %d", len(rows), b.Rows)
	}
	var nf, nd, nl int
	for _, r := range rows {
		if r.mb == nil {
			t.Fatalf("%s/%s: MBFile does not decode", r.domain, r.path)
		}
		if r.fileID != sha1Hex(r.domain, r.path) {
			t.Errorf("%s/%s: fileID %s is not the SHA-1", r.domain, r.path, r.fileID)
		}
		if r.mb.RelativePath != r.path || r.mb.Root != 1 {
			t.Errorf("%s: RelativePath %q root %d", r.path, r.mb.RelativePath, r.mb.Root)
		}
		typ := map[int64]int64{1: 0o100000, 2: 0o40000, 4: 0o120000}[r.flags]
		if r.mb.Mode&0o170000 != typ {
			t.Errorf("%s: flags %d but mode %o", r.path, r.flags, r.mb.Mode)
		}
		switch r.flags {
		case 1:
			nf++
			if r.mb.HasTarget || r.mb.NoSize {
				t.Errorf("%s: file with Target or without Size", r.path)
			}
		case 2:
			nd++
			if r.mb.Size != 0 || r.mb.Digest != nil || r.mb.EncryptionKey != nil {
				t.Errorf("%s: directory with size %d", r.path, r.mb.Size)
			}
		case 4:
			nl++
			if r.mb.Size != 0 || !r.mb.HasTarget || !strings.HasPrefix(r.mb.Target, "/") {
				t.Errorf("%s: symlink size %d target %q", r.path, r.mb.Size, r.mb.Target)
			}
		}
		if r.mb.GroupID == 0 && r.mb.UserID == 0 && r.flags == 4 {
			t.Errorf("%s: symlink owned by root", r.path)
		}
	}
	if nf != len(b.Files) || nd != b.Dirs || nl != b.Symlinks {
		t.Errorf("rows: %d files %d dirs %d symlinks, Backup says %d %d %d", nf, nd, nl, len(b.Files), b.Dirs, b.Symlinks)
	}
}

// checkModTimes checks that every file and folder has the given mtime.
func checkModTimes(t *testing.T, root string, want time.Time) {
	t.Helper()
	bad := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !info.ModTime().Equal(want) {
			if bad++; bad <= 3 {
				t.Errorf("%s: mtime %v, want %v", p, info.ModTime(), want)
			}
		}
		return nil
	})
}

func TestHealthyDefault(t *testing.T) {
	t.Parallel()
	root := tempDir(t)
	b := MustWrite(t, root, Files(600))
	if !newUDIDRe.MatchString(b.UDID) || b.ID != b.UDID || b.Path != filepath.Join(root, b.ID) {
		t.Errorf("UDID %q ID %q Path %q", b.UDID, b.ID, b.Path)
	}
	checkHealthyPlists(t, b)
	checkIndexHealthy(t, b)
	checkAudit(t, b)
	checkModTimes(t, b.Path, b.Date)

	ents, err := os.ReadDir(b.Path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	prefixes := 0
	for _, e := range ents {
		if e.IsDir() && len(e.Name()) == 2 && isHex(e.Name()) {
			prefixes++
			continue
		}
		names = append(names, e.Name())
	}
	if prefixes != 256 || !slices.Equal(names, []string{"Info.plist", "Manifest.db", "Manifest.plist", "Status.plist"}) {
		t.Errorf("folder holds %d prefix folders and %q", prefixes, names)
	}

	domains := map[string]bool{}
	zero, nonASCII := 0, 0
	for _, f := range b.Files {
		domains[f.Domain] = true
		if f.Size == 0 {
			zero++
		}
		if !isASCII(f.RelativePath) {
			nonASCII++
		}
		if f.Blob != f.Size {
			t.Errorf("%s: blob %d, size %d", f.Name(), f.Blob, f.Size)
		}
	}
	if zero == 0 || nonASCII == 0 || len(domains) < 15 {
		t.Errorf("%d 0-byte files, %d non-ASCII paths, %d domains", zero, nonASCII, len(domains))
	}
	for _, d := range []string{"HomeDomain", "CameraRollDomain", "MediaDomain", "AppDomain-net.whatsapp.WhatsApp",
		"AppDomainGroup-group.net.whatsapp.WhatsApp.shared", "AppDomain-com.google.chrome.ios"} {
		if !domains[d] {
			t.Errorf("no files in %s", d)
		}
	}
	if b.Symlinks == 0 || b.Dirs < len(b.Files)/4 || b.Dirs > 2*len(b.Files) {
		t.Errorf("%d files, %d folders, %d symlinks", len(b.Files), b.Dirs, b.Symlinks)
	}
	if b.Rows != len(b.Files)+b.Dirs+b.Symlinks {
		t.Errorf("Rows %d", b.Rows)
	}
}

// treeDigest describes every file and folder under root: path, mode, mtime, bytes.
func treeDigest(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil // the test's own folder
		}
		info, _ := d.Info()
		line := fmt.Sprintf("%s %v %d", rel, info.Mode(), info.ModTime().UnixNano())
		if !d.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			line += fmt.Sprintf(" %x", sha1.Sum(data))
		}
		out = append(out, line)
		return nil
	})
	return out
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	cases := map[string][]Option{
		"default":   {Seed(7), Files(400)},
		"defects":   {Seed(8), Files(120), MissingBlobs(3), SizeMismatch(2), Orphans(2), InvalidFileIDs(3), SnapshotDir(2), InvalidRecords(RecordUndecodable, RecordDirWithSize)},
		"encrypted": {Seed(9), Files(80), Encrypted(), BadPadding(2)},
		"legacy":    {Seed(10), Files(80), Legacy(), DigestMismatch(1), Encrypted()},
		"wal":       {Seed(11), Files(60), LeftoverWAL()},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r1, r2 := tempDir(t), tempDir(t)
			b1, b2 := MustWrite(t, r1, opts...), MustWrite(t, r2, opts...)
			d1, d2 := treeDigest(t, r1), treeDigest(t, r2)
			if !slices.Equal(d1, d2) {
				for i := range min(len(d1), len(d2)) {
					if d1[i] != d2[i] {
						t.Fatalf("trees differ first at\n%s\n%s", d1[i], d2[i])
					}
				}
				t.Fatalf("trees differ: %d and %d entries", len(d1), len(d2))
			}
			b2.Path = b1.Path
			if fmt.Sprint(*b1) != fmt.Sprint(*b2) {
				t.Error("Backup values differ")
			}
		})
	}
	// A different seed gives a different backup.
	r1, r2 := tempDir(t), tempDir(t)
	MustWrite(t, r1, Seed(1), Files(50))
	MustWrite(t, r2, Seed(2), Files(50))
	if slices.Equal(treeDigest(t, r1), treeDigest(t, r2)) {
		t.Error("seeds 1 and 2 wrote the same backup")
	}
}

func TestSamples(t *testing.T) {
	t.Parallel()
	r1, r2 := tempDir(t), tempDir(t)
	if err := Samples(r1); err != nil {
		t.Fatal(err)
	}
	if err := Samples(r2); err != nil {
		t.Fatal(err)
	}
	d1 := treeDigest(t, r1)
	if !slices.Equal(d1, treeDigest(t, r2)) {
		t.Fatal("Samples is not deterministic")
	}
	var total int64
	filepath.WalkDir(r1, func(p string, d fs.DirEntry, err error) error {
		if info, _ := d.Info(); !d.IsDir() {
			total += info.Size()
		}
		return nil
	})
	if total > 400<<10 {
		t.Errorf("samples hold %d bytes", total)
	}
	ents, _ := os.ReadDir(r1)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 6 {
		t.Fatalf("samples: %q", names)
	}
	dated := 0
	for _, n := range names {
		if regexp.MustCompile(`-\d{8}-\d{6}$`).MatchString(n) {
			dated++
		}
	}
	if dated != 1 {
		t.Errorf("%d dated copies", dated)
	}
	t.Logf("samples: %d bytes in %d entries", total, len(d1))
}

func TestOptionErrors(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]Option{
		"negative":        {MissingBlobs(-1)},
		"too many":        {Files(5), MissingBlobs(6)},
		"two indexes":     {NoIndex(), GarbageIndex()},
		"legacy+wal":      {Legacy(), LeftoverWAL()},
		"legacy+ids":      {Legacy(), InvalidFileIDs(1)},
		"enc+mismatch":    {Encrypted(), EncryptionFlagMismatch()},
		"enc+column":      {Encrypted(), MissingColumn("flags")},
		"bad column":      {MissingColumn("size")},
		"bad sizes":       {FileSizes(10, 5)},
		"bad root":        {RootIndex(0)},
		"no symlink left": {Files(10), InvalidRecords(RecordSymlinkNoTarget, RecordSymlinkNoTarget, RecordSymlinkNoTarget)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Write(tempDir(t), opts...); err == nil {
				t.Error("Write accepted it")
			}
		})
	}
	root := tempDir(t)
	MustWrite(t, root, Files(5))
	if _, err := Write(root, Files(5)); err == nil {
		t.Error("Write overwrote an existing backup")
	}
}

func TestIdentityOptions(t *testing.T) {
	t.Parallel()
	root := tempDir(t)
	old := MustWrite(t, root, OldUDID(), Files(10))
	if !oldUDIDRe.MatchString(old.UDID) {
		t.Errorf("OldUDID: %q", old.UDID)
	}
	var info infoPlist
	readPlist(t, old, "Info.plist", &info)
	if info.TargetIdentifier != old.UDID || info.UniqueIdentifier != strings.ToUpper(old.UDID) {
		t.Errorf("old UDID Info.plist: %q %q", info.TargetIdentifier, info.UniqueIdentifier)
	}

	at := time.Date(2024, 3, 5, 17, 4, 9, 0, time.UTC)
	date := time.Date(2024, 2, 1, 8, 0, 0, 0, time.UTC)
	mod := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b := MustWrite(t, root, UDID("00008110-000A1B2C3D4E5F60"), DatedCopy(at), Files(10), Date(date), ModTime(mod),
		Device("Zoë's iPhone", "iPhone14,2", "17.2", "21C62"))
	if b.ID != "00008110-000A1B2C3D4E5F60-20240305-170409" || b.UDID != "00008110-000A1B2C3D4E5F60" {
		t.Errorf("dated copy ID %q UDID %q", b.ID, b.UDID)
	}
	info = infoPlist{}
	readPlist(t, b, "Info.plist", &info)
	if info.TargetIdentifier != b.ID || info.UniqueIdentifier != b.UDID || info.DisplayName != "Zoë's iPhone - Mar 5, 2024 at 5:04 PM" ||
		info.DeviceName != "Zoë's iPhone" || info.ProductType != "iPhone14,2" || info.ProductVersion != "17.2" || info.BuildVersion != "21C62" {
		t.Errorf("dated copy Info.plist %+v", info)
	}
	var st statusPlist
	readPlist(t, b, "Status.plist", &st)
	if !st.Date.Equal(date) {
		t.Errorf("Status Date %v", st.Date)
	}
	checkModTimes(t, b.Path, mod)

	mm := MustWrite(t, root, UDIDMismatch(), Files(10), Seed(3))
	info = infoPlist{}
	readPlist(t, mm, "Info.plist", &info)
	var man manifestPlist
	readPlist(t, mm, "Manifest.plist", &man)
	if info.TargetIdentifier == mm.ID || !strings.EqualFold(info.UniqueIdentifier, info.TargetIdentifier) ||
		info.TargetIdentifier != mm.MismatchedUDID || man.Lockdown["UniqueDeviceID"] != mm.UDID {
		t.Errorf("UDIDMismatch: folder %s, Info %q/%q, Lockdown %v", mm.ID, info.TargetIdentifier, info.UniqueIdentifier, man.Lockdown["UniqueDeviceID"])
	}
	checkAudit(t, mm)
}

func TestFileSizesAndFormats(t *testing.T) {
	t.Parallel()
	root := tempDir(t)
	b := MustWrite(t, root, Files(50), FileSizes(100, 100), XMLPlists())
	for _, f := range b.Files {
		if f.Size != 100 {
			t.Fatalf("%s: size %d", f.Name(), f.Size)
		}
	}
	checkAudit(t, b)
	for _, name := range []string{"Info.plist", "Manifest.plist", "Status.plist"} {
		var v map[string]any
		if f := readPlist(t, b, name, &v); f != plist.XMLFormat {
			t.Errorf("XMLPlists: %s format %d", name, f)
		}
	}
	b = MustWrite(t, root, Files(5), BinaryPlists(), Seed(2))
	for _, name := range []string{"Info.plist", "Manifest.plist", "Status.plist"} {
		var v map[string]any
		if f := readPlist(t, b, name, &v); f != plist.BinaryFormat {
			t.Errorf("BinaryPlists: %s format %d", name, f)
		}
	}
}

func TestPlistDefects(t *testing.T) {
	t.Parallel()
	names := map[PlistName]string{InfoPlist: "Info.plist", ManifestPlist: "Manifest.plist", StatusPlist: "Status.plist"}
	for p, name := range names {
		for _, d := range []struct {
			what string
			opt  func(PlistName) Option
		}{{"missing", Missing}, {"empty", Empty}, {"garbage", Garbage}, {"truncated", Truncated}, {"wrongtype", WrongType}, {"toplevel", WrongTopLevel}} {
			t.Run(name+"/"+d.what, func(t *testing.T) {
				t.Parallel()
				b := MustWrite(t, tempDir(t), Files(8), d.opt(p))
				checkAudit(t, b)
				for other, oname := range names {
					if other != p {
						var v map[string]any
						readPlist(t, b, oname, &v)
					}
				}
				data, err := os.ReadFile(filepath.Join(b.Path, name))
				if d.what == "missing" {
					if !os.IsNotExist(err) {
						t.Errorf("%s exists", name)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				var v any
				_, perr := plist.Unmarshal(data, &v)
				switch d.what {
				case "empty":
					if len(data) != 0 {
						t.Errorf("%d bytes", len(data))
					}
				case "garbage":
					if perr == nil || len(data) == 0 || bytes.HasPrefix(data, []byte("bplist")) || bytes.HasPrefix(data, []byte("<")) {
						t.Errorf("garbage parses (%v) or looks like a plist", perr)
					}
				case "truncated":
					if perr == nil || !bytes.HasPrefix(data, []byte("bplist00")) {
						t.Errorf("truncated plist parses (%v)", perr)
					}
				case "toplevel":
					if _, ok := v.([]any); perr != nil || !ok {
						t.Errorf("top level %T, %v", v, perr)
					}
				case "wrongtype":
					m, ok := v.(map[string]any)
					if perr != nil || !ok {
						t.Fatalf("does not parse: %v", perr)
					}
					key := map[PlistName]string{InfoPlist: "Product Type", ManifestPlist: "IsEncrypted", StatusPlist: "Date"}[p]
					switch x := m[key].(type) {
					case string:
						if p == InfoPlist {
							t.Errorf("%s is a string", key)
						}
					case uint64, int64:
						if p != InfoPlist {
							t.Errorf("%s is %T", key, x)
						}
					default:
						t.Errorf("%s is %T", key, x)
					}
				}
			})
		}
	}
}

func TestStatusOptions(t *testing.T) {
	t.Parallel()
	b := MustWrite(t, tempDir(t), Files(10), SnapshotState("uploading"), BackupState("old"))
	var st statusPlist
	readPlist(t, b, "Status.plist", &st)
	if st.SnapshotState != "uploading" || st.BackupState != "old" {
		t.Errorf("%+v", st)
	}
	b = MustWrite(t, tempDir(t), Files(10), SnapshotState("bogus"))
	readPlist(t, b, "Status.plist", &st)
	if st.SnapshotState != "bogus" {
		t.Errorf("%+v", st)
	}

	b = MustWrite(t, tempDir(t), Files(10), SnapshotDir(3))
	checkAudit(t, b)
	var man manifestPlist
	readPlist(t, b, "Snapshot/Manifest.plist", &man)
	if len(b.SnapshotBlobs) != 3 {
		t.Fatalf("SnapshotBlobs %q", b.SnapshotBlobs)
	}
	var sum int64
	filepath.WalkDir(filepath.Join(b.Path, "Snapshot"), func(p string, d fs.DirEntry, err error) error {
		if info, _ := d.Info(); !d.IsDir() {
			sum += info.Size()
		}
		return nil
	})
	for _, rel := range b.SnapshotBlobs {
		if _, err := os.Stat(filepath.Join(b.Path, rel)); err != nil || !regexp.MustCompile(`^Snapshot/([0-9a-f]{2})/([0-9a-f]{40})$`).MatchString(rel) || rel[9:11] != rel[12:14] {
			t.Errorf("snapshot blob %s: %v", rel, err)
		}
	}
	if sum != b.SnapshotBytes {
		t.Errorf("Snapshot holds %d bytes, SnapshotBytes %d", sum, b.SnapshotBytes)
	}
	ents, _ := os.ReadDir(filepath.Join(b.Path, "Snapshot"))
	if len(ents) != 257 {
		t.Errorf("Snapshot has %d entries", len(ents))
	}
}

func sqliteHeader(t *testing.T, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestIndexDefects(t *testing.T) {
	t.Parallel()
	t.Run("NoIndex", func(t *testing.T) {
		b := MustWrite(t, tempDir(t), Files(10), NoIndex())
		if _, err := os.Stat(filepath.Join(b.Path, "Manifest.db")); !os.IsNotExist(err) || b.Rows != 0 || len(b.Files) != 10 {
			t.Errorf("Manifest.db: %v, Rows %d", err, b.Rows)
		}
		if len(blobsOnDisk(t, b)) != 10-countZero(b) && len(blobsOnDisk(t, b)) != 10 {
			t.Error("blobs missing")
		}
	})
	t.Run("GarbageIndex", func(t *testing.T) {
		b := MustWrite(t, tempDir(t), Files(10), GarbageIndex())
		data := sqliteHeader(t, filepath.Join(b.Path, "Manifest.db"))
		if len(data)%16 == 0 || bytes.HasPrefix(data, []byte("SQLite format 3")) || b.Rows != 0 {
			t.Errorf("garbage index: %d bytes, header %q", len(data), data[:16])
		}
	})
	t.Run("IndexIsDir", func(t *testing.T) {
		b := MustWrite(t, tempDir(t), Files(10), IndexIsDir())
		if fi, err := os.Stat(filepath.Join(b.Path, "Manifest.db")); err != nil || !fi.IsDir() {
			t.Errorf("Manifest.db: %v", err)
		}
	})
	t.Run("NoFilesTable", func(t *testing.T) {
		b := MustWrite(t, tempDir(t), Files(10), NoFilesTable())
		db := openIndex(t, b)
		if got := pragma(t, db, "SELECT group_concat(name) FROM sqlite_master"); got != "Properties,sqlite_autoindex_Properties_1" {
			t.Errorf("schema: %s", got)
		}
		if got := pragma(t, db, "PRAGMA integrity_check"); got != "ok" {
			t.Error(got)
		}
	})
	for _, col := range []string{"fileID", "domain", "relativePath", "flags", "file"} {
		t.Run("MissingColumn/"+col, func(t *testing.T) {
			t.Parallel()
			b := MustWrite(t, tempDir(t), Files(30), MissingColumn(col))
			db := openIndex(t, b)
			cols := pragma(t, db, "SELECT group_concat(name) FROM pragma_table_info('Files')")
			if strings.Contains(","+cols+",", ","+col+",") || strings.Count(cols, ",") != 3 {
				t.Errorf("columns %s", cols)
			}
			if got := pragma(t, db, "PRAGMA integrity_check"); got != "ok" {
				t.Error(got)
			}
			if got := pragma(t, db, "SELECT count(*) FROM Files"); got != fmt.Sprint(b.Rows) {
				t.Errorf("%s rows, want %d", got, b.Rows)
			}
		})
	}
	t.Run("CorruptIndexPages", func(t *testing.T) {
		for _, n := range []int{10, 1500} {
			b := MustWrite(t, tempDir(t), Files(n), CorruptIndexPages())
			head := sqliteHeader(t, filepath.Join(b.Path, "Manifest.db"))
			if string(head[:16]) != "SQLite format 3\x00" || len(b.CorruptPages) != 2 {
				t.Fatalf("header %q, pages %v", head[:16], b.CorruptPages)
			}
			db := openIndex(t, b)
			if got := pragma(t, db, "PRAGMA quick_check"); got == "ok" {
				t.Errorf("Files(%d): quick_check says ok", n)
			} else {
				t.Logf("Files(%d): quick_check: %.120s", n, got)
			}
			// The table itself still reads in full.
			if got := pragma(t, db, "SELECT count(length(file)) FROM Files NOT INDEXED"); got != fmt.Sprint(b.Rows) {
				t.Errorf("table scan read %s rows, want %d", got, b.Rows)
			}
		}
	})
}

func countZero(b *Backup) int {
	n := 0
	for _, f := range b.Files {
		if f.Size == 0 {
			n++
		}
	}
	return n
}

func TestLeftoverWAL(t *testing.T) {
	t.Parallel()
	b := MustWrite(t, tempDir(t), Files(100), LeftoverWAL())
	if b.WALRows == 0 {
		t.Fatal("no WAL rows")
	}
	if _, err := os.Stat(filepath.Join(b.Path, "Manifest.db-wal")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.Path, "Manifest.db-shm")); err == nil {
		t.Error("Manifest.db-shm left")
	}
	checkIndexHealthy(t, b) // opens a copy of the db and its -wal: every row
	checkAudit(t, b)
	// The database file alone holds only the rows before the WAL.
	dir := tempDir(t)
	data, _ := os.ReadFile(filepath.Join(b.Path, "Manifest.db"))
	os.WriteFile(filepath.Join(dir, "Manifest.db"), data, 0o644)
	alone := &Backup{Path: dir}
	db := openIndex(t, alone)
	if got := pragma(t, db, "SELECT count(*) FROM Files"); got != fmt.Sprint(b.Rows-b.WALRows) {
		t.Errorf("db alone has %s rows, want %d", got, b.Rows-b.WALRows)
	}
}

func TestEncrypted(t *testing.T) {
	t.Parallel()
	b := MustWrite(t, tempDir(t), Files(60), Encrypted())
	var man manifestPlist
	readPlist(t, b, "Manifest.plist", &man)
	if !man.IsEncrypted || len(man.ManifestKey) != 44 || binary.LittleEndian.Uint32(man.ManifestKey) > 11 {
		t.Errorf("Manifest.plist: encrypted %v, ManifestKey %d bytes", man.IsEncrypted, len(man.ManifestKey))
	}
	checkKeybag(t, man.BackupKeyBag)
	data := sqliteHeader(t, filepath.Join(b.Path, "Manifest.db"))
	if len(data)%16 != 0 || bytes.HasPrefix(data, []byte("SQLite")) || len(data) < 4096 {
		t.Errorf("encrypted Manifest.db: %d bytes, %q", len(data), data[:16])
	}
	blobs := blobsOnDisk(t, b)
	if len(blobs) != len(b.Files) {
		t.Errorf("%d blobs for %d files", len(blobs), len(b.Files))
	}
	for _, f := range b.Files {
		if n := blobs[b.blobRel(f.FileID)]; n != (f.Size/16+1)*16 || n != f.Blob {
			t.Errorf("%s: blob %d bytes for size %d", f.Name(), n, f.Size)
		}
	}

	t.Run("defects", func(t *testing.T) {
		b := MustWrite(t, tempDir(t), Files(60), BadPadding(3), SizeMismatch(4), MissingBlobs(2))
		blobs := blobsOnDisk(t, b)
		check := func(name string, fs []File, ok func(n int64, f File) bool) {
			if len(fs) == 0 {
				t.Errorf("%s: none", name)
			}
			for _, f := range fs {
				n, on := blobs[b.blobRel(f.FileID)]
				if !on || n != f.Blob || !ok(n, f) {
					t.Errorf("%s: %s blob %d (on disk %v), size %d", name, f.Name(), n, on, f.Size)
				}
			}
		}
		check("BadPadding", b.BadPadding, func(n int64, f File) bool { return n%16 != 0 })
		check("SizeMismatch", b.SizeMismatch, func(n int64, f File) bool { return n%16 == 0 && n != (f.Size/16+1)*16 })
		bad := len(b.Missing)
		for _, f := range b.Files {
			n, on := blobs[b.blobRel(f.FileID)]
			if !on {
				bad--
				continue
			}
			if n != (f.Size/16+1)*16 && !slices.Contains(b.BadPadding, f) && !slices.Contains(b.SizeMismatch, f) {
				t.Errorf("%s: unexpected blob length %d", f.Name(), n)
			}
		}
		if bad != 0 || len(b.Missing) != 2 {
			t.Errorf("missing blobs: %d listed, %d unaccounted", len(b.Missing), bad)
		}
	})
	t.Run("KeybagMissing", func(t *testing.T) {
		b := MustWrite(t, tempDir(t), Files(10), KeybagMissing())
		var man manifestPlist
		readPlist(t, b, "Manifest.plist", &man)
		if !man.IsEncrypted || man.BackupKeyBag != nil || len(man.ManifestKey) != 44 {
			t.Errorf("%+v", man)
		}
		b = MustWrite(t, tempDir(t), Files(10), ManifestKeyMissing())
		man = manifestPlist{}
		readPlist(t, b, "Manifest.plist", &man)
		if !man.IsEncrypted || man.BackupKeyBag == nil || man.ManifestKey != nil {
			t.Errorf("%+v", man)
		}
	})
	t.Run("EncryptionFlagMismatch", func(t *testing.T) {
		b := MustWrite(t, tempDir(t), Files(40), EncryptionFlagMismatch())
		var man manifestPlist
		readPlist(t, b, "Manifest.plist", &man)
		if !man.IsEncrypted || man.BackupKeyBag == nil || man.ManifestKey == nil || b.Encrypted {
			t.Errorf("%+v", man)
		}
		checkIndexHealthy(t, b)
		checkAudit(t, b)
		for _, r := range readRows(t, openIndex(t, b)) {
			if r.flags == 1 && len(r.mb.EncryptionKey) != 44 {
				t.Errorf("%s: EncryptionKey %d bytes", r.path, len(r.mb.EncryptionKey))
			}
		}
	})
}

func checkKeybag(t *testing.T, kb []byte) {
	t.Helper()
	var tags []string
	for p := kb; len(p) > 0; {
		if len(p) < 8 {
			t.Fatalf("keybag: %d trailing bytes", len(p))
		}
		n := binary.BigEndian.Uint32(p[4:])
		tags = append(tags, string(p[:4]))
		p = p[8:]
		if int(n) > len(p) {
			t.Fatal("keybag: block past the end")
		}
		p = p[n:]
	}
	head := strings.Join(tags[:10], " ")
	if head != "VERS TYPE UUID HMCK WRAP SALT ITER DPWT DPIC DPSL" || (len(tags)-10)%5 != 0 || len(tags) < 15 {
		t.Errorf("keybag tags %q", tags)
	}
	for i := 10; i < len(tags); i += 5 {
		if strings.Join(tags[i:i+5], " ") != "UUID CLAS WRAP KTYP WPKY" {
			t.Errorf("keybag class group %q", tags[i:i+5])
		}
	}
}

func TestLegacy(t *testing.T) {
	t.Parallel()
	b := MustWrite(t, tempDir(t), Files(80), Legacy())
	if !oldUDIDRe.MatchString(b.UDID) || !strings.HasPrefix(b.ProductVersion, "9.") {
		t.Errorf("legacy device %s iOS %s", b.UDID, b.ProductVersion)
	}
	ents, _ := os.ReadDir(b.Path)
	for _, e := range ents {
		if e.IsDir() || e.Name() == "Manifest.db" {
			t.Errorf("legacy backup has %s", e.Name())
		}
	}
	checkAudit(t, b)
	checkModTimes(t, b.Path, b.Date)
	var man manifestPlist
	readPlist(t, b, "Manifest.plist", &man)
	if man.Version != "9.1" || man.IsEncrypted || man.Lockdown["ProductVersion"] != b.ProductVersion {
		t.Errorf("legacy Manifest.plist %+v", man)
	}
	data, _ := os.ReadFile(filepath.Join(b.Path, "Manifest.mbdb"))
	recs, err := walkMbdb(data)
	if err != nil || len(recs) != b.Rows {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	var dirs, links int
	for _, r := range recs {
		switch r.mode & 0xf000 {
		case 0x4000:
			dirs++
		case 0xa000:
			links++
			if !r.hasTarget || r.target == "" {
				t.Errorf("symlink %s without target", r.path)
			}
		case 0x8000:
			if len(r.hash) != 20 || r.key != nil {
				t.Errorf("%s: hash %d bytes, key %d", r.path, len(r.hash), len(r.key))
			}
		}
	}
	if dirs != b.Dirs || links != b.Symlinks {
		t.Errorf("%d dirs %d symlinks", dirs, links)
	}

	for name, opts := range map[string][]Option{
		"digest":    {DigestMismatch(3)},
		"missing":   {MissingBlobs(2), SizeMismatch(2), Orphans(2)},
		"encrypted": {Encrypted(), DigestMismatch(1)},
		"decrypted": {EncryptionFlagMismatch()},
	} {
		t.Run(name, func(t *testing.T) {
			b := MustWrite(t, tempDir(t), append(opts, Files(40), Legacy())...)
			checkAudit(t, b)
			var man manifestPlist
			readPlist(t, b, "Manifest.plist", &man)
			if man.IsEncrypted != (name == "encrypted" || name == "decrypted") || man.ManifestKey != nil {
				t.Errorf("Manifest.plist IsEncrypted %v ManifestKey %v", man.IsEncrypted, man.ManifestKey)
			}
			if name == "encrypted" {
				data, _ := os.ReadFile(filepath.Join(b.Path, "Manifest.mbdb"))
				recs, _ := walkMbdb(data)
				for _, r := range recs {
					if r.mode&0xf000 == 0x8000 && len(r.key) != 44 {
						t.Errorf("%s: EncryptionKey %d bytes", r.path, len(r.key))
					}
				}
			}
		})
	}
	t.Run("GarbageMbdb", func(t *testing.T) {
		b := MustWrite(t, tempDir(t), Files(20), GarbageMbdb())
		data, _ := os.ReadFile(filepath.Join(b.Path, "Manifest.mbdb"))
		if recs, err := walkMbdb(data); err == nil || len(recs) != 0 || b.Rows != 0 {
			t.Errorf("garbage mbdb: %d records, %v", len(recs), err)
		}
	})
	t.Run("TruncatedMbdb", func(t *testing.T) {
		b := MustWrite(t, tempDir(t), Files(20), TruncatedMbdb())
		data, _ := os.ReadFile(filepath.Join(b.Path, "Manifest.mbdb"))
		recs, err := walkMbdb(data)
		if err == nil || len(recs) != b.Rows || int64(len(data)) != b.IndexTruncatedAt {
			t.Errorf("truncated mbdb: %d records (Rows %d), %v", len(recs), b.Rows, err)
		}
	})
}

func TestRowDefects(t *testing.T) {
	t.Parallel()
	cases := map[string][]Option{
		"records":      {InvalidRecords(RecordUndecodable, RecordUnknownFlags, RecordDirWithSize, RecordSymlinkNoTarget, RecordUndecodable)},
		"invalid ids":  {InvalidFileIDs(9)},
		"id mismatch":  {FileIDMismatch(3)},
		"missing":      {MissingBlobs(4)},
		"size":         {SizeMismatch(5)},
		"orphans":      {Orphans(3)},
		"missing size": {MissingSize(2)},
		"root index":   {RootIndex(3)},
		"all":          {MissingBlobs(2), SizeMismatch(2), Orphans(2), InvalidFileIDs(2), FileIDMismatch(2), MissingSize(2), InvalidRecords(RecordUnknownFlags, RecordDirWithSize)},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := tempDir(t)
			b := MustWrite(t, root, append(opts, Files(150))...)
			checkAudit(t, b)
			db := openIndex(t, b)
			if got := pragma(t, db, "PRAGMA integrity_check"); got != "ok" {
				t.Errorf("integrity_check: %s", got)
			}
			rows := readRows(t, db)
			switch name {
			case "records":
				if len(b.InvalidRecords) != 5 {
					t.Errorf("InvalidRecords: %v", b.InvalidRecords)
				}
				for _, r := range rows {
					if r.mb == nil {
						if _, err := plist.Unmarshal(r.file, new(any)); err == nil || !bytes.HasPrefix(r.file, []byte("bplist00")) {
							t.Errorf("undecodable row decodes: %v", err)
						}
					}
				}
			case "invalid ids":
				kinds := map[string]bool{}
				for _, f := range b.InvalidFileIDs {
					if fileIDRe.MatchString(f.FileID) || f.Blob != -1 {
						t.Errorf("invalid fileID %q is valid or has a blob", f.FileID)
					}
					kinds[f.FileID] = true
				}
				if !kinds["../../../../etc/passwd"] || !kinds["/etc/hosts"] {
					t.Errorf("no hostile fileIDs in %v", b.InvalidFileIDs)
				}
				// Nothing was written outside the backup folder.
				ents, _ := os.ReadDir(root)
				if len(ents) != 1 {
					t.Errorf("root holds %d entries", len(ents))
				}
			case "root index":
				for _, r := range rows {
					if r.mb == nil || r.mb.Root != 3 {
						t.Fatalf("%s: root %v", r.path, r.mb)
					}
				}
			case "missing size":
				for _, f := range b.MissingSize {
					if f.Blob != f.Size {
						t.Errorf("%s: blob %d size %d", f.Name(), f.Blob, f.Size)
					}
				}
			}
		})
	}
}

func TestHardLinks(t *testing.T) {
	t.Parallel()
	root := tempDir(t)
	a := MustWrite(t, root, Files(60), Seed(4))
	c := MustWrite(t, root, Files(60), Seed(4), DatedCopy(time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)), HardLinks(a))
	if c.Links == 0 || c.Links != len(blobsOnDisk(t, c)) {
		t.Errorf("%d links for %d blobs", c.Links, len(blobsOnDisk(t, c)))
	}
	for _, f := range c.Files {
		if f.Blob < 0 {
			continue
		}
		fa, err1 := os.Stat(filepath.Join(a.Path, a.blobRel(f.FileID)))
		fc, err2 := os.Stat(filepath.Join(c.Path, c.blobRel(f.FileID)))
		if err1 != nil || err2 != nil || !os.SameFile(fa, fc) {
			t.Errorf("%s is not a hard link", f.Name())
		}
	}
	checkAudit(t, c)
}

// TestArchiveDecodes checks the MBFile writer against howett.net/plist on
// every kind of row, including values the generator rarely draws.
func TestArchiveDecodes(t *testing.T) {
	t.Parallel()
	var e mbEncoder
	for i, f := range []mbFile{
		{RelativePath: "", Mode: 0o40755, UserID: 501, GroupID: 501, LastModified: 1, LastStatusChange: 1, Birth: 1, InodeNumber: 7},
		{RelativePath: "Library/Preferences/é.plist", Mode: 0o100600, Size: 1 << 40, InodeNumber: 1 << 33, UserID: -2, GroupID: -2,
			Digest: bytes.Repeat([]byte{1}, 20), EncryptionKey: bytes.Repeat([]byte{2}, 44), ExtendedAttributes: []byte("bplist00x"),
			ProtectionClass: 4, Flags: 128, LastModified: 1700000000, LastStatusChange: 1700000001, Birth: 1600000000},
		{RelativePath: "a", Target: strings.Repeat("/long", 100), HasTarget: true, Mode: 0o120755, Root: 40},
		{RelativePath: "b", Mode: 0o100644, NoSize: true, Size: 5},
	} {
		got, err := mbFileFromArchive(bytes.Clone(e.archive(&f)))
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		want := f
		if want.Root == 0 {
			want.Root = 1
		}
		if want.NoSize {
			want.Size = 0
		}
		if fmt.Sprint(*got) != fmt.Sprint(want) {
			t.Errorf("%d:\n got %+v\nwant %+v", i, *got, want)
		}
	}
}

// TestDBWriterLarge checks the SQLite writer on trees several levels deep,
// with long keys and a row count that crosses pointer-map pages.
func TestDBWriterLarge(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("short")
	}
	dir := tempDir(t)
	p := filepath.Join(dir, "Manifest.db")
	w, err := newDBWriter(p, dbLayout{wal: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	blob := bytes.Repeat([]byte{0xab}, 3000)
	const n = 3000
	for i := range n {
		path := fmt.Sprintf("%s/%d", strings.Repeat("x", i%900), i)
		row := dbRow{sha1Hex("D", path), fmt.Sprintf("Domain%d", i%7), path, int64(1 + i%3), blob[:i%3000]}
		if err := w.add(&row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	db := openIndex(t, &Backup{Path: dir})
	if got := pragma(t, db, "PRAGMA integrity_check"); got != "ok" {
		t.Fatalf("integrity_check: %.300s", got)
	}
	if got := pragma(t, db, "SELECT count(*) || ' ' || sum(length(file)) FROM Files"); got != fmt.Sprintf("%d %d", n, sumMod(n, 3000)) {
		t.Errorf("got %s", got)
	}
	// Deep enough to test what it should: interior levels and a second pointer-map page.
	if len(w.pages["Files"]) < 900 || len(w.pages["FilesRelativePathIdx"]) < 300 || w.npages < 2*ptrmapPeriod {
		t.Errorf("table %d pages, index %d pages, %d pages in all", len(w.pages["Files"]), len(w.pages["FilesRelativePathIdx"]), w.npages)
	}
}

func sumMod(n, m int) int {
	s := 0
	for i := range n {
		s += i % m
	}
	return s
}

// TestArchiveFastMatchesGeneric compares the fast MBFile writer with the
// general plist writer on random rows, including values that collide with
// the archive's own strings and numbers.
func TestArchiveFastMatchesGeneric(t *testing.T) {
	t.Parallel()
	r := newTestRand(42)
	strs := []string{"", "Size", "$null", "MBFile", "NSObject", "NSMutableData", "root", "$class", "Library/é", "Media/DCIM/100APPLE/IMG_0001.HEIC"}
	nums := []int64{0, 1, 501, -2, 100000, 16877, 33188, 1 << 40, 255, 256}
	var fast, generic mbEncoder
	for i := range 5000 {
		f := mbFile{
			RelativePath: strs[r.IntN(len(strs))], Mode: []int64{0o100644, 0o40755, 0o120755, 0o600}[r.IntN(4)],
			InodeNumber: nums[r.IntN(len(nums))], UserID: nums[r.IntN(len(nums))], GroupID: nums[r.IntN(len(nums))],
			LastModified: nums[r.IntN(len(nums))], LastStatusChange: nums[r.IntN(len(nums))], Birth: nums[r.IntN(len(nums))],
			Size: nums[r.IntN(len(nums))], NoSize: r.IntN(5) == 0, ProtectionClass: nums[r.IntN(len(nums))],
			Flags: nums[r.IntN(len(nums))], Root: r.IntN(4),
		}
		if r.IntN(2) == 0 {
			f.Target, f.HasTarget = strs[r.IntN(len(strs))], true
		}
		data := [][]byte{[]byte("bplist00"), bytes.Repeat([]byte{7}, 20), bytes.Repeat([]byte{7}, 44), []byte("NSObject")}
		if r.IntN(2) == 0 {
			f.Digest = data[r.IntN(len(data))]
		}
		if r.IntN(2) == 0 {
			f.EncryptionKey = data[r.IntN(len(data))]
		}
		if r.IntN(2) == 0 {
			f.ExtendedAttributes = data[r.IntN(len(data))]
		}
		a, b := fast.archive(&f), generic.archiveGeneric(&f)
		if !bytes.Equal(a, b) {
			t.Fatalf("row %d %+v: fast and generic archives differ", i, f)
		}
	}
}
