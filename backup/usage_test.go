package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbaudit/mbaudit/backup"
	"github.com/mbaudit/mbaudit/backup/backuptest"
	"github.com/mbaudit/mbaudit/backup/manifest"
)

// inspect reads one backup the quick way.
func inspect(t *testing.T, path string) *backup.Backup {
	t.Helper()
	bs, err := backup.InspectAll(context.Background(), []backup.Candidate{{Path: path, Root: path}}, opts())
	if err != nil {
		t.Fatal(err)
	}
	return bs[0]
}

func breakdown(t *testing.T, b *backup.Backup, by backup.GroupBy, top int) *backup.Space {
	t.Helper()
	s, err := backup.Breakdown(context.Background(), b, backup.SpaceOptions{By: by, Top: top, Jobs: 4})
	if err != nil {
		t.Fatal(err)
	}
	if s.Unread != "" {
		t.Fatalf("index not read: %s", s.Unread)
	}
	return s
}

// appOfGenerated is the app each generated container belongs to, written
// out by hand from the contract's folding rule.
var appOfGenerated = map[string]string{
	"AppDomainGroup-group.net.whatsapp.WhatsApp.shared":       "net.whatsapp.WhatsApp",
	"AppDomainPlugin-net.whatsapp.WhatsApp.ShareExtension":    "net.whatsapp.WhatsApp",
	"AppDomainGroup-group.net.whatsapp.WhatsAppSMB.shared":    "net.whatsapp.WhatsAppSMB",
	"AppDomainPlugin-net.whatsapp.WhatsAppSMB.ShareExtension": "net.whatsapp.WhatsAppSMB",
	"AppDomainGroup-group.com.google.chrome":                  "com.google.chrome.ios",
	"AppDomainGroup-group.ph.telegra.Telegraph":               "ph.telegra.Telegraph",
	"AppDomainGroup-group.com.apple.notes":                    "group.com.apple.notes", // no notes app: its own row
}

func expectedKey(t *testing.T, by backup.GroupBy, f backuptest.File) string {
	switch by {
	case backup.ByDomain:
		return f.Domain
	case backup.ByCategory:
		d, p := f.Domain, f.RelativePath
		under := func(dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
		switch {
		case d == "CameraRollDomain", d == "MediaDomain" && (under("Media/DCIM") || under("Media/PhotoData")):
			return "photos"
		case (d == "HomeDomain" || d == "MediaDomain") && under("Library/SMS"): // attachments in MediaDomain
			return "messages"
		case strings.HasPrefix(d, "AppDomain"):
			return "app-data"
		case d == "HealthDomain":
			return "health"
		case d == "KeychainDomain", d == "WirelessDomain", d == "SystemPreferencesDomain", d == "ManagedPreferencesDomain",
			d == "RootDomain", d == "HomeDomain" && under("Library/Preferences"):
			return "system"
		}
		return "other"
	}
	if app, ok := strings.CutPrefix(f.Domain, "AppDomain-"); ok {
		return app
	}
	if app, ok := appOfGenerated[f.Domain]; ok {
		return app
	}
	if strings.HasPrefix(f.Domain, "AppDomain") {
		t.Fatalf("the test does not know the app of %s", f.Domain)
	}
	return f.Domain
}

// A generated backup's groups are exactly the sums of its files, for every
// grouping, plain and encrypted-blob alike.
func TestBreakdownGenerated(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []backuptest.Option
	}{
		{"plain", []backuptest.Option{backuptest.Seed(31), backuptest.Files(3000)}},
		{"missing blobs", []backuptest.Option{backuptest.Seed(32), backuptest.Files(800), backuptest.MissingBlobs(40)}},
		{"legacy", []backuptest.Option{backuptest.Seed(33), backuptest.Files(800), backuptest.Legacy()}},
		{"decrypted index, padded blobs", []backuptest.Option{backuptest.Seed(34), backuptest.Files(500), backuptest.EncryptionFlagMismatch()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gen := backuptest.MustWrite(t, t.TempDir(), tc.opts...)
			b := inspect(t, gen.Path)
			for _, by := range []backup.GroupBy{backup.ByApp, backup.ByDomain, backup.ByCategory} {
				type sums struct{ files, bytes, disk int64 }
				want := map[string]*sums{}
				for _, f := range gen.Files {
					k := expectedKey(t, by, f)
					if want[k] == nil {
						want[k] = &sums{}
					}
					want[k].files++
					want[k].bytes += f.Size
					want[k].disk += max(f.Blob, 0)
				}
				s := breakdown(t, b, by, 0)
				if len(s.Groups) != len(want) {
					t.Errorf("by %s: %d groups, want %d", by, len(s.Groups), len(want))
				}
				for _, g := range s.Groups {
					w := want[g.Key]
					if w == nil {
						t.Errorf("by %s: unexpected group %q", by, g.Key)
						continue
					}
					if g.Files != w.files || g.Bytes != w.bytes || g.DiskBytes != w.disk {
						t.Errorf("by %s: %s = %d files, %d bytes, %d on disk; want %d, %d, %d",
							by, g.Key, g.Files, g.Bytes, g.DiskBytes, w.files, w.bytes, w.disk)
					}
				}
				if s.Bytes != gen.Bytes || s.Files != int64(len(gen.Files)) {
					t.Errorf("by %s: total %d files %d bytes, want %d %d", by, s.Files, s.Bytes, len(gen.Files), gen.Bytes)
				}
				for i := 1; i < len(s.Groups); i++ {
					if s.Groups[i].Bytes > s.Groups[i-1].Bytes {
						t.Errorf("by %s: groups not largest first", by)
					}
				}
			}
			// Apps are named from Info.plist's iTunesMetadata.
			for _, g := range breakdown(t, b, backup.ByApp, 0).Groups {
				if g.Key == "net.whatsapp.WhatsApp" && g.Name != "WhatsApp Messenger" {
					t.Errorf("WhatsApp is named %q", g.Name)
				}
			}
		})
	}
}

// --top lists the largest files, largest first, ties by domain and path.
func TestBreakdownTop(t *testing.T) {
	gen := backuptest.MustWrite(t, t.TempDir(), backuptest.Seed(35), backuptest.Files(2000))
	s := breakdown(t, inspect(t, gen.Path), backup.ByApp, 7)
	if len(s.Top) != 7 {
		t.Fatalf("%d top files", len(s.Top))
	}
	var largest int64
	for _, f := range gen.Files {
		largest = max(largest, f.Size)
	}
	if s.Top[0].Bytes != largest {
		t.Errorf("largest %d, want %d", s.Top[0].Bytes, largest)
	}
	for i := 1; i < len(s.Top); i++ {
		if s.Top[i].Bytes > s.Top[i-1].Bytes {
			t.Errorf("top not sorted: %v", s.Top)
		}
	}
	bigger := 0
	for _, f := range gen.Files {
		if f.Size > s.Top[6].Bytes {
			bigger++
		}
	}
	if bigger > 6 {
		t.Errorf("%d files are larger than the 7th", bigger)
	}
}

// An encrypted index is a result (Unread), never an error.
func TestBreakdownEncrypted(t *testing.T) {
	gen := backuptest.MustWrite(t, t.TempDir(), backuptest.Seed(36), backuptest.Files(50), backuptest.Encrypted())
	s, err := backup.Breakdown(context.Background(), inspect(t, gen.Path), backup.SpaceOptions{By: backup.ByApp})
	if err != nil || s.Unread == "" || len(s.Groups) != 0 {
		t.Errorf("got %+v, %v", s, err)
	}
}

func TestFoldApp(t *testing.T) {
	apps := map[string][]string{}
	for _, id := range []string{"net.whatsapp.WhatsApp", "net.whatsapp.WhatsAppSMB", "com.google.chrome.ios", "com.google.Gmail", "a.b"} {
		apps[id] = strings.Split(id, ".")
	}
	for container, want := range map[string]string{
		"group.net.whatsapp.WhatsApp.shared":    "net.whatsapp.WhatsApp",
		"group.net.whatsapp.WhatsAppSMB.shared": "net.whatsapp.WhatsAppSMB",
		"net.whatsapp.WhatsApp.ShareExtension":  "net.whatsapp.WhatsApp",
		"group.com.google.chrome":               "com.google.chrome.ios",
		"group.com.google.common":               "",
		"group.com.google.Gmail":                "com.google.Gmail",
		"a.b.c":                                 "", // a prefix of 2 parts is too short
		"group.net.whatsapp":                    "",
	} {
		if got := backup.FoldApp(container, apps); got != want {
			t.Errorf("FoldApp(%s) = %q, want %q", container, got, want)
		}
	}
}

// inodes maps the inodes under dir (itself included) to their allocated
// bytes, as du counts them.
func inodes(t *testing.T, dir string) map[[2]uint64]int64 {
	t.Helper()
	out := map[[2]uint64]int64{}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		out[[2]uint64{uint64(st.Dev), uint64(st.Ino)}] = st.Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Two backups sharing blobs by hard link: each frees only what the other
// does not hold, and the total counts shared files once.
func TestWouldFreeHardLinks(t *testing.T) {
	root := t.TempDir()
	a := backuptest.MustWrite(t, root, backuptest.Seed(41), backuptest.Files(300))
	b := backuptest.MustWrite(t, root, backuptest.Seed(41), backuptest.Files(400),
		backuptest.DatedCopy(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), backuptest.HardLinks(a))
	if b.Links == 0 {
		t.Fatal("no blob was linked")
	}
	bs, err := backup.List(context.Background(), []backup.Candidate{{Path: a.Path, Root: root}, {Path: b.Path, Root: root}}, opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ia, ib := inodes(t, a.Path), inodes(t, b.Path)
	only := func(x, y map[[2]uint64]int64) (n int64) {
		for k, v := range x {
			if _, shared := y[k]; !shared {
				n += v
			}
		}
		return n
	}
	var total int64
	union := map[[2]uint64]int64{}
	for _, m := range []map[[2]uint64]int64{ia, ib} {
		for k, v := range m {
			union[k] = v
		}
	}
	for _, v := range union {
		total += v
	}
	free := backup.WouldFree(bs)
	if want := only(ia, ib); free[0] != want {
		t.Errorf("would free %d from %s, want %d", free[0], a.ID, want)
	}
	if want := only(ib, ia); free[1] != want {
		t.Errorf("would free %d from %s, want %d", free[1], b.ID, want)
	}
	if free[0] >= bs[0].Usage.DiskBytes || free[1] >= bs[1].Usage.DiskBytes {
		t.Errorf("shared files counted as freed: %v of %d, %d", free, bs[0].Usage.DiskBytes, bs[1].Usage.DiskBytes)
	}
	if got := backup.TotalDiskBytes(bs); got != total {
		t.Errorf("total %d, want %d", got, total)
	}
	// Alone, a backup frees all it takes.
	if f := backup.WouldFree(bs[:1]); f[0] != bs[0].Usage.DiskBytes {
		t.Errorf("alone it frees %d of %d", f[0], bs[0].Usage.DiskBytes)
	}
}

// The real iOS 14 backup: each app is one row with its containers folded
// in, and its sizes are the index's sums. Nothing is written beside it.
func TestBreakdownReal(t *testing.T) {
	path := backuptest.RealBackup(t)
	before := backuptest.HashTree(t, path)
	b := inspect(t, path)
	s := breakdown(t, b, backup.ByApp, 3)
	apps := []string{"net.whatsapp.WhatsApp", "com.google.chrome.ios", "org.mozilla.ios.Firefox", "ph.telegra.Telegraph", "com.google.Gmail"}
	// The expectation: the index's rows summed by hand, a domain belonging
	// to an app when its container (minus "group.") is the app or below it,
	// or is group.com.google.chrome (a prefix of com.google.chrome.ios).
	want := map[string][2]int64{}
	db, err := manifest.Open(filepath.Join(path, "Manifest.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var fi manifest.FileInfo
	err = db.Scan(context.Background(), func(r *manifest.Row) error {
		if r.Flags != 1 {
			return nil
		}
		d := string(r.Domain)
		c := d[strings.IndexByte(d, '-')+1:]
		c = strings.TrimPrefix(c, "group.")
		for _, app := range apps {
			if c == app || strings.HasPrefix(c, app+".") || (app == "com.google.chrome.ios" && c == "com.google.chrome") {
				if !strings.HasPrefix(d, "AppDomain") {
					continue
				}
				if err := manifest.ReadMBFile(r.File, &fi); err != nil {
					t.Fatal(err)
				}
				w := want[app]
				want[app] = [2]int64{w[0] + 1, w[1] + fi.Size}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]backup.SpaceGroup{}
	for _, g := range s.Groups {
		got[g.Key] = g
		if strings.Contains(g.Key, "whatsapp.WhatsApp.") || g.Key == "group.com.google.chrome" {
			t.Errorf("%s not folded into its app", g.Key)
		}
	}
	for _, app := range apps {
		g, ok := got[app]
		if !ok {
			t.Errorf("no row for %s", app)
			continue
		}
		if w := want[app]; g.Files != w[0] || g.Bytes != w[1] {
			t.Errorf("%s: %d files, %d bytes; the index lists %d, %d", app, g.Files, g.Bytes, w[0], w[1])
		}
	}
	if w := want["net.whatsapp.WhatsApp"]; w[0] < 40 {
		t.Errorf("WhatsApp's group container was not counted: %v", w)
	}
	if s.Files != 1089 {
		t.Errorf("%d files, want 1089", s.Files)
	}
	if after := backuptest.HashTree(t, path); after != before {
		t.Error("the backup changed")
	}
}
