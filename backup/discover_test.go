package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func mkBackupDir(t *testing.T, dir string, marker string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, marker), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoverRoot(t *testing.T) {
	root := t.TempDir()
	mkBackupDir(t, filepath.Join(root, "00008120-000134513EA2201E"), "Info.plist")
	mkBackupDir(t, filepath.Join(root, "00008120-000134513EA2201E-20240101-101010"), "Manifest.db")
	mkBackupDir(t, filepath.Join(root, "1cb128eafa77c5be74283e9a3a2130af36a3c059"), "Manifest.mbdb")
	mkBackupDir(t, filepath.Join(root, "statusonly"), "Status.plist")
	mkBackupDir(t, filepath.Join(root, ".mbaudit-trash", "x"), "Info.plist")
	if err := os.MkdirAll(filepath.Join(root, "_unback_"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".DS_Store"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	mkBackupDir(t, filepath.Join(elsewhere, "linked"), "Manifest.plist")
	if err := os.Symlink(filepath.Join(elsewhere, "linked"), filepath.Join(root, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "gone"), filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}

	d := Discover([]string{root}, "linux")
	if len(d.Errors) != 0 {
		t.Fatalf("errors: %v", d.Errors)
	}
	var got []string
	for _, c := range d.Candidates {
		name := filepath.Base(c.Path)
		if c.Symlink {
			name += "@"
		}
		got = append(got, name)
	}
	want := "00008120-000134513EA2201E 00008120-000134513EA2201E-20240101-101010 1cb128eafa77c5be74283e9a3a2130af36a3c059 linked@ statusonly"
	if strings.Join(got, " ") != want {
		t.Errorf("candidates = %v, want %v", got, want)
	}
	var skipped []string
	for _, s := range d.Skipped {
		skipped = append(skipped, filepath.Base(s))
	}
	if s := strings.Join(skipped, " "); s != ".DS_Store .mbaudit-trash _unback_ dangling" {
		t.Errorf("skipped = %q", s)
	}
}

func TestDiscoverBackupGivenDirectly(t *testing.T) {
	root := t.TempDir()
	b := filepath.Join(root, "00008120-000134513EA2201E")
	mkBackupDir(t, b, "Status.plist")
	d := Discover([]string{b, b, root}, "linux")
	if len(d.Candidates) != 1 || d.Candidates[0].Path != b {
		t.Fatalf("candidates = %+v, want the one backup once", d.Candidates)
	}
}

func TestDiscoverRootErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "unmounted", "Backup"), dangling); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		problem RootProblem
		msg     string
	}{
		{filepath.Join(dir, "missing"), RootMissing, "does not exist"},
		{dangling, RootDangling, "is a link to " + filepath.Join(dir, "unmounted", "Backup") + ", which does not exist"},
		{file, RootNotFolder, "is not a folder"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			d := Discover([]string{tt.path}, "linux")
			if len(d.Errors) != 1 {
				t.Fatalf("errors = %v, want one", d.Errors)
			}
			var re *RootError
			if !errors.As(d.Errors[0], &re) || re.Problem != tt.problem {
				t.Fatalf("error = %#v, want problem %d", d.Errors[0], tt.problem)
			}
			if !strings.Contains(re.Error(), tt.msg) {
				t.Errorf("message %q does not say %q", re.Error(), tt.msg)
			}
		})
	}
}

// Tests run as root here, where permissions stop nothing, so the error a
// macOS root without Full Disk Access gives is injected.
func TestRootErrorPermission(t *testing.T) {
	for _, tt := range []struct {
		goos string
		err  error
		want string
	}{
		{"darwin", &fs.PathError{Op: "open", Path: "/B", Err: syscall.EPERM}, "Full Disk Access"},
		{"darwin", &fs.PathError{Op: "open", Path: "/B", Err: syscall.EACCES}, "or to the program that cron or launchd runs"},
		{"linux", &fs.PathError{Op: "open", Path: "/B", Err: syscall.EACCES}, "permission denied; run mbaudit as the user who owns the backups"},
		{"linux", &fs.PathError{Op: "open", Path: "/B", Err: syscall.EIO}, "input/output error"},
	} {
		t.Run(fmt.Sprint(tt.goos, tt.err), func(t *testing.T) {
			err := rootError("/B", tt.err, tt.goos)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q does not say %q", err, tt.want)
			}
		})
	}
}

func TestDefaultRoots(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "MBAUDIT_ROOT" {
				return v
			}
			return ""
		}
	}
	got, err := DefaultRoots(env("/a::/b"), "linux", "/home/x")
	if err != nil || strings.Join(got, ",") != "/a,/b" {
		t.Errorf("MBAUDIT_ROOT: %v %v", got, err)
	}
	got, err = DefaultRoots(env(""), "darwin", "/Users/ana")
	if err != nil || got[0] != "/Users/ana/Library/Application Support/MobileSync/Backup" {
		t.Errorf("darwin default: %v %v", got, err)
	}
	if _, err := DefaultRoots(env(""), "linux", "/home/x"); !errors.Is(err, ErrNoDefaultRoot) {
		t.Errorf("linux default: %v", err)
	}
}

func TestSplitID(t *testing.T) {
	for _, tt := range []struct {
		id, udid string
		copied   bool
	}{
		{"00008120-000134513EA2201E", "00008120-000134513EA2201E", false},
		{"00008120-000134513EA2201E-20240801-210921", "00008120-000134513EA2201E", true},
		{"000e903852948d1b9729e79c039fc3f14941535b-20180801-210921", "000e903852948d1b9729e79c039fc3f14941535b", true},
		{"x-20181301-210921", "x-20181301-210921", false}, // month 13
		{"plainname", "plainname", false},
	} {
		udid, ct := SplitID(tt.id)
		if udid != tt.udid || ct.IsZero() == tt.copied {
			t.Errorf("SplitID(%q) = %q, %v", tt.id, udid, ct)
		}
	}
	_, ct := SplitID("a-20180801-210921")
	if !ct.Equal(time.Date(2018, 8, 1, 21, 9, 21, 0, time.UTC)) {
		t.Errorf("copy time = %v", ct)
	}
}

func TestModelName(t *testing.T) {
	for pt, want := range map[string]string{
		"iPhone9,3": "iPhone 7", "iPhone14,5": "iPhone 13", "iPad13,1": "iPad Air (4th generation)",
		"iPod9,1": "iPod touch (7th generation)", "iPhone99,1": "iPhone99,1", "": "",
	} {
		if got := ModelName(pt); got != want {
			t.Errorf("ModelName(%q) = %q, want %q", pt, got, want)
		}
	}
}
